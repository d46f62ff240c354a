"""The dynamic batcher in-process: packing, splitting, errors, backpressure, cancel, drain."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from model_runtime.batcher import BatchingConfig, DynamicBatcher, Tensors
from model_runtime.engine import Engine
from model_runtime.errors import InferenceError, InvalidInput, ModelNotReady, ServerBusy
from tests.support.tiny_model import tiny_images


class FakeEngine:
    """y = 2x per row; records each batch's size; can block, fail or drop a row."""

    name = "fake"

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.drop_row = False

    def resolve_outputs(self, output_names: Sequence[str] | None) -> list[str]:
        return list(output_names or ["y"])

    def prepare(self, inputs: Tensors) -> tuple[Tensors, dict[str, Any]]:
        if not np.isfinite(inputs["x"]).all():
            raise InvalidInput("input 'x' contains NaN")
        return dict(inputs), {}

    def run(self, feed: Tensors, names: Sequence[str]) -> Tensors:
        self.batches.append(len(feed["x"]))
        self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        y = feed["x"] * 2
        return {"y": y[:-1] if self.drop_row else y}

    def check_outputs(self, outputs: Tensors) -> None:
        pass


def rows(size: int, start: int, width: int = 3) -> np.ndarray:
    return np.arange(start, start + size * width, dtype=np.float32).reshape(size, width)


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def test_batched_equals_unbatched_on_the_real_model(tiny_engine: Engine) -> None:
    sizes = [1, 3, 2, 5, 1, 4, 1, 2, 7, 1, 1, 3] * 3
    bounds = np.cumsum([0, *sizes])
    images = tiny_images(int(bounds[-1]))
    requests = [images[a:b] for a, b in itertools.pairwise(bounds)]

    async def main() -> list[Tensors]:
        batcher = DynamicBatcher(tiny_engine, BatchingConfig(max_batch_size=16, max_delay_ms=20))
        results = await asyncio.gather(*(batcher.infer({"image": r}) for r in requests))
        await batcher.close()
        return [outputs for outputs, _ in results]

    for request, batched in zip(requests, asyncio.run(main()), strict=True):
        alone = tiny_engine.infer({"image": request})
        np.testing.assert_array_equal(batched["label"], alone["label"])
        np.testing.assert_allclose(batched["probabilities"], alone["probabilities"], atol=1e-6)


def test_mixed_sizes_are_packed_up_to_the_limit_and_split_back_exactly() -> None:
    engine = FakeEngine()
    sizes = [3, 5, 2, 7, 1, 4, 8, 2, 1, 6]
    starts = np.cumsum([0, *sizes]) * 10

    async def main() -> list[Tensors]:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=8, max_delay_ms=50))
        results = await asyncio.gather(
            *(batcher.infer({"x": rows(n, int(s))}) for n, s in zip(sizes, starts, strict=False))
        )
        await batcher.close()
        return [outputs for outputs, _ in results]

    results = asyncio.run(main())
    for size, start, outputs in zip(sizes, starts, results, strict=False):
        np.testing.assert_array_equal(outputs["y"], rows(size, int(start)) * 2)
    assert sum(engine.batches) == sum(sizes)
    assert max(engine.batches) <= 8
    assert len(engine.batches) < len(sizes)  # requests did share batches


def test_a_request_over_the_batch_limit_runs_alone() -> None:
    engine = FakeEngine()

    async def main() -> Tensors:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=4, max_delay_ms=20))
        big, _ = await batcher.infer({"x": rows(9, 0)})
        await batcher.close()
        return big

    np.testing.assert_array_equal(asyncio.run(main())["y"], rows(9, 0) * 2)
    assert engine.batches == [9]


def test_requests_of_different_shapes_are_not_mixed() -> None:
    engine = FakeEngine()

    async def main() -> None:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=16, max_delay_ms=30))
        narrow, wide = rows(2, 0, width=3), rows(2, 0, width=5)
        results = await asyncio.gather(
            batcher.infer({"x": narrow}), batcher.infer({"x": wide}), batcher.infer({"x": narrow})
        )
        await batcher.close()
        np.testing.assert_array_equal(results[1][0]["y"], wide * 2)
        np.testing.assert_array_equal(results[2][0]["y"], narrow * 2)

    asyncio.run(main())
    assert sorted(engine.batches) == [2, 4]


def test_a_result_that_does_not_split_is_an_error_for_every_request() -> None:
    engine = FakeEngine()
    engine.drop_row = True

    async def main() -> list[Any]:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=8, max_delay_ms=20))
        results = await asyncio.gather(
            *(batcher.infer({"x": rows(2, i * 10)}) for i in range(3)), return_exceptions=True
        )
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, InferenceError) for r in results)
    assert "5 rows of output 'y' for a batch of 6 samples" in str(results[0])


