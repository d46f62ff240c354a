"""Which weight nodes dynamic int8 leaves in fp32: the fewest that keep a gate.

onnxruntime quantizes the whole graph once; a candidate (a set of nodes kept in fp32) is
that graph with those nodes' quantized replacements swapped back for the fp32 nodes
(they produce the same tensors). Each candidate is measured against fp32 (an
evaluation: about a second for MiniLM), so the search spends few of them:

1. everything int8: done if that meets the gate;
2. rank the weight nodes by the error int8 makes in each alone (one run of a probe
   graph: the fp32 graph beside a quantized copy of every weight node);
3. keep the top-ranked nodes, growing the count 1, 2, 4, ... until the gate holds, then
   bisect for the smallest count that holds;
4. try dropping each kept node again, lowest-ranked first.

Candidates are cached by node set and the evaluations are bounded. What is written is
the measured graph that met the gate with the fewest nodes in fp32.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_build.errors import ExportError
from model_build.parity import Arrays, RunFn
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.manifest import PromotionGate

# Writes the fully int8 graph to the path.
Quantize = Callable[[Path], None]
# The op types onnxruntime's dynamic quantization quantizes (IntegerOpsRegistry) whose
# weights are initializers: the nodes that can be kept in fp32.
WEIGHT_OPS = frozenset({"Attention", "Conv", "EmbedLayerNormalization", "Gather", "LSTM", "MatMul"})
# Batch sizes the min cosine is measured at, besides the whole set at once: dynamic int8
# scales activations per tensor, so a row's result depends on what it is batched with.
COSINE_BATCH_SIZES = (1, 8, 32)
# Suffix of the tensors and nodes of the quantized copies in the ranking's probe graph.
ISOLATED = "/int8-isolated"


@dataclass(frozen=True)
class SearchResult:
    kept: list[str]  # in graph order
    value: float  # the gate's value for `kept` (the best reached when not passed)
    passed: bool
    evaluations: int
    candidates: int


class GateMeasure:
    """The gate's value for a candidate graph, against the fp32 outputs on `inputs`."""

    def __init__(
        self,
        gate: PromotionGate,
        run_fp32: RunFn,
        inputs: Arrays,
        classifier_output: str | None,
    ) -> None:
        if gate.metric == "top1_agreement" and classifier_output is None:
            raise ExportError("a top1_agreement quantization gate needs a classifier output")
        self.gate = gate
        self.classifier_output = classifier_output
        self.batches = gate_batches(gate, inputs)
        self.expected = [run_fp32(batch) for batch in self.batches]

    def passes(self, value: float) -> bool:
        return value >= self.gate.minimum

    def __call__(self, model_path: Path) -> float:
        session = create_session(model_path)
        names = list(self.expected[0])
        actual = [dict(zip(names, session.run(names, b), strict=True)) for b in self.batches]
        if self.gate.metric == "top1_agreement":
            assert self.classifier_output is not None
            return top1_agreement(self.expected, actual, self.classifier_output)
        return min_cosine(self.expected, actual)


def gate_batches(gate: PromotionGate, inputs: Arrays) -> list[Arrays]:
    """Top-1 agreement: the whole set at once (as the held-out evaluation runs). Min
    cosine: every row alone, in batches of 8 and of 32, and all at once, each cut to its
    longest row's tokens when the inputs carry an attention mask (as the tokenizer stage
    pads)."""
    rows = len(next(iter(inputs.values())))
    if gate.metric == "top1_agreement":
        return [inputs]
    sizes = [size for size in COSINE_BATCH_SIZES if size < rows] + [rows]
    return [
        _trimmed({name: array[start : start + size] for name, array in inputs.items()})
        for size in sizes
        for start in range(0, rows, size)
    ]


def min_cosine(expected: list[Arrays], actual: list[Arrays]) -> float:
    """The smallest row-wise cosine over every float output of every batch."""
    worst = 1.0
    for want_outputs, got_outputs in zip(expected, actual, strict=True):
        for name, want in want_outputs.items():
            if want.dtype.kind != "f":
                continue
            a = want.reshape(len(want), -1).astype(np.float64)
            b = got_outputs[name].reshape(len(want), -1).astype(np.float64)
            norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
            both_zero = (np.abs(a).sum(axis=1) == 0) & (np.abs(b).sum(axis=1) == 0)
            cos = np.where(both_zero, 1.0, (a * b).sum(axis=1) / np.maximum(norms, 1e-30))
            worst = min(worst, float(cos.min(initial=1.0)))
    return worst


def top1_agreement(expected: list[Arrays], actual: list[Arrays], output: str) -> float:
    want = np.concatenate([batch[output].argmax(axis=1) for batch in expected])
    got = np.concatenate([batch[output].argmax(axis=1) for batch in actual])
    return float(np.mean(want == got))


