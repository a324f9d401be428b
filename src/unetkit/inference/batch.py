"""Project inference: read every item, run the mode, write a new project with the output meta.

Original behaviour: docs/original-behaviour.md, "Project inference".

Images are read by a pool of prefetching threads, several images' regions go through one forward pass
(``batch_size`` regions), and annotations are written by a background writer thread, so reading, the model and
writing overlap. The output project is assembled in a hidden sibling folder and renamed into place at the end:
an interrupted run leaves no half-written project behind.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from unetkit import atomic
from unetkit.errors import ConfigError, UnetkitError
from unetkit.inference.modes import build_runner, check_annotation, crop
from unetkit.inference.predictor import Predictor
from unetkit.inference.tiling import SlidingWindowError
from unetkit.inference_config import InferenceConfig
from unetkit.progress import progress_bar


@dataclass
class RunStats:
    images: int
    seconds: float
    forward_seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")


class _Writer(threading.Thread):
    """Writes (item, annotation) pairs in the background; the first error is re-raised by :meth:`close`."""

    def __init__(self, writer, maxsize: int):
        super().__init__(daemon=True, name="unetkit-writer")
        self.writer, self.queue, self.error = writer, queue.Queue(maxsize=maxsize), None

    def run(self):
        while True:
            job = self.queue.get()
            if job is None:
                return
            if self.error is None:
                item, ann = job
                try:
                    self.writer.add_item(item.dataset, item.name, item.image_path, ann)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self.error = exc

    def put(self, item, ann):
        if self.error is not None:
            raise self.error
        self.queue.put((item, ann))

    def close(self):
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error


def _prefetch(items, load, workers: int, lookahead: int):
    """Yield ``(item, load(item))`` in order, with up to ``lookahead`` loads in flight on ``workers`` threads."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="unetkit-read") as pool:
        pending: deque = deque()
        it = iter(items)
        for item in it:
            pending.append((item, pool.submit(load, item)))
            if len(pending) >= lookahead:
                break
        while pending:
            item, fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(load, nxt)))
            yield item, fut.result()


def infer_project(
    predictor: Predictor,
    project_dir,
    out_dir,
    config: InferenceConfig,
    *,
    workers: int = 2,
    batch_size: int = 4,
    progress: bool = True,
    config_file=None,
    run=None,
) -> RunStats:
    """Apply ``predictor`` with ``config.mode`` to every item of ``project_dir``; write the result to ``out_dir``.

    ``run``: another engine with the signature of ``_run`` (``unetkit.inference.ray_engine.RayInference``)."""
    from unetkit.project import Project, ProjectWriter
    from unetkit.project.output_folder import check_output_folder

    project = Project.read(project_dir)
    out_dir = check_output_folder(out_dir, sources=[project.path])
    try:
        runner = build_runner(config, project.meta, predictor)
    except ConfigError as exc:
        raise ConfigError(exc.message, file=config_file, json_path=exc.json_path) from None
    out_meta = runner.out_meta
    with atomic.write_folder(out_dir) as staging:
        writer = ProjectWriter(staging, out_meta, allow_existing=True, sources=[project.path])
        return (run or _run)(predictor, runner, project, out_meta, writer, workers, batch_size, progress)


def _regions(runner, item, image, ann):
    try:
        check_annotation(image, ann)
        return runner.regions(ann)
    except UnetkitError as exc:
        raise type(exc)(exc.message, file=item.ann_path, json_path=exc.json_path) from None


def _plan_check(item, image, ann):
    try:
        check_annotation(image, ann)
    except UnetkitError as exc:
        raise type(exc)(exc.message, file=item.ann_path, json_path=exc.json_path) from None


def load_item(predictor, runner, out_meta, item):
    """Decode, parse (against the out meta), and for batchable modes also plan the regions and preprocess them,
    so that the model's thread only runs the model and assembles."""
    image, ann = item.read_pixels(), item.read_annotation(out_meta)
    if not runner.batchable:
        return image, ann
    regions = _regions(runner, item, image, ann)
    return ann, regions, [predictor.preprocess(crop(image, r)) for r in regions]


def forward_group(predictor, runner, group: list, batch_size: int) -> tuple[list, float]:
    """Annotations of ``group`` = [(item, load_item(...)), ...] in a batchable mode: the regions of all its images
    go through the model ``batch_size`` at a time. Also returns the seconds spent in the model."""
    inputs = [x for _, (_, _, xs) in group for x in xs]
    sizes = [(r.height, r.width) for _, (_, rs, _) in group for r in rs]
    t0 = time.perf_counter()
    probs = []
    for i in range(0, len(inputs), batch_size):
        probs += predictor.probabilities_from_inputs(
            inputs[i : i + batch_size], sizes[i : i + batch_size], tta=runner.tta
        )
    seconds = time.perf_counter() - t0
    anns, k = [], 0
    for _, (ann, rs, _) in group:
        anns.append(runner.assemble(ann, rs, probs[k : k + len(rs)]))
        k += len(rs)
    return anns, seconds


def apply_one(runner, item, image, ann):
    """The annotation of one image in a mode that is not batchable (sliding window)."""
    _plan_check(item, image, ann)
    try:
        return runner.apply(image, ann)
    except SlidingWindowError as exc:
        raise SlidingWindowError(exc.message, file=item.image_path, json_path=exc.json_path) from None


def _run(predictor, runner, project, out_meta, writer, workers, batch_size, progress) -> RunStats:
    items = list(project.items())

    def load(item):  # on a reader thread
        return load_item(predictor, runner, out_meta, item)

    start, forward = time.perf_counter(), 0.0
    out = _Writer(writer, maxsize=max(4, 2 * batch_size))
    out.start()
    done = 0
    try:
        with progress_bar("Model applying", "{task.fields[rate]}", enabled=progress) as bar:
            task = bar.add_task("infer", total=len(items), rate="")
            pending: list = []

            def flush():
                nonlocal forward, done
                anns, seconds = forward_group(predictor, runner, pending, batch_size)
                forward += seconds
                for (item, _), ann in zip(pending, anns):
                    out.put(item, ann)
                done += len(pending)
                pending.clear()

            for item, loaded in _prefetch(items, load, workers, lookahead=max(2 * workers, batch_size + 1)):
                if runner.batchable:
                    pending.append((item, loaded))
                    if len(pending) >= batch_size:
                        flush()
                else:
                    t0 = time.perf_counter()
                    result = apply_one(runner, item, *loaded)
                    forward += time.perf_counter() - t0
                    out.put(item, result)
                    done += 1
                elapsed = time.perf_counter() - start
                bar.update(task, completed=done, rate=f"{done / elapsed:.2f} img/s" if elapsed > 0 else "")
            if pending:
                flush()
            bar.update(task, completed=done)
    except BaseException:
        try:
            out.close()
        except BaseException:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
    out.close()
    return RunStats(done, time.perf_counter() - start, forward)
