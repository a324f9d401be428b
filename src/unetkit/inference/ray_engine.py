"""`infer --engine ray`: project inference on Ray actors, each loading the model once.

One actor per GPU of the cluster (one per CPU without GPUs). The images go to the actors in the groups of
``batch_size`` images that a local run forms, and each actor runs the local engine's code on its group
(:func:`~unetkit.inference.batch.load_item`, :func:`~unetkit.inference.batch.forward_group`), so the model
sees the same batches and the masks equal the local run's (for the same device and thread count). This process
writes the annotations in order into the project that :func:`~unetkit.inference.batch.infer_project` renames into
place at the end; an error stops the run as locally and leaves no output.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from unetkit import cluster
from unetkit.inference.batch import RunStats, apply_one, forward_group, load_item
from unetkit.progress import progress_bar
from unetkit.project import Project

GROUPS_PER_ACTOR = 2
ACTOR_RETRIES = 2


class _ModelActor:
    """A Ray actor: the checkpoint loaded once, the mode runner built against the input project's meta."""

    def __init__(self, checkpoint: str, options: dict, config, meta_json: dict, on_gpu: bool):
        from unetkit.inference.modes import build_runner
        from unetkit.inference.predictor import Predictor
        from unetkit.project import ProjectMeta

        # Ray exposes an actor's GPU as cuda:0 (CUDA_VISIBLE_DEVICES)
        device = "cuda:0" if on_gpu else "cpu"
        self.predictor = Predictor.from_checkpoint(
            checkpoint, device=device, gpu_device=0, settings=config, **options
        )
        self.runner = build_runner(config, ProjectMeta.from_json(meta_json), self.predictor)

    def run(self, items: list, batch_size: int) -> tuple[list, float]:
        """Annotations of ``items`` (one local batch group) and the seconds spent in the model."""
        loaded = [
            (item, load_item(self.predictor, self.runner, self.runner.out_meta, item)) for item in items
        ]
        if self.runner.batchable:
            return forward_group(self.predictor, self.runner, loaded, batch_size)
        start = time.perf_counter()
        anns = [apply_one(self.runner, item, *data) for item, data in loaded]
        return anns, time.perf_counter() - start


class RayInference:
    """The ``run`` of :func:`~unetkit.inference.batch.infer_project` for ``--engine ray``.

    ``options``: ``Predictor.from_checkpoint`` keywords for the actors (backend, amp, tta, onnx_path)."""

    def __init__(self, checkpoint, config, *, address: str | None = None, options: dict | None = None):
        self.checkpoint, self.config, self.address = checkpoint, config, address
        self.options = dict(options or {})
        self.nodes = self.actors = 0

    def __call__(
        self, predictor, runner, project, out_meta, writer, workers, batch_size, progress
    ) -> RunStats:
        if not project.path.is_absolute():  # the actors run elsewhere: absolute paths only
            project = Project.read(project.path.resolve())
        items = list(project.items())
        groups = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
        checkpoint = str(Path(self.checkpoint).resolve())
        with cluster.connected(self.address) as ray:
            self.nodes = cluster.check_nodes(ray, [project.path, checkpoint])
            gpus = int(ray.cluster_resources().get("GPU", 0))
            self.actors = gpus or cluster.cluster_cpus(ray)
            actor_class = ray.remote(
                num_gpus=1 if gpus else 0,
                num_cpus=0 if gpus else 1,
                max_restarts=ACTOR_RETRIES,
                max_task_retries=ACTOR_RETRIES,
            )(_ModelActor)
            meta = project.meta.to_json()
            actors = [
                actor_class.remote(checkpoint, self.options, self.config, meta, bool(gpus))
                for _ in range(self.actors)
            ]
            try:
                return self._write(ray, actors, groups, writer, batch_size, progress)
            finally:
                for actor in actors:
                    with contextlib.suppress(Exception):  # already gone with its node: nothing to end
                        ray.kill(actor)

    @staticmethod
    def _write(ray, actors, groups, writer, batch_size, progress) -> RunStats:
        start, forward, done, total = time.perf_counter(), 0.0, 0, sum(map(len, groups))

        def submit(i: int):
            return actors[i % len(actors)].run.remote(groups[i], batch_size)

        results = cluster.ordered_results(ray, submit, len(groups), GROUPS_PER_ACTOR * len(actors))
        with progress_bar("Model applying (Ray)", "{task.fields[rate]}", enabled=progress) as bar:
            task = bar.add_task("infer", total=total, rate="")
            for group, (anns, seconds) in zip(groups, results):
                for item, ann in zip(group, anns):
                    writer.add_item(item.dataset, item.name, item.image_path, ann)
                forward, done = forward + seconds, done + len(group)
                elapsed = time.perf_counter() - start
                bar.update(task, completed=done, rate=f"{done / elapsed:.2f} img/s" if elapsed > 0 else "")
        return RunStats(done, time.perf_counter() - start, forward)