def weight_nodes(model: Any) -> list[str]:
    """The named nodes dynamic int8 quantizes (WEIGHT_OPS with an initializer input)."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.name and node.op_type in WEIGHT_OPS and initializers.intersection(node.input)
    ]


def search_fp32_nodes(
    fp32_path: Path,
    quantize: Quantize,
    measure: GateMeasure,
    out_path: Path,
    *,
    max_evaluations: int,
) -> SearchResult:
    """Write to `out_path` the int8 graph that keeps the fewest nodes in fp32 and meets
    `measure`'s gate; `passed` is False (and nothing written) when none did within
    `max_evaluations`."""
    import onnx

    workdir = out_path.parent / ".int8-search"
    workdir.mkdir()
    try:
        quantize(workdir / "int8.onnx")
        fp32 = onnx.load(str(fp32_path))
        int8 = onnx.load(str(workdir / "int8.onnx"))
        candidates = weight_nodes(fp32)
        search = _Search(fp32, int8, measure, out_path, workdir, max_evaluations)
        if search.meets(frozenset()) is False and candidates:
            batch = measure.batches[-1]
            ranked = rank_by_isolated_error(fp32, int8, candidates, batch, workdir)
            _grow_then_shrink(search, ranked)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    order = {name: index for index, name in enumerate(candidates)}
    kept, value = search.best or search.closest
    return SearchResult(
        kept=sorted(kept, key=order.__getitem__),
        value=value,
        passed=search.best is not None,
        evaluations=search.evaluations,
        candidates=len(candidates),
    )


def rank_by_isolated_error(
    fp32: Any, int8: Any, candidates: list[str], batch: Arrays, workdir: Path
) -> list[str]:
    """Candidates by the relative error int8 makes in each alone, largest first: one run
    of the fp32 graph beside a copy of each node's quantized replacement (renamed) fed
    the same fp32 tensors."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(fp32)
    domains = {opset.domain for opset in probe.opset_import}
    probe.opset_import.extend(o for o in int8.opset_import if o.domain not in domains)
    int8_initializers = {tensor.name: tensor for tensor in int8.graph.initializer}
    added_initializers = {tensor.name for tensor in probe.graph.initializer}
    pairs = []  # (a candidate's output in fp32, the same from its int8 copy)
    nodes = [node for node in fp32.graph.node if node.name in candidates]
    for index, node in enumerate(nodes):
        # One copy per candidate, even of a quantizer node two of them share.
        suffix = f"{ISOLATED}/{index}"
        copies = _replacement(int8, node)
        internal = {name for copy in copies for name in copy.output if name}
        for position, copy in enumerate(copies):
            renamed = onnx.NodeProto()
            renamed.CopyFrom(copy)
            renamed.name = f"{copy.name}{suffix}/{position}"  # quantizer nodes may be unnamed
            for field in (renamed.input, renamed.output):
                field[:] = [f"{n}{suffix}" if n in internal else n for n in field]
            probe.graph.node.append(renamed)
            for name in copy.input:
                if name in int8_initializers and name not in added_initializers:
                    probe.graph.initializer.append(int8_initializers[name])
                    added_initializers.add(name)
        pairs.append((node.output[0], f"{node.output[0]}{suffix}"))
    graph_outputs = {output.name for output in probe.graph.output}
    probe.graph.output.extend(
        onnx.ValueInfoProto(name=name)
        for pair in pairs
        for name in pair
        if name not in graph_outputs
    )
    path = workdir / "probe.onnx"
    onnx.save_model(probe, str(path))
    session = create_session(path)
    names = [name for pair in pairs for name in pair]
    feed = {graph_input.name: batch[graph_input.name] for graph_input in session.get_inputs()}
    values = dict(zip(names, session.run(names, feed), strict=True))
    path.unlink()
    errors = {}
    for node_name, (exact, quantized) in zip([n.name for n in nodes], pairs, strict=True):
        want = values[exact].astype(np.float64)
        difference = np.linalg.norm(values[quantized].astype(np.float64) - want)
        errors[node_name] = float(difference / max(float(np.linalg.norm(want)), 1e-30))
    return sorted(candidates, key=lambda name: -errors[name])


def _replacement(int8: Any, node: Any) -> list[Any]:
    """The int8 graph's nodes that compute `node`'s outputs from its inputs."""
    producers = {name: n for n in int8.graph.node for name in n.output if name}
    stop = {*node.input, *(t.name for t in int8.graph.initializer)}
    stop |= {graph_input.name for graph_input in int8.graph.input}
    found: dict[int, Any] = {}
    pending, seen = [name for name in node.output if name], set()
    while pending:
        name = pending.pop()
        if name in stop or name in seen or name not in producers:
            continue
        seen.add(name)
        producer = producers[name]
        found[id(producer)] = producer
        pending.extend(producer.input)
    return [n for n in int8.graph.node if id(n) in found]


