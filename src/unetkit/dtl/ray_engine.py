"""`dtl run --engine ray`: the input images of a DTL run as Ray tasks, written here in input order.

Each task runs the local engine's per-image code (:func:`unetkit.dtl.runner.process_item`): it reads its
image from the shared file system, pushes it through the graph and leaves re-encoded images as temp files in
the output folder; this process names and writes the items exactly as a local run does, so the project is
byte-identical to ``--engine local`` for the same seed. At most two tasks per cluster CPU are in flight
(back-pressure), Ray retries a task whose worker or node died, and a run that fails anyway leaves no output.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

from unetkit import cluster
from unetkit.dtl.graph import Graph
from unetkit.dtl.outputs import OutputWriter, RunReport, write_results
from unetkit.dtl.runner import TMP_DIR, ElementRunner, make_jobs, process_item
from unetkit.project import Project, ProjectWriter

TASKS_PER_CPU = 2
TASK_RETRIES = 3

_CONTEXT: dict = {}  # in a Ray worker: run id -> (runner, project headers), fetched once per worker


def _run_item(run_id: str, context: list, project_idx: int, item, layer_idx: int, tmp: Path):
    """A Ray task: one input image (``context`` is ``[ObjectRef]`` so that Ray does not fetch it every time)."""
    import ray

    if run_id not in _CONTEXT:
        _CONTEXT.clear()
        _CONTEXT[run_id] = ray.get(context[0])
    runner, headers = _CONTEXT[run_id]
    outputs, error = process_item(runner, headers[project_idx], item, layer_idx, tmp)
    return outputs, error, ray.get_runtime_context().get_node_id()


def run_on_ray(
    graph: Graph, projects: list[Project], out_dir: Path, *, seed: int | None, progress: bool, address
) -> RunReport:
    """Run ``graph`` over ``projects`` on the Ray cluster at ``address`` and write the project ``out_dir``."""
    # Workers run elsewhere: every path they get must be absolute.
    projects = [p if p.path.is_absolute() else Project.read(p.path.resolve()) for p in projects]
    out_dir = out_dir.resolve()
    jobs = make_jobs(graph, projects)
    with cluster.connected(address) as ray:
        existed = out_dir.exists()
        writer = ProjectWriter(out_dir, graph.output_meta, sources=[p.path for p in projects])
        tmp = out_dir / TMP_DIR
        start = time.perf_counter()
        try:
            tmp.mkdir()
            nodes = cluster.check_nodes(ray, [p.path for p in projects], writable=[tmp])
            cpus = cluster.cluster_cpus(ray)
            report = RunReport(out_dir, inputs=len(jobs), workers=cpus, engine="ray", nodes=nodes)
            headers = [Project(p.path, p.meta, []) for p in projects]  # what a task needs: name and meta
            context = [ray.put((ElementRunner(graph, seed), headers))]
            task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_run_item)
            run_id = uuid.uuid4().hex

            def submit(i: int):
                project_idx, item, layer_idx = jobs[i]
                return task.remote(run_id, context, project_idx, item, layer_idx, tmp)

            def results():
                for outputs, error, node in cluster.ordered_results(
                    ray, submit, len(jobs), TASKS_PER_CPU * cpus
                ):
                    report.per_node[node] += 1
                    yield outputs, error

            write_results(OutputWriter(writer, projects, seed), projects, jobs, results(), report, progress)
            shutil.rmtree(tmp)
        except BaseException:
            _remove_output(out_dir, existed)
            raise
    report.seconds = time.perf_counter() - start
    return report


def _remove_output(out_dir: Path, existed: bool) -> None:
    """Remove what this run wrote: the folder, or its contents when it was there (empty) before the run."""
    if not existed:
        shutil.rmtree(out_dir, ignore_errors=True)
        return
    for child in out_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
