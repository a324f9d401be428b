"""Run setup shared by the parent and every training process: the job, project preparation, class weights
and seeding."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from unetkit.errors import ConfigError
from unetkit.models import model_stride
from unetkit.models.card import ClassMap, Preprocessing
from unetkit.project import Project
from unetkit.project.rasterize import first_undrawable_object
from unetkit.training import init_weights
from unetkit.training.classes import continue_training_indexing
from unetkit.training.config import TrainConfig, check_model_stride
from unetkit.training.data import split_by_names, split_by_tags
from unetkit.training.inputs import choose_inputs
from unetkit.training.run_dir import RunDir


@dataclass
class Job:
    """Everything a training process needs (picklable, sent to spawned processes)."""

    project_dir: Path
    cfg: TrainConfig
    run_dir: Path
    init: Path | None
    resume: bool
    seed: int
    progress: bool
    split: dict[str, list[str]] | None = None  # "dataset/name" of the train / val images instead of the tags
    deadline: float | None = None  # time.time() after which training stops (validates, checkpoints) early
    refit: Refit | None = None  # size the rest of the run from its measured speed, once
    quiet: bool = False  # no messages or summary on the console (the logs are written as always)


@dataclass(frozen=True)
class Refit:
    """After ``at_iteration`` steps of a one-process run (and again at ``again_at``, when given): set the number of steps (whole epochs) from the
    measured step time so that training ends at ``end`` (a ``time.time()`` value), keeping ``reserve_s`` for the
    remaining validations and checkpoints, and spread ``validations`` evenly over the new length.

    ``step_s`` is a step time measured before (auto's probe, on the same pipeline after its first epoch): used when
    the refit comes before the run's own second epoch, whose timing still holds the one-off cost of the first
    (decoding and caching the images, allocator warm-up), which made short runs stop well before their budget."""

    at_iteration: int
    end: float
    reserve_s: float
    validations: int
    step_s: float | None = None
    # refit once more at this share of the refitted length, from the speed measured since the first refit, the
    # decay re-anchored there (no LR jump): a load that changes after the first refit still ends on time
    again_at: float | None = None


@dataclass
class Prepared:
    project: Project
    splits: dict
    indexing: ClassMap
    in_channels: int
    preprocessing: Preprocessing


def prepare(job: Job) -> Prepared:
    """Read the project, split it by tags and build the class indexing (errors surface before any spawn)."""
    cfg = job.cfg
    project = Project.read(job.project_dir)
    undrawable = first_undrawable_object(project)
    if undrawable is not None:  # would fail every sample that holds one, after retries
        raise undrawable
    splits = split_by_tags(project, cfg) if job.split is None else split_by_names(project, job.split)
    sc = cfg.special_classes
    indexing = ClassMap.for_project(
        project.meta.classes, sc.background, sc.neutral, multilabel=cfg.unetkit.multilabel, file=project.path
    )
    saved = RunDir(job.run_dir).load_state() if job.resume else None
    if saved is not None:
        mapping = {str(k): int(v) for k, v in saved["class_title_to_idx"].items()}
        if set(mapping) != set(indexing.class_title_to_idx):
            raise ConfigError("cannot resume: the project's classes differ from the run's", file=project.path)
        indexing = indexing.with_indices(mapping)
    elif cfg.weights_init_type == "continue_training":
        found, classes = init_weights.checkpoint_class_map(job.init)
        mapping = None if classes is None else classes.class_title_to_idx
        indexing = continue_training_indexing(indexing, mapping, sc.background, config_found=found,
                                              checkpoint_multilabel=classes is not None and classes.multilabel)  # fmt: skip
    try:
        stride = model_stride(cfg.unetkit.model, **creation_options(cfg))
    except ConfigError as exc:
        where = "$.unetkit.model" if "unknown model" in exc.message else "$.unetkit.model_options"
        raise cfg.error(exc.message, json_path=exc.json_path or where) from None
    check_model_stride(cfg, stride)
    size = (cfg.input_size.width, cfg.input_size.height)
    try:
        in_channels, preprocessing = choose_inputs([r.item.image_path for r in splits["train"]], size)
    except ConfigError as exc:
        raise ConfigError(exc.message, file=project.path) from None
    requested = creation_options(cfg).get("in_channels")
    if requested is not None and requested != in_channels:
        raise cfg.error(
            f"in_channels {requested} differs from the training images' {in_channels} channel(s)",
            json_path="$.unetkit.model_options.in_channels",
        )
    return Prepared(project, splits, indexing, in_channels, preprocessing)


def creation_options(cfg: TrainConfig) -> dict:
    return dict(cfg.unetkit.model_options)


def class_weights(cfg: TrainConfig, indexing: ClassMap) -> torch.Tensor | None:
    cw = cfg.unetkit.loss.class_weights
    if cw is None:
        return None
    n = indexing.num_classes
    if isinstance(cw, list):
        if len(cw) != n:
            raise ConfigError(f"expected {n} class weights (one per output class index), got {len(cw)}",
                              json_path="$.unetkit.loss.class_weights")  # fmt: skip
        return torch.tensor(cw, dtype=torch.float32)
    weights = torch.ones(n)
    for title, w in cw.items():
        if title not in indexing.class_title_to_idx:
            raise ConfigError(f"unknown class {title!r}", json_path=f"$.unetkit.loss.class_weights.{title}")
        weights[indexing.class_title_to_idx[title]] = w
    return weights


def setup_determinism(cfg: TrainConfig, seed: int, rank: int, device: torch.device) -> None:
    torch.manual_seed(seed + rank)
    if cfg.unetkit.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
