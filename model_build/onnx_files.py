"""ONNX models on disk: one file, or the graph beside its weights in external data.

protobuf cannot serialize a message over 2 GB, so a bigger model keeps its tensors in
`<model file>.data` beside the graph, which names that file (a path relative to the
graph's directory, where onnxruntime looks for it). Every file written goes into the
manifest's `files`, hashed, and is delivered and packaged like the model file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import onnx
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from model_runtime.manifest import external_data_name

# Under protobuf's 2 GB limit with room for the graph itself.
EXTERNAL_THRESHOLD_BYTES = 1_800_000_000
# Tensors smaller than this stay in the graph when the weights move out (shapes, scalars).
INLINE_TENSOR_BYTES = 1024


def save_onnx(
    model: onnx.ModelProto,
    path: Path,
    *,
    external_threshold_bytes: int = EXTERNAL_THRESHOLD_BYTES,
) -> list[str]:
    """Write `model` to `path`; over `external_threshold_bytes` its weights go to
    `<path.name>.data` beside it. Returns the file names written, the model file first.

    `model` still holds its weights afterwards (onnx moves them out while it saves)."""
    path = Path(path)
    data_name = external_data_name(path.name)
    # onnx appends to an existing data file: a rebuild must start from none.
    path.with_name(data_name).unlink(missing_ok=True)
    if model.ByteSize() <= external_threshold_bytes:
        onnx.save_model(model, str(path))
        return [path.name]
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data_name,
        size_threshold=INLINE_TENSOR_BYTES,
    )
    # onnx creates the data file readable by its owner only; a container or a user other
    # than the builder must read it like the graph file.
    path.with_name(data_name).chmod(path.stat().st_mode & 0o777)
    onnx.load_external_data_for_model(model, str(path.parent))
    return [path.name, data_name]


def onnx_file_names(path: Path) -> list[str]:
    """The model file's name and those of the external data files it references
    (relative to its directory), without reading any weights."""
    path = Path(path)
    model = onnx.load_model(str(path), load_external_data=False)
    locations: list[str] = []
    for tensor in _tensors(model.graph):
        if uses_external_data(tensor):
            location = ExternalDataInfo(tensor).location
            relative = PurePosixPath(location)
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(
                    f"{path} references external data outside its directory: {location!r}"
                )
            if location not in locations:
                locations.append(location)
    return [path.name, *locations]


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of the graph, its subgraphs' (If, Loop, Scan bodies) included."""
    yield from graph.initializer
    yield from (sparse.values for sparse in graph.sparse_initializer)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            subgraphs = [*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs]
            for subgraph in subgraphs:
                yield from _tensors(subgraph)
