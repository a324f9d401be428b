"""MicroBatcher: batching bounds, queue limit, errors, cancellation, thread submission."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from unetkit.serving.batching import BatcherClosedError, MicroBatcher, QueueFullError


def run(coro):
    return asyncio.run(coro)


def test_concurrent_items_are_batched_within_bounds():
    sizes = []

    def double(items):
        sizes.append(len(items))
        return [x * 2 for x in items]

    async def main():
        b = MicroBatcher(double, max_batch=4, max_wait_ms=50, max_queue=100)
        await b.start()
        try:
            return await asyncio.gather(*(b.submit(i) for i in range(10))), b.stats.to_json()
        finally:
            await b.stop()

    results, stats = run(main())
    assert results == [i * 2 for i in range(10)]
    assert max(sizes) == 4 and sum(sizes) == 10
    assert sizes[0] == 4  # everything was queued before the worker woke up
    assert stats["items"] == 10 and stats["max_batch_seen"] == 4


def test_single_item_waits_at_most_max_wait():
    async def main():
        b = MicroBatcher(lambda xs: xs, max_batch=8, max_wait_ms=30, max_queue=4)
        await b.start()
        try:
            t0 = time.perf_counter()
            assert await b.submit("x") == "x"
            return time.perf_counter() - t0
        finally:
            await b.stop()

    assert run(main()) < 0.5


def test_max_batch_one_never_batches():
    sizes = []

    async def main():
        b = MicroBatcher(lambda xs: sizes.append(len(xs)) or xs, max_batch=1, max_wait_ms=20, max_queue=50)
        await b.start()
        try:
            await asyncio.gather(*(b.submit(i) for i in range(6)))
        finally:
            await b.stop()

    run(main())
    assert sizes == [1] * 6


def test_full_queue_refuses_at_once_with_retry_after():
    gate = threading.Event()

    def blocked(items):
        gate.wait(5)
        return items

    async def main():
        b = MicroBatcher(blocked, max_batch=1, max_wait_ms=0, max_queue=2)
        await b.start()
        try:
            first = asyncio.create_task(b.submit(0))
            await asyncio.sleep(0.05)  # the worker took item 0 and blocks in the batch function
            queued = [asyncio.create_task(b.submit(i)) for i in (1, 2)]
            await asyncio.sleep(0.01)
            with pytest.raises(QueueFullError) as info:
                await b.submit(3)
            gate.set()
            done = await asyncio.gather(first, *queued)
            return info.value, done
        finally:
            gate.set()
            await b.stop()

    err, done = run(main())
    assert err.retry_after >= 1 and err.queued == 2
    assert done == [0, 1, 2]


def test_errors_reach_callers_and_worker_keeps_serving():
    def flaky(items):
        if "bad" in items:
            raise ValueError("boom")
        return [s.upper() for s in items]

    async def main():
        b = MicroBatcher(flaky, max_batch=1, max_wait_ms=0, max_queue=8)
        await b.start()
        try:
            with pytest.raises(ValueError, match="boom"):
                await b.submit("bad")
            return await b.submit("ok")
        finally:
            await b.stop()

    assert run(main()) == "OK"


def test_wrong_result_count_is_an_error():
    async def main():
        b = MicroBatcher(lambda xs: [], max_batch=2, max_wait_ms=0, max_queue=8)
        await b.start()
        try:
            with pytest.raises(RuntimeError, match="0 results for 1 items"):
                await b.submit(1)
        finally:
            await b.stop()

    run(main())


def test_cancelled_items_are_skipped():
    seen = []
    gate = threading.Event()

    def record(items):
        gate.wait(5)
        seen.extend(items)
        return items

    async def main():
        b = MicroBatcher(record, max_batch=1, max_wait_ms=0, max_queue=8)
        await b.start()
        try:
            first = asyncio.create_task(b.submit("first"))
            await asyncio.sleep(0.05)
            doomed = asyncio.create_task(b.submit("doomed"))
            await asyncio.sleep(0.01)
            doomed.cancel()
            gate.set()
            assert await first == "first"
            assert await b.submit("after") == "after"
        finally:
            gate.set()
            await b.stop()

    run(main())
    assert seen == ["first", "after"]


def test_submit_from_thread_many_shares_batches():
    sizes = []

    def fn(items):
        sizes.append(len(items))
        return [i + 1 for i in items]

    async def main():
        b = MicroBatcher(fn, max_batch=4, max_wait_ms=20, max_queue=16)
        await b.start()
        try:
            return await asyncio.to_thread(b.submit_from_thread_many, list(range(4)))
        finally:
            await b.stop()

    assert run(main()) == [1, 2, 3, 4]
    assert sizes == [4]


def test_submit_when_not_running_and_after_stop():
    async def main():
        b = MicroBatcher(lambda xs: xs, max_batch=2, max_wait_ms=0, max_queue=2)
        with pytest.raises(BatcherClosedError):
            await b.submit(1)
        await b.start()
        await b.stop()
        with pytest.raises(BatcherClosedError):
            await b.submit(1)

    run(main())


def test_invalid_bounds():
    with pytest.raises(ValueError):
        MicroBatcher(lambda xs: xs, max_batch=0)
    with pytest.raises(ValueError):
        MicroBatcher(lambda xs: xs, max_queue=0)
