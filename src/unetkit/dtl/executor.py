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

import logging
import multiprocessing
import shutil
import time
from pathlib import Path

from unetkit.dtl.graph import Graph
from unetkit.dtl.outputs import Output, OutputWriter, RunReport, format_reason, write_results
from unetkit.dtl.runner import TMP_DIR, ElementRunner, make_jobs, process_item
from unetkit.dtl.runner import derive_rng as derive_rng  # public here too
from unetkit.errors import GraphError
from unetkit.project import Project, ProjectWriter
from unetkit.project.output_folder import new_output_folder

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


# ------------------------------------------------------------------------------------------- workers
_WORKER: dict = {}


def _init_worker(runner: ElementRunner, projects: list[Project], jobs: list, tmp: Path) -> None:
    _WORKER.update(runner=runner, projects=projects, jobs=jobs, tmp=tmp)


def _worker_job(job: int) -> tuple[list[Output], str | None]:
    runner, projects, jobs, tmp = _WORKER["runner"], _WORKER["projects"], _WORKER["jobs"], _WORKER["tmp"]
    project_idx, item, layer_idx = jobs[job]
    return process_item(runner, projects[project_idx], item, layer_idx, tmp)


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
    jobs = make_jobs(graph, projects)
    workers = max(1, min(int(workers), len(jobs) or 1))
    report = RunReport(out_dir=out_dir, inputs=len(jobs), workers=workers)
    runner = ElementRunner(graph, seed)
    start = time.perf_counter()
    pool = None
    # built beside out_dir and renamed at the end: a run that fails (or is interrupted) leaves nothing
    with new_output_folder(out_dir, sources=[p.path for p in projects]) as staging:
        writer = ProjectWriter(staging, graph.output_meta)
        tmp = staging / TMP_DIR
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
