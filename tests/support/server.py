"""Helpers for the server tests: a deliberately slow model, the server harness as a
fixture (localdev.server_process), a small HTTP/1.1 client (cheap enough that 64 of them
leave the CPU to the server)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from layers.package import project_root
from localdev import server_process
from localdev.server_process import ServerProcess, raw_request, read_response
from model_build.parity import compare, random_batches
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.manifest import MODEL_FILE, ExporterInfo, Manifest, TensorSpec, hash_files

ROOT = project_root()
# The slow model's matrix chain: 0.2-1 s a call here (by load), whatever the batch size.
SLOW_STEPS = 800


def build_slow_model(directory: Path, steps: int = SLOW_STEPS) -> Path:
    """y = x, after a chain of 384x384 matrix products that ONNX Runtime cannot fold away
    (it depends on x): a model whose every run takes visible time, so that queues can be
    watched filling. Built as ONNX directly; parity is measured against y = x."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = np.linalg.qr(rng.standard_normal((384, 384)))[0].astype(np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "one"], ["scale"]),
        helper.make_node("Mul", ["weight", "scale"], ["chain0"]),
    ]
    for step in range(steps):
        nodes.append(helper.make_node("MatMul", [f"chain{step}", "weight"], [f"chain{step + 1}"]))
    nodes += [
        helper.make_node("ReduceSum", [f"chain{steps}"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["vanish"]),
        helper.make_node("Add", ["x", "vanish"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    directory.mkdir(parents=True)
    onnx.save(model, directory / MODEL_FILE)
    session = create_session(directory / MODEL_FILE)
    batches = random_batches({"x": np.arange(8, dtype=np.float32).reshape(2, 4)}, (1, 3))
    parity = compare(
        lambda batch: {"y": batch["x"]},
        lambda batch: {"y": session.run(["y"], batch)[0]},
        batches,
        reference_name="y = x (numpy)",
        atol=0.0,
        rtol=0.0,
    )
    assert parity.passed
    Manifest(
        name="slow",
        version="1",
        created_at=datetime.now(UTC),
        files=hash_files(directory, [MODEL_FILE]),
        inputs=[TensorSpec(name="x", datatype="FP32", shape=[-1, 4])],
        outputs=[TensorSpec(name="y", datatype="FP32", shape=[-1, 4])],
        opset=17,
        exporter=ExporterInfo(
            name="onnx.helper (test model)",
            torch_version="none",
            onnx_version=onnx.__version__,
            onnxruntime_version="see parity",
        ),
        max_batch_size=64,
        parity=parity,
    ).write(directory)
    return directory


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """start_server(env, wait=True, command=None) -> ServerProcess: the container server
    (or `command`, taking its port from INFERSTACK_PORT) on a free loopback port, logging
    under tmp_path. Every server it started is stopped by PID afterwards, also when the
    test failed."""
    started: list[ServerProcess] = []

    def start(
        env: dict[str, str], *, wait: bool = True, command: list[str] | None = None
    ) -> ServerProcess:
        def launch(port: int) -> list[str]:
            return command or server_process.container_server(port)

        if wait:
            server = server_process.start(launch, env, tmp_path)
        else:
            server = server_process.spawn(launch, env, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(timeout_s=10)


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match
    return int(match.group(1)) * 1024


def infer_body(inputs: dict[str, np.ndarray[Any, Any]]) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": list(array.shape),
                    "datatype": "FP32",
                    "data": array.ravel().tolist(),
                }
                for name, array in inputs.items()
            ]
        }
    ).encode()


async def request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    status, _, payload = await request_full(port, method, path, body)
    return status, payload


async def request_full(
    port: int, method: str, path: str, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw_request(method, path, body))
        return await read_response(reader)
    finally:
        writer.close()


def outputs_of(body: bytes) -> dict[str, np.ndarray[Any, Any]]:
    response = json.loads(body)
    return {
        output["name"]: np.array(output["data"]).reshape(output["shape"])
        for output in response["outputs"]
    }
