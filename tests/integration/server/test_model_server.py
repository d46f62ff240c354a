"""`python -m model_runtime.server` as a real process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localdev.server_process import ServerProcess, wait_ready
from model_runtime.engine import Engine
from model_runtime.server import main
from tests.support.server import (
    ROOT,
    infer_body,
    outputs_of,
    raw_request,
    request,
    request_full,
)

INFER_DIGITS = "/v2/models/digits/infer"
INFER_SLOW = "/v2/models/slow/infer"


def gather(*coroutines: Any) -> list[Any]:
    async def run() -> list[Any]:
        return list(await asyncio.gather(*coroutines))

    return asyncio.run(run())


def poll(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_batched_responses_equal_unbatched_ones(
    start_server: Any, digits_dir: Path, digits_engine: Engine, digits_images: np.ndarray
) -> None:
    batched = start_server(
        {
            "MODEL_DIR": str(digits_dir),
            "INFERSTACK_MAX_BATCH_SIZE": "32",
            "INFERSTACK_MAX_DELAY_MS": "20",
        }
    )
    unbatched = start_server({"MODEL_DIR": str(digits_dir), "INFERSTACK_MAX_BATCH_SIZE": "1"})
    sizes = [1, 2, 1, 4, 3, 1, 8, 1, 5, 2, 1, 1, 6, 1, 2, 3]
    bounds = np.cumsum([0, *sizes])
    bodies = [infer_body({"image": digits_images[a:b]}) for a, b in itertools.pairwise(bounds)]
    before = batched.metrics()

    on = gather(*(request(batched.port, "POST", INFER_DIGITS, body) for body in bodies))
    off = gather(*(request(unbatched.port, "POST", INFER_DIGITS, body) for body in bodies))

    after = batched.metrics()
    for (status_on, body_on), (status_off, body_off), a, b in zip(
        on, off, bounds, bounds[1:], strict=False
    ):
        assert status_on == status_off == 200
        got, alone = outputs_of(body_on), outputs_of(body_off)
        direct = digits_engine.infer({"image": digits_images[a:b]})
        np.testing.assert_array_equal(got["label"], alone["label"])
        np.testing.assert_array_equal(got["label"], direct["label"])
        np.testing.assert_allclose(got["probabilities"], alone["probabilities"], atol=1e-6)
    # Mixed sizes were packed: fewer batches than requests, every sample counted once.
    batches = after["inferstack_batch_size_count"] - before["inferstack_batch_size_count"]
    samples = after["inferstack_batch_size_sum"] - before["inferstack_batch_size_sum"]
    assert samples == sum(sizes)
    assert batches < len(sizes)
    assert after['inferstack_requests_total{model="digits",outcome="ok"}'] == len(sizes)
    assert after["inferstack_request_latency_seconds_count"] == len(sizes)
    assert after['inferstack_queue_depth{model="digits"}'] == 0
    assert after['inferstack_inflight_requests{model="digits"}'] == 0
    # The same app as Lambda: protocol errors still come back as JSON 4xx.
    status, body = asyncio.run(request(batched.port, "POST", INFER_DIGITS, b'{"inputs": ['))
    assert status == 400 and json.loads(body)["error"].startswith("malformed JSON")


def test_metrics_show_queue_and_inflight_while_busy(start_server: Any, slow_dir: Path) -> None:
    server = start_server(
        {
            "MODEL_DIR": str(slow_dir),
            "INFERSTACK_MAX_BATCH_SIZE": "1",
            "INFERSTACK_MAX_DELAY_MS": "0",
        }
    )
    body = infer_body({"x": np.ones((1, 4), np.float32)})
    seen: list[dict[str, float]] = []

    async def load_and_watch() -> list[tuple[int, bytes]]:
        calls = [
            asyncio.ensure_future(request(server.port, "POST", INFER_SLOW, body)) for _ in range(4)
        ]
        await asyncio.sleep(0.05)
        seen.append(await asyncio.to_thread(server.metrics))
        return list(await asyncio.gather(*calls))

    results = asyncio.run(load_and_watch())
    assert [status for status, _ in results] == [200] * 4
    busy = seen[0]
    assert busy['inferstack_inflight_requests{model="slow"}'] >= 3
    assert busy['inferstack_queue_depth{model="slow"}'] >= 2
    idle = server.metrics()
    assert idle['inferstack_queue_depth{model="slow"}'] == 0
    assert idle['inferstack_inflight_requests{model="slow"}'] == 0
    assert idle['inferstack_batch_size_bucket{le="1.0",model="slow"}'] == 4


def test_a_full_queue_answers_503_with_retry_after(start_server: Any, slow_dir: Path) -> None:
    server = start_server(
        {
            "MODEL_DIR": str(slow_dir),
            "INFERSTACK_MAX_BATCH_SIZE": "1",
            "INFERSTACK_MAX_DELAY_MS": "0",
            "INFERSTACK_QUEUE_SIZE": "2",
        }
    )
    body = infer_body({"x": np.ones((1, 4), np.float32)})
    results = gather(*(request_full(server.port, "POST", INFER_SLOW, body) for _ in range(10)))
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) == {200, 503}
    # One running and two queued at most are accepted while the burst arrives.
    assert statuses.count(503) >= 10 - 4
    refused = next((headers, payload) for status, headers, payload in results if status == 503)
    assert refused[0]["retry-after"] == "1"
    assert "requests queued, its limit" in json.loads(refused[1])["error"]
    metrics = server.metrics()
    assert metrics['inferstack_requests_total{model="slow",outcome="rejected"}'] == statuses.count(
        503
    )


def test_a_client_that_disconnects_is_dropped_from_the_queue(
    start_server: Any, slow_dir: Path
) -> None:
    server = start_server(
        {
            "MODEL_DIR": str(slow_dir),
            "INFERSTACK_MAX_BATCH_SIZE": "1",
            "INFERSTACK_MAX_DELAY_MS": "0",
        }
    )
    body = infer_body({"x": np.ones((1, 4), np.float32)})

    async def scenario() -> None:
        first = asyncio.ensure_future(request(server.port, "POST", INFER_SLOW, body))
        await asyncio.to_thread(poll, lambda: server.metrics()["inferstack_batch_size_count"] == 1)
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw_request("POST", INFER_SLOW, body))
        await writer.drain()
        await asyncio.to_thread(
            poll, lambda: server.metrics()['inferstack_queue_depth{model="slow"}'] == 1
        )
        writer.close()  # the client gives up while its request waits
        await asyncio.to_thread(
            poll, lambda: server.metrics()['inferstack_queue_depth{model="slow"}'] == 0
        )
        assert (await first)[0] == 200

    asyncio.run(scenario())
    time.sleep(0.5)  # long enough for the dropped request to have run, were it still queued
    metrics = server.metrics()
    assert metrics['inferstack_requests_total{model="slow",outcome="cancelled"}'] == 1, (
        {k: v for k, v in metrics.items() if "{" not in k or "total" in k},
        server.output(),
    )
    assert metrics["inferstack_batch_size_count"] == 1
    assert metrics['inferstack_inflight_requests{model="slow"}'] == 0
    assert "Traceback" not in server.output()


def test_sigterm_drains_in_flight_requests(start_server: Any, slow_dir: Path) -> None:
    server = start_server(
        {
            "MODEL_DIR": str(slow_dir),
            "INFERSTACK_MAX_BATCH_SIZE": "1",
            "INFERSTACK_MAX_DELAY_MS": "0",
        }
    )
    body = infer_body({"x": np.arange(4, dtype=np.float32).reshape(1, 4)})

    async def scenario() -> list[tuple[int, bytes]]:
        calls = [
            asyncio.ensure_future(request(server.port, "POST", INFER_SLOW, body)) for _ in range(5)
        ]
        await asyncio.to_thread(
            poll, lambda: server.metrics()['inferstack_inflight_requests{model="slow"}'] == 5
        )
        server.process.send_signal(signal.SIGTERM)
        return list(await asyncio.gather(*calls))

    results = asyncio.run(scenario())
    assert [status for status, _ in results] == [200] * 5
    for _, payload in results:
        np.testing.assert_array_equal(outputs_of(payload)["y"], [[0, 1, 2, 3]])
    # uvicorn ends by re-raising the SIGTERM it handled: a clean signal exit.
    assert server.process.wait(30) == -signal.SIGTERM
    with pytest.raises(OSError):
        asyncio.run(request(server.port, "GET", "/v2/health/live"))


def test_torch_backend_serves_the_same_predictions(
    start_server: Any, digits_dir: Path, digits_engine: Engine, digits_images: np.ndarray
) -> None:
    server = start_server(
        {"MODEL_DIR": str(digits_dir), "INFERSTACK_BACKEND": "torch", "INFERSTACK_DEVICE": "cpu"}
    )
    images = digits_images[:16]
    status, body = asyncio.run(
        request(server.port, "POST", INFER_DIGITS, infer_body({"image": images}))
    )
    assert status == 200
    got, want = outputs_of(body), digits_engine.infer({"image": images})
    np.testing.assert_array_equal(got["label"], want["label"])
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"INFERSTACK_BACKEND": "tensorflow"},
            "INFERSTACK_BACKEND has value 'tensorflow'; allowed: onnxruntime, torch",
        ),
        (
            {"INFERSTACK_DEVICE": "gpu"},
            "INFERSTACK_DEVICE has value 'gpu'; allowed: auto, cpu, cuda, cuda:N",
        ),
        (
            {"INFERSTACK_DTYPE": "fp16"},
            "INFERSTACK_DTYPE has value 'fp16', which needs INFERSTACK_BACKEND=torch",
        ),
        (
            {"INFERSTACK_DTYPE": "int4", "INFERSTACK_BACKEND": "torch"},
            "INFERSTACK_DTYPE has value 'int4'; allowed: fp32, fp16, bf16",
        ),
        (
            {"INFERSTACK_PORT": "http"},
            "INFERSTACK_PORT has value 'http'; allowed: a whole number 1..65535",
        ),
        (
            {"INFERSTACK_MAX_BATCH_SIZE": "0"},
            "INFERSTACK_MAX_BATCH_SIZE has value '0'; allowed: a whole number 1..65536",
        ),
        (
            {"INFERSTACK_MAX_DELAY_MS": "-1"},
            "INFERSTACK_MAX_DELAY_MS has value '-1'; allowed: a number 0..10000",
        ),
        ({"INFERSTACK_QUEUE_SIZE": "lots"}, "INFERSTACK_QUEUE_SIZE has value 'lots'"),
        (
            {"INFERSTACK_LOG_LEVEL": "loud"},
            "INFERSTACK_LOG_LEVEL has value 'loud'; allowed: debug, info, warning, error",
        ),
        ({"MODEL_DIR": ""}, "MODEL_DIR"),
        (
            {"INFERSTACK_BACKEND": "torch", "INFERSTACK_DEVICE": "cuda:63"},
            "INFERSTACK_DEVICE: device 'cuda:63' is not available",
        ),
    ],
)
def test_bad_configuration_stops_start_with_one_line(
    env: dict[str, str], message: str, digits_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main({"MODEL_DIR": str(digits_dir), **env}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("inferstack server: ")
    assert message in err


def test_a_corrupt_artifact_stops_start_naming_the_file(digits_dir: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "digits"
    shutil.copytree(digits_dir, corrupt)
    with open(corrupt / "model.onnx", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01")
    result = subprocess.run(
        [sys.executable, "-m", "model_runtime.server"],
        cwd=ROOT,
        env={"MODEL_DIR": str(corrupt), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"model file {corrupt / 'model.onnx'} is corrupt or was modified" in lines[0]


def test_the_image_entrypoint_and_env_contract(
    start_server: Any, digits_dir: Path, digits_images: np.ndarray
) -> None:
    """Run what the Dockerfile runs, with the Dockerfile's environment, as a local process."""
    dockerfile = (ROOT / "docker" / "gpu.Dockerfile").read_text()
    final_stage = dockerfile[dockerfile.rindex("\nFROM ") :]
    instructions = _instructions(final_stage)
    assert instructions["USER"] == "10001"  # not root
    assert instructions["EXPOSE"] == "8080"
    entrypoint = json.loads(instructions["ENTRYPOINT"])
    assert entrypoint == ["python3", "-m", "model_runtime.server"]
    env = dict(item.split("=", 1) for item in shlex.split(instructions["ENV"]))
    assert env["INFERSTACK_PORT"] == "8080" and env["MODEL_DIR"] == "/models"
    assert env["INFERSTACK_BACKEND"] == "torch"

    # Here: this checkout's interpreter, the test model, a free port on loopback.
    env = {
        **env,
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "MODEL_DIR": str(digits_dir),
    }
    env.pop("INFERSTACK_HOST"), env.pop("INFERSTACK_PORT")
    server: ServerProcess = start_server(env, wait=False, command=[sys.executable, *entrypoint[1:]])
    wait_ready(server)
    status, body = asyncio.run(
        request(server.port, "POST", INFER_DIGITS, infer_body({"image": digits_images[:1]}))
    )
    assert status == 200 and outputs_of(body)["label"].shape == (1,)

    healthcheck = json.loads(instructions["HEALTHCHECK"].split(" CMD ", 1)[1])
    probe = subprocess.run(
        [sys.executable, *healthcheck[1:]],
        env={"INFERSTACK_PORT": str(server.port)},
        capture_output=True,
        timeout=10,
    )
    assert probe.returncode == 0, probe.stderr
    assert server.stop() == -signal.SIGTERM
    probe = subprocess.run(
        [sys.executable, *healthcheck[1:]],
        env={"INFERSTACK_PORT": str(server.port)},
        capture_output=True,
        timeout=10,
    )
    assert probe.returncode != 0


def _instructions(stage: str) -> dict[str, str]:
    """The last value of each instruction in a Dockerfile stage (continuations joined)."""
    joined = stage.replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found[keyword] = " ".join(rest.split())
    return found


def test_a_client_that_sends_the_whole_body_first_reads_the_413(
    start_server: Any, digits_dir: Path
) -> None:
    """urllib writes the whole body before it reads the answer: the container server reads
    and drops the rest of a body over the limit before its 413, instead of closing the
    connection under the client (a reset)."""
    limit = 100_000
    server = start_server({"MODEL_DIR": str(digits_dir), "INFERSTACK_MAX_BODY_BYTES": str(limit)})
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}{INFER_DIGITS}",
        data=b"{" + b" " * (80 * limit) + b"}",  # 8 MB: more than the socket buffers hold
        headers={"content-type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert json.loads(caught.value.read()) == {
        "error": f"request body is over the limit of {limit} bytes"
    }
