"""Which backend runs a model, on which device, in which precision; checked in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

from model_runtime.errors import OptionNotAllowed

BackendName = Literal["onnxruntime", "torch"]
Precision = Literal["fp32", "fp16", "bf16"]
BACKEND_NAMES: tuple[str, ...] = get_args(BackendName)
PRECISIONS: tuple[str, ...] = get_args(Precision)
# "cuda:N" stands for cuda:0, cuda:1, ...
DEVICES = ("auto", "cpu", "cuda", "cuda:N")


@dataclass(frozen=True)
class BackendOptions:
    backend: BackendName = "onnxruntime"
    # "auto" takes CUDA when this host has it (and the backend can use it), else CPU.
    device: str = "auto"
    dtype: Precision = "fp32"

    def __post_init__(self) -> None:
        check_options(self.backend, self.device, self.dtype)

    @classmethod
    def parse(cls, backend: str, device: str, dtype: str) -> BackendOptions:
        """Options from text (the environment); raises OptionNotAllowed like the constructor."""
        return cls(cast(BackendName, backend), device, cast(Precision, dtype))


def check_options(backend: str, device: str, dtype: str) -> None:
    """Raise OptionNotAllowed for the first of backend, device and dtype that is not allowed."""
    for option, value, allowed in (
        ("backend", backend, BACKEND_NAMES),
        ("device", device, DEVICES),
        ("dtype", dtype, PRECISIONS),
    ):
        if not _is_one_of(value, allowed):
            raise OptionNotAllowed(
                f"{option} {value!r} is unknown; allowed: {', '.join(allowed)}",
                option,
                value,
                allowed,
            )
    if backend != "torch" and dtype != "fp32":
        raise OptionNotAllowed(
            f"dtype {dtype!r} needs the torch backend; onnxruntime runs the model as exported"
            " (fp32, or int8 when quantized)",
            "dtype",
            dtype,
            ("fp32",),
            needs_backend="torch",
        )


def _is_one_of(value: str, allowed: tuple[str, ...]) -> bool:
    kind, _, index = value.partition(":")
    if index:
        return f"{kind}:N" in allowed and index.isdigit()
    return value in allowed
