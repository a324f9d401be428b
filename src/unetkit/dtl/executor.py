"""Run a validated DTL graph over input projects and write a NEW project.

Original behaviour: docs/original-behaviour.md, "DTL execution" and "DTL output naming".

Streaming: each input image is pushed depth-first through the graph, one element at a time. With
``workers > 1`` input images are processed in worker processes (``engine="ray"``: Ray tasks on a cluster,
see unetkit.dtl.ray_engine) and the parent writes their outputs in input order, so output names, files and
contents do not depend on the number of workers or on the engine. With a seed, every layer call draws from a
generator derived from (seed, element identity incl. lineage, layer), so a seeded run is reproducible;
without one, runs are random like the original.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from unetkit.dtl.base import LayerContext
from unetkit.dtl.element import Element, ImageRef
from unetkit.dtl.graph import NULL, Graph
from unetkit.dtl.outputs import (
    Output,
    OutputWriter,
    RunReport,
    SerializedAnnotation,
    Skipped,
    format_reason,
    progress_bar,
)
from unetkit.errors import GraphError
from unetkit.project import Item, Project, ProjectWriter, write_image

log = logging.getLogger(__name__)

TMP_DIR = ".unetkit-dtl-tmp"
ENGINES = ("local", "ray")


def derive_rng(seed: int | None, identity: tuple, layer_index: int, slot: int) -> np.random.Generator:
    """Generator for one layer call; depends only on the seed and what is processed, never on scheduling."""
    if seed is None:
        return np.random.default_rng()
    digest = hashlib.blake2b(repr((identity, layer_index, slot)).encode("utf-8"), digest_size=16).digest()
    entropy = [int(seed) & (2**64 - 1), int.from_bytes(digest, "little")]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


class ElementRunner:
    """Pushes the elements of one input image through the graph (depth-first, streaming)."""

    def __init__(self, graph: Graph, seed: int | None):
        self.graph, self.seed = graph, seed

    def _push(self, layer, el: Element, slot: int) -> Iterator[Output]:
        ctx = LayerContext(
            in_meta=layer.in_meta,
            out_meta=layer.out_meta,
            rng_factory=lambda: derive_rng(self.seed, el.identity, layer.index, slot),
        )
        for ordinal, (branch, out) in enumerate(layer.process(el, ctx)):
            if layer.is_save:
                yield Output(
                    out.project,
                    out.dataset,
                    out.out_dataset,
                    out.stem,
                    out.ext,
                    out.ann,
                    image=out.image,
                    extras=layer.render_extras(out),
                )
                continue
            name = layer.dst[branch]
            if name == NULL:
                continue
            out = out.replace(lineage=(*el.lineage, (layer.index, slot, ordinal)))
            for consumer in self.graph.consumers.get(name, ()):
                yield from self._push(consumer, out, consumer.src.index(name))

    def run(self, project: Project, item: Item, data_layer) -> Iterator[Output]:
        """Outputs of one input image, in order (an exception stops it; earlier outputs stay valid)."""
        ann = item.read_annotation(project.meta)
        el = Element(
            image=ImageRef(item.image_path),
            ann=ann,
            project=project.name,
            dataset=item.dataset,
            item_name=item.name,
        )
        yield from self._push(data_layer, el, 0)


# ------------------------------------------------------------------------------------------- workers
_WORKER: dict = {}


def _init_worker(runner: ElementRunner, projects: list[Project], jobs: list, tmp: Path) -> None:
    _WORKER.update(runner=runner, projects=projects, jobs=jobs, tmp=tmp)


def _worker_job(job: int) -> tuple[list[Output], str | None]:
    runner, projects, jobs, tmp = _WORKER["runner"], _WORKER["projects"], _WORKER["jobs"], _WORKER["tmp"]
    project_idx, item, layer_idx = jobs[job]
    return process_item(runner, projects[project_idx], item, layer_idx, tmp)


def process_item(
    runner: ElementRunner, project: Project, item: Item, layer_idx: int, tmp: Path
) -> tuple[list[Output], str | None]:
    """Process one input image away from the writer (a worker process or a Ray task): images and extras go to
    temp files in ``tmp`` (inside the output folder), annotations are serialised; an exception is returned as
    the reason the image is skipped, with the outputs made before it."""
    outputs: list[Output] = []
    try:
        for out in runner.run(project, item, runner.graph.layers[layer_idx]):
            if out.image.modified:
                out.image_file, out.temp_image = tmp / f"{uuid.uuid4().hex}{out.ext}", True
                write_image(out.image_file, out.image.get())
            else:
                out.image_file = out.image.path
            out.image = None
            out.ann = SerializedAnnotation(out.ann.height, out.ann.width, out.ann.to_json())
            for folder, arr in list(out.extras.items()):
                path = tmp / f"{uuid.uuid4().hex}.png"
                write_image(path, arr)
                out.extras[folder] = path
            outputs.append(out)
    except Exception as exc:  # per-image isolation
        return outputs, format_reason(exc)
    return outputs, None


def run_graph(
    graph: Graph,
    projects: list[Project],
    out_dir: str | Path,
    *,
    seed: int | None = None,
    workers: int = 1,
    progress: bool = True,
    engine: str = "local",
    address: str | None = None,
) -> RunReport:
    """Run ``graph`` (metas already computed for ``projects``) and write a new project into ``out_dir``.

    ``engine="ray"`` runs the images as Ray tasks on the cluster at ``address`` (None: a local Ray instance);
    the output is the same as ``engine="local"`` for the same seed."""
    if graph.output_meta is None:
        raise GraphError("graph metas were not computed (build the graph with the input project metas)")
    if engine not in ENGINES:
        raise GraphError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if any(getattr(la, "order_dependent", False) for la in graph.layers) and (
        workers > 1 or engine != "local"
    ):
        log.warning("the graph has an order-dependent layer (if name_in_range): running with 1 local worker")
        workers, engine = 1, "local"
    if engine == "ray":
        from unetkit.dtl.ray_engine import run_on_ray

        return run_on_ray(graph, projects, Path(out_dir), seed=seed, progress=progress, address=address)
    out_dir = Path(out_dir)
    jobs = plan_jobs(graph, projects)
    workers = max(1, min(int(workers), len(jobs) or 1))
    writer = ProjectWriter(out_dir, graph.output_meta, sources=[p.path for p in projects])
    report = RunReport(out_dir=out_dir, inputs=len(jobs), workers=workers)
    runner = ElementRunner(graph, seed)
    start = time.perf_counter()
    tmp = out_dir / TMP_DIR
    pool = None
    try:
        if workers > 1:
            tmp.mkdir()
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            pool = context.Pool(workers, initializer=_init_worker, initargs=(runner, projects, jobs, tmp))
            results = pool.imap(_worker_job, range(len(jobs)), chunksize=1)
        else:
            results = (_inline(runner, projects, job) for job in jobs)
        write_results(OutputWriter(writer, projects, seed), projects, jobs, results, report, progress)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        shutil.rmtree(tmp, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    return report


def plan_jobs(graph: Graph, projects: list[Project]) -> list[tuple[int, Item, int]]:
    """One job per input image that a data layer takes: (project index, item, data layer index), in order."""
    by_name = {p.name: i for i, p in enumerate(projects)}
    jobs: list[tuple[int, Item, int]] = []
    for project in projects:
        for item in project.items():
            layer = next((la for la in graph.data_layers if la.matches(project.name, item.dataset)), None)
            if layer is not None:
                jobs.append((by_name[project.name], item, layer.index))
    return jobs


def write_results(
    out_writer: OutputWriter, projects: list[Project], jobs: list, results, report: RunReport, progress: bool
) -> None:
    """Write each job's outputs in job order; a job that raised (or whose output cannot be written) is
    recorded in ``report.skipped`` and logged, never fatal."""
    with progress_bar(progress, len(jobs)) as advance:
        for (project_idx, item, _), (outputs, job_error) in zip(jobs, results):
            error = None
            for out in outputs:
                try:
                    report.per_dataset[out_writer.write(out)] += 1
                except Exception as exc:  # e.g. a layer produced an annotation of the wrong size
                    error = format_reason(exc)
                    break
                report.written += 1
            error = error or job_error or getattr(outputs, "error", None)
            if error is not None:
                skipped = Skipped(projects[project_idx].name, item.dataset, item.name, error)
                log.error("Image was skipped because some error occurred: %s", skipped)
                report.skipped.append(skipped)
            advance(report.written)


def _inline(runner: ElementRunner, projects: list[Project], job) -> tuple[list[Output], str | None]:
    project_idx, item, layer_idx = job
    return _InlineOutputs(runner.run(projects[project_idx], item, runner.graph.layers[layer_idx])), None


class _InlineOutputs:
    """Iterates a runner's outputs lazily (streaming); an exception is recorded in ``error``."""

    def __init__(self, it):
        self.it, self.error = it, None

    def __iter__(self):
        try:
            yield from self.it
        except Exception as exc:
            self.error = format_reason(exc)


def load_inputs(dirs: list[str | Path]) -> list[Project]:
    """Read the input projects; a data layer's ``project`` refers to a project by its folder name."""
    projects = [Project.read(d) for d in dirs]
    seen: dict[str, Path] = {}
    for p in projects:
        if p.name in seen:
            raise GraphError(
                f"two input projects share the folder name {p.name!r}: {seen[p.name]} and {p.path}"
            )
        seen[p.name] = p.path
    return projects
