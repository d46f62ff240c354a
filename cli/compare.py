"""What `inferstack compare` judges: two versions' answers to the same requests, output by
output, and each version's latency; and whether a promotion gate passes on them.

Pure numpy on decoded Open Inference Protocol responses (outputs[].name, datatype, shape,
data): the HTTP calls are cli/versions.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cli.errors import UserError
from model_runtime.manifest import PromotionGate

FLOATS = ("FP16", "FP32", "FP64")
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class OutputAgreement:
    """How one output of the candidate agrees with the live version's, over every request.

    Rows are the output's last axis (a class's scores, an embedding); each float metric is
    None where it does not apply: top-1 needs a last axis longer than 1, and `agreement`
    (the share of equal values) is for integer, boolean and string outputs.
    """

    name: str
    datatype: str
    rows: int
    top1_agreement: float | None
    min_cosine: float | None
    mean_cosine: float | None
    max_abs_diff: float | None
    agreement: float | None


@dataclass(frozen=True)
class Latency:
    requests: int
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        return cls(len(ms), float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))


@dataclass(frozen=True)
class Side:
    """One of the two versions compared: its model version, the Lambda version its route
    reached, and how fast it answered."""

    model_version: str
    lambda_version: int
    latency: Latency


@dataclass(frozen=True)
class CompareReport:
    model: str
    live: Side
    candidate: Side
    outputs: tuple[OutputAgreement, ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare_outputs(
    live: Sequence[Mapping[str, Any]],
    candidate: Sequence[Mapping[str, Any]],
    sides: tuple[str, str] = ("live", "candidate"),
) -> tuple[OutputAgreement, ...]:
    """Each output's agreement over the paired responses (live[i] and candidate[i] answer
    the same request). `sides` name the two versions in errors: an output one of them lacks,
    or gives in another shape or kind, is a UserError naming the request."""
    if len(live) != len(candidate):
        raise ValueError(f"{len(live)} live responses against {len(candidate)} candidate ones")
    pairs: dict[str, tuple[str, list[Array], list[Array]]] = {}
    for number, (first, second) in enumerate(zip(live, candidate, strict=True), start=1):
        a, b = _decoded(first), _decoded(second)
        if a.keys() != b.keys():
            raise UserError(
                f"request {number}: {sides[0]} answered outputs {sorted(a)}, {sides[1]} {sorted(b)}"
            )
        for name, (datatype, left) in a.items():
            other_type, right = b[name]
            if left.shape != right.shape or _is_float(datatype) != _is_float(other_type):
                raise UserError(
                    f"request {number}: output {name!r} is {datatype} {list(left.shape)} from"
                    f" {sides[0]} and {other_type} {list(right.shape)} from {sides[1]}"
                )
            _, lefts, rights = pairs.setdefault(name, (datatype, [], []))
            lefts.append(left)
            rights.append(right)
    return tuple(
        _agreement(name, datatype, lefts, rights)
        for name, (datatype, lefts, rights) in pairs.items()
    )


def gate_failure(report: CompareReport, gate: PromotionGate) -> str | None:
    """Why the candidate fails `gate`, in one line; None when it passes. A gate whose metric
    no output has (min_cosine on integer outputs) fails: it cannot pass unjudged."""
    owner = f"{report.model} version {report.candidate.model_version}'s gate"
    if gate.metric == "top1_agreement":
        title = "top-1 agreement"
        found = [(o.top1_agreement, o.name) for o in report.outputs if o.top1_agreement is not None]
        needs = "a float output with a last axis longer than 1"
    else:
        title = "min cosine"
        found = [(o.min_cosine, o.name) for o in report.outputs if o.min_cosine is not None]
        needs = "a float output"
    if not found:
        outputs = ", ".join(f"{o.name} ({o.datatype})" for o in report.outputs)
        return f"{owner} {gate.metric} cannot be judged: it needs {needs}; outputs: {outputs}"
    # NaN (a version answering NaN) sorts as the worst value, never as a pass.
    value, name = min(found, key=lambda pair: -np.inf if np.isnan(pair[0]) else pair[0])
    if value >= gate.minimum:
        return None
    return f"{title} {value:.6g} (output {name}) is below {owner} {gate.minimum:g}"


def _decoded(response: Mapping[str, Any]) -> dict[str, tuple[str, Array]]:
    """name -> (datatype, array) of a response's outputs."""
    found: dict[str, tuple[str, Array]] = {}
    for output in response.get("outputs") or []:
        datatype = str(output["datatype"])
        dtype = np.float64 if _is_float(datatype) else None
        array = np.asarray(output["data"], dtype=dtype)
        found[str(output["name"])] = (datatype, array.reshape([int(n) for n in output["shape"]]))
    return found


def _is_float(datatype: str) -> bool:
    return datatype in FLOATS


def _agreement(
    name: str, datatype: str, lefts: list[Array], rights: list[Array]
) -> OutputAgreement:
    left, right = _rows(lefts), _rows(rights)
    if not left.size:  # nothing to compare: no metric, so no gate, can pass on it
        return OutputAgreement(name, datatype, len(left), None, None, None, None, None)
    if not _is_float(datatype):
        equal = left == right
        numeric = datatype != "BYTES"
        return OutputAgreement(
            name,
            datatype,
            rows=len(left),
            top1_agreement=None,
            min_cosine=None,
            mean_cosine=None,
            max_abs_diff=_max_abs_diff(left, right) if numeric else None,
            agreement=float(np.mean(equal)),
        )
    cosine = _cosine(left, right)
    top1 = None
    if left.shape[1] > 1:
        top1 = float(np.mean(np.argmax(left, axis=1) == np.argmax(right, axis=1)))
    return OutputAgreement(
        name,
        datatype,
        rows=len(left),
        top1_agreement=top1,
        min_cosine=float(np.min(cosine)),
        mean_cosine=float(np.mean(cosine)),
        max_abs_diff=_max_abs_diff(left, right),
        agreement=None,
    )


def _rows(arrays: list[Array]) -> Array:
    """Every request's output as rows of its last axis, stacked (a scalar is one row)."""
    return np.concatenate([a.reshape(-1, a.shape[-1] if a.ndim else 1) for a in arrays])


def _cosine(left: Array, right: Array) -> Array:
    """Row-wise cosine similarity; two zero rows are alike (1), one zero row is not (0)."""
    left_norms, right_norms = np.linalg.norm(left, axis=1), np.linalg.norm(right, axis=1)
    norms = left_norms * right_norms
    dots = np.sum(left * right, axis=1)
    cosine = dots / np.where(norms > 0, norms, 1.0)
    result: Array = np.where(
        norms > 0, cosine, np.where((left_norms == 0) & (right_norms == 0), 1.0, 0.0)
    )
    return result


def _max_abs_diff(left: Array, right: Array) -> float:
    return float(np.max(np.abs(left.astype(np.float64) - right.astype(np.float64))))
