"""Errors of the build: export, parity, quantization, model references.

They subclass the runtime's InferstackError, so whatever reports runtime errors to a
user (the CLI's table of expected errors) reports these the same way.
"""

from __future__ import annotations

from model_runtime.errors import InferstackError


class ExportError(InferstackError):
    """Export to ONNX failed, or the exported model does not match the source."""