def _grow_then_shrink(search: _Search, ranked: list[str]) -> None:
    """Keep the top-ranked nodes: the smallest count that holds, then drop what is not
    needed. Stops where the evaluations run out; `search.best` holds the result."""
    # Keeping every node is no int8 at all: at most all but one.
    most = len(ranked) - 1
    counts = sorted({min(2**power, most) for power in range(most.bit_length() + 1)} - {0})
    low, high = 0, None  # the largest count known to fail, the smallest known to hold
    for count in counts:
        verdict = search.meets(frozenset(ranked[:count]))
        if verdict is None:
            return
        if verdict:
            high = count
            break
        low = count
    if high is None:
        return
    while high - low > 1:
        middle = (low + high) // 2
        verdict = search.meets(frozenset(ranked[:middle]))
        if verdict is None:
            return
        low, high = (low, middle) if verdict else (middle, high)
    kept = set(ranked[:high])
    for name in reversed(ranked[:high]):
        verdict = search.meets(frozenset(kept - {name}))
        if verdict is None:
            return
        if verdict:
            kept.discard(name)


class _Search:
    """Evaluations, cached by node set; the best passing candidate so far is in `out_path`."""

    def __init__(
        self,
        fp32: Any,
        int8: Any,
        measure: GateMeasure,
        out_path: Path,
        workdir: Path,
        max_evaluations: int,
    ) -> None:
        self.fp32, self.int8, self.measure = fp32, int8, measure
        self.out_path, self.workdir = out_path, workdir
        self.max_evaluations = max_evaluations
        self.values: dict[frozenset[str], float] = {}
        self.evaluations = 0
        self.best: tuple[frozenset[str], float] | None = None
        self.closest: tuple[frozenset[str], float] = (frozenset(), -1.0)

    def meets(self, kept: frozenset[str]) -> bool | None:
        """Whether `kept` meets the gate; None when the evaluations are spent."""
        import onnx

        if kept in self.values:
            return self.measure.passes(self.values[kept])
        if self.evaluations >= self.max_evaluations:
            return None
        self.evaluations += 1
        path = self.workdir / "candidate.onnx"
        onnx.save_model(restore_fp32(self.int8, self.fp32, kept), str(path))
        value = self.measure(path)
        self.values[kept] = value
        passed = self.measure.passes(value)
        fewer = self.best is None or (len(kept), -value) < (len(self.best[0]), -self.best[1])
        if passed and fewer:
            self.best = (kept, value)
            shutil.copyfile(path, self.out_path)
        if not passed and value > self.closest[1]:
            self.closest = (kept, value)
        return passed


def restore_fp32(int8: Any, fp32: Any, kept: frozenset[str]) -> Any:
    """`int8` with the quantized replacements of the `kept` nodes swapped back for those
    fp32 nodes (onnxruntime's quantizer keeps each node's output names), then without
    the nodes and initializers nothing uses any more."""
    import onnx

    originals = [node for node in fp32.graph.node if node.name in kept]
    restored_by_output = {name: node for node in originals for name in node.output if name}
    nodes: list[Any] = []
    for node in int8.graph.node:
        original = next(
            (restored_by_output[o] for o in node.output if o in restored_by_output), None
        )
        if original is None:
            nodes.append(node)
        elif all(other is not original for other in nodes):
            nodes.append(original)  # where its replacement's last node was: still in order
    needed = {output.name for output in int8.graph.output}
    used: list[Any] = []
    for node in reversed(nodes):
        if needed.intersection(node.output):
            used.append(node)
            needed.update(node.input)
    initializers = {tensor.name: tensor for tensor in fp32.graph.initializer}
    initializers.update((tensor.name, tensor) for tensor in int8.graph.initializer)
    model = onnx.ModelProto()
    model.CopyFrom(int8)
    del model.graph.node[:], model.graph.initializer[:], model.graph.value_info[:]
    model.graph.node.extend(reversed(used))
    model.graph.initializer.extend(t for name, t in initializers.items() if name in needed)
    return model


def _trimmed(batch: Arrays) -> Arrays:
    mask = batch.get("attention_mask")
    if mask is None or mask.ndim != 2:
        return batch
    used = np.flatnonzero(mask.any(axis=0))
    length = int(used[-1]) + 1 if len(used) else 1
    return {name: a[:, :length] if a.shape == mask.shape else a for name, a in batch.items()}