def test_when_the_batch_fails_every_waiting_request_gets_the_error() -> None:
    engine = FakeEngine()
    engine.fail = InferenceError("model 'fake' failed: out of memory")

    async def main() -> list[Any]:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=8, max_delay_ms=20))
        results = await asyncio.gather(
            *(batcher.infer({"x": rows(1, i)}) for i in range(5)), return_exceptions=True
        )
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert [str(r) for r in results] == ["model 'fake' failed: out of memory"] * 5
    assert engine.batches == [5]


def test_an_invalid_request_fails_alone() -> None:
    engine = FakeEngine()

    async def main() -> list[Any]:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=8, max_delay_ms=20))
        bad = np.array([[np.nan, 0, 0]], dtype=np.float32)
        results = await asyncio.gather(
            batcher.infer({"x": rows(1, 0)}),
            batcher.infer({"x": bad}),
            batcher.infer({"x": rows(1, 3)}),
            return_exceptions=True,
        )
        await batcher.close()
        return results

    good, bad, other = asyncio.run(main())
    assert isinstance(bad, InvalidInput)
    np.testing.assert_array_equal(good[0]["y"], rows(1, 0) * 2)
    np.testing.assert_array_equal(other[0]["y"], rows(1, 3) * 2)
    assert engine.batches == [2]


def test_a_full_queue_refuses_with_server_busy() -> None:
    engine = FakeEngine()
    engine.gate.clear()

    async def main() -> None:
        batcher = DynamicBatcher(
            engine, BatchingConfig(max_batch_size=1, max_delay_ms=0, queue_size=2)
        )
        running = asyncio.ensure_future(batcher.infer({"x": rows(1, 0)}))
        await until(lambda: engine.batches == [1])  # taken: the queue is empty again
        queued = [asyncio.ensure_future(batcher.infer({"x": rows(1, i)})) for i in (1, 2)]
        await until(lambda: batcher.queue_depth == 2)
        with pytest.raises(ServerBusy) as refused:
            await batcher.infer({"x": rows(1, 3)})
        assert refused.value.retry_after == 1
        assert "2 requests queued" in str(refused.value)
        engine.gate.set()
        await asyncio.gather(running, *queued)
        await batcher.close()

    asyncio.run(main())


def test_a_cancelled_request_leaves_the_queue_and_never_runs() -> None:
    engine = FakeEngine()
    engine.gate.clear()

    async def main() -> None:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=8, max_delay_ms=0))
        first = asyncio.ensure_future(batcher.infer({"x": rows(1, 0)}))
        await until(lambda: engine.batches == [1])
        leaving = asyncio.ensure_future(batcher.infer({"x": rows(3, 10)}))
        staying = asyncio.ensure_future(batcher.infer({"x": rows(2, 20)}))
        await until(lambda: batcher.queue_depth == 2)
        leaving.cancel()
        await until(lambda: batcher.queue_depth == 1)
        engine.gate.set()
        await first
        outputs, _ = await staying
        np.testing.assert_array_equal(outputs["y"], rows(2, 20) * 2)
        assert leaving.cancelled()
        await batcher.close()

    asyncio.run(main())
    assert engine.batches == [1, 2]  # the cancelled request's 3 rows never ran


def test_close_drains_queued_work_and_refuses_new_requests() -> None:
    engine = FakeEngine()
    engine.gate.clear()

    async def main() -> None:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=2, max_delay_ms=1000))
        pending = [asyncio.ensure_future(batcher.infer({"x": rows(1, i)})) for i in range(5)]
        await until(lambda: len(engine.batches) == 1)
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.01)
        with pytest.raises(ModelNotReady, match="shutting down"):
            await batcher.infer({"x": rows(1, 9)})
        engine.gate.set()
        await closing
        for index, task in enumerate(pending):
            np.testing.assert_array_equal(task.result()[0]["y"], rows(1, index) * 2)

    started = time.monotonic()
    asyncio.run(main())
    # Draining does not wait out max_delay (1 s) for batches that cannot fill.
    assert time.monotonic() - started < 0.9
    assert engine.batches == [2, 2, 1]


def test_max_delay_is_respected() -> None:
    engine = FakeEngine()

    async def lone(delay_ms: float) -> float:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=8, max_delay_ms=delay_ms))
        started = time.monotonic()
        await batcher.infer({"x": rows(1, 0)})
        elapsed = time.monotonic() - started
        await batcher.close()
        return elapsed

    async def full_batch() -> float:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=4, max_delay_ms=5000))
        started = time.monotonic()
        await asyncio.gather(*(batcher.infer({"x": rows(1, i)}) for i in range(4)))
        elapsed = time.monotonic() - started
        await batcher.close()
        return elapsed

    # A lone request waits out max_delay for company, and not much longer.
    assert 0.095 <= asyncio.run(lone(100)) < 0.6
    assert asyncio.run(lone(0)) < 0.1
    # A full batch goes at once, long before its delay.
    assert asyncio.run(full_batch()) < 1.0
