"""inferstack model runtime: what serves a model in Lambda, the GPU container and
`inferstack serve` (manifest, Engine, backends, protocol, app, batcher, server, delivery).
Build-time code (export, quantize, parity) is in model_build."""

__version__ = "0.1.0"
