"""Micro-batching of concurrent requests: a bounded asyncio queue and one worker.

The worker takes the first waiting item, then gathers more until it has ``max_batch`` items or ``max_wait_ms``
have passed, runs ``batch_fn(items) -> results`` in a dedicated thread and resolves each caller's future.
A full queue refuses new items at once (:class:`QueueFullError` → HTTP 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from unetkit.serving.limits import retry_after_seconds


class QueueFullError(Exception):
    """The batch queue is full; ``retry_after`` is a suggested wait in seconds."""

    def __init__(self, queued: int, retry_after: int):
        super().__init__(f"the inference queue is full ({queued} requests waiting); retry in {retry_after} s")
        self.queued = queued
        self.retry_after = retry_after


class BatcherClosedError(Exception):
    """The batcher is not running (the service is starting or shutting down)."""


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    max_batch_seen: int = 0
    busy_s: float = 0.0
    sizes: dict[int, int] = field(default_factory=dict)

    def record(self, size: int, seconds: float) -> None:
        self.batches += 1
        self.items += size
        self.max_batch_seen = max(self.max_batch_seen, size)
        self.busy_s += seconds
        self.sizes[size] = self.sizes.get(size, 0) + 1

    @property
    def mean_batch_s(self) -> float:
        return self.busy_s / self.batches if self.batches else 0.0

    def to_json(self) -> dict:
        return {
            "batches": self.batches,
            "items": self.items,
            "max_batch_seen": self.max_batch_seen,
            "mean_batch_size": round(self.items / self.batches, 3) if self.batches else 0.0,
            "mean_batch_ms": round(self.mean_batch_s * 1000, 3),
            "batch_sizes": {str(k): v for k, v in sorted(self.sizes.items())},
        }


@dataclass
class _Entry:
    item: Any
    future: asyncio.Future


class MicroBatcher:
    """Gathers concurrent ``submit`` calls into batches for ``batch_fn`` (run in one worker thread)."""

    def __init__(
        self,
        batch_fn: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch: int = 8,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
    ):
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_ms >= 0")
        self.batch_fn = batch_fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Entry] | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        """Start the worker on the running event loop (idempotent)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unetkit-batch")
        self._task = asyncio.create_task(self._run(), name="unetkit-micro-batcher")

    async def stop(self) -> None:
        """Stop the worker; items still queued fail with :class:`BatcherClosedError`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._queue is not None:
            while not self._queue.empty():
                entry = self._queue.get_nowait()
                if not entry.future.done():
                    entry.future.set_exception(BatcherClosedError("the service is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, item: Any) -> Any:
        """Queue one item and wait for its result; raises QueueFullError at once when the queue is full."""
        if not self.running or self._queue is None:
            raise BatcherClosedError("the inference worker is not running")
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Entry(item, future))
        except asyncio.QueueFull:
            queued = self._queue.qsize()
            raise QueueFullError(
                queued, retry_after_seconds(queued, self.max_batch, self.stats.mean_batch_s)
            ) from None
        try:
            return await future
        except asyncio.CancelledError:
            future.cancel()  # the worker skips cancelled entries that have not run yet
            raise

    def submit_from_thread_many(self, items: Sequence[Any], timeout: float | None = None) -> list[Any]:
        """Blocking: queue all ``items`` at once (so they can share a batch) and wait for every result.

        After ``timeout`` seconds the items are withdrawn (those not yet running are skipped) and
        ``concurrent.futures.TimeoutError`` is raised.
        """
        if self._loop is None:
            raise BatcherClosedError("the inference worker is not running")

        async def _all() -> list[Any]:
            return list(await asyncio.gather(*(self.submit(item) for item in items)))

        fut: ThreadFuture = asyncio.run_coroutine_threadsafe(_all(), self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    async def _gather(self) -> list[_Entry]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return [entry for entry in batch if not entry.future.done()]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            live = await self._gather()
            if not live:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.batch_fn, [e.item for e in live])
                if len(results) != len(live):
                    raise RuntimeError(
                        f"batch function returned {len(results)} results for {len(live)} items"
                    )
            except asyncio.CancelledError:
                for entry in live:
                    if not entry.future.done():
                        entry.future.set_exception(BatcherClosedError("the service is shutting down"))
                raise
            except Exception as exc:  # the callers see the error; the worker keeps serving
                for entry in live:
                    if not entry.future.done():
                        entry.future.set_exception(exc)
            else:
                for entry, result in zip(live, results):
                    if not entry.future.done():
                        entry.future.set_result(result)
            self.stats.record(len(live), time.perf_counter() - started)
