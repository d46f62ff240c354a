"""Build time: model specs, ONNX export, parity, quantization, torch export, reference models.

Never shipped to Lambda or the GPU image; may import torch, onnx and transformers.
"""
