"""``train()``: one training run, from a project and a config to a run folder of checkpoints and logs."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from unetkit import atomic
from unetkit.errors import ConfigError, UnetkitError
from unetkit.training.config import TrainConfig, load_config, parse_config

if TYPE_CHECKING:
    from unetkit.training.setup import Refit

log = logging.getLogger("unetkit.training")


@dataclass
class TrainResult:
    """What :func:`train` returns: the run folder, its last and best checkpoints and the metrics records."""

    run_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    records: list[dict]  # metrics.jsonl content

    @property
    def last_val_metrics(self) -> dict:
        vals = [r for r in self.records if r["type"] == "val"]
        return vals[-1]["metrics"] if vals else {}


def _as_config(config) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    return load_config(config)


def _with_model(cfg: TrainConfig, model: str | None) -> TrainConfig:
    if not model:
        return cfg
    data = cfg.settings()
    data["unetkit"]["model"] = model
    return parse_config(data, file=cfg.source, warn=False)


def _resume_config(run, cfg: TrainConfig | None, model: str | None) -> TrainConfig:
    saved = parse_config(run.saved_settings(), file=run.path / "train_config.json", warn=False)
    if cfg is not None:
        wanted = _with_model(cfg, model).settings()
        diff = sorted(k for k in wanted if wanted[k] != saved.settings().get(k))
        if diff:
            raise cfg.error(
                f"the config differs from the run's train_config.json in {', '.join(diff)}; a resumed run keeps "
                "its config (omit --config or start a new run)",
                json_path=f"$.{diff[0]}",
            )
    elif model and model != saved.unetkit.model:
        raise saved.error(
            f"the run trains {saved.unetkit.model!r}, not {model!r}", json_path="$.unetkit.model"
        )
    return saved


def train(
    project_dir,
    config=None,
    out_dir=None,
    *,
    model: str | None = None,
    init=None,
    resume: bool = False,
    progress: bool = True,
    split: dict[str, list[str]] | None = None,
    deadline: float | None = None,
    refit: Refit | None = None,
    quiet: bool = False,
) -> TrainResult:
    """Train on a Supervisely project and write checkpoints/logs to ``out_dir`` (see docs/training.md).

    ``config``: a TrainConfig, a dict or a JSON path (optional with ``resume``). ``model`` overrides
    ``config.unetkit.model``. ``init`` is a checkpoint folder (or state-dict file) used as
    ``weights_init_type`` says. ``resume`` continues the run in ``out_dir`` from its last checkpoint.
    ``split`` names the train / val images (``{"train": ["ds/a.png", ...], "val": [...]}``) instead of the
    ``dataset_tags`` (cross-validation folds). ``deadline`` (a ``time.time()`` value) stops a one-process run
    early: it validates and checkpoints, then returns. ``refit`` sizes the rest of a one-process run from its
    measured speed, once. ``quiet``: nothing on the console (a caller's internal run, such as auto's speed probe).
    """

    from unetkit.project.output_folder import check_output_folder
    from unetkit.training import ddp
    from unetkit.training.charts import read_metrics
    from unetkit.training.loop import run_process
    from unetkit.training.run_dir import RunDir
    from unetkit.training.setup import Job, prepare

    if out_dir is None:
        raise ConfigError("an output folder (--out) is required")
    run = RunDir(out_dir)
    rank0 = int(os.environ.get("RANK", "0")) == 0  # under torchrun other ranks may find rank 0's new folder
    if (resume or not run.has_run()) and rank0:  # an existing run without --resume: prepare_new says so
        check_output_folder(run.path, sources=[project_dir], resume=resume)
    new_folder = not resume and not run.path.exists()
    if resume:
        if not run.path.is_dir():
            raise ConfigError("cannot resume: the run folder does not exist", file=run.path)
        if rank0:
            remove_temporaries(run.path)
        cfg = _resume_config(run, None if config is None else _as_config(config), model)
        state = run.load_state()
        seed = int(state["seed"]) if state is not None else cfg.unetkit.seed
        if state is None:
            log.warning("the run has no checkpoint yet: starting it again from the beginning")
    else:
        if config is None:
            raise ConfigError("a training config (--config) is required")
        cfg = _with_model(_as_config(config), model)
        seed = cfg.unetkit.seed
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    init_path = Path(init) if init is not None else None
    if init_path is not None and not init_path.exists():
        raise ConfigError("the --init checkpoint does not exist", file=init_path)
    if (
        init_path is not None
        and cfg.weights_init_type == "continue_training"
        and "model" not in cfg.unetkit.model_fields_set
        and (init_path / "config.json").is_file()
    ):
        cfg = _adopt_checkpoint_model(cfg, init_path)
    job = Job(
        Path(project_dir), cfg, run.path, init_path, resume, seed, progress, split, deadline, refit, quiet
    )
    prepared = prepare(
        job
    )  # user errors (project, tags, classes, sizes) surface here, before any process starts
    layout = ddp.device_layout(cfg)
    writer = not layout.torchrun or int(os.environ.get("RANK", "0")) == 0  # only global rank 0 writes
    if writer and (not resume or run.load_state() is None):
        if not resume:
            run.prepare_new(cfg.settings())
        else:
            atomic.make_folder(run.checkpoints)
    try:
        _run_processes(run_process, job, layout, prepared)
    except BaseException:
        if writer and new_folder and run.load_state() is None:  # failed before its first checkpoint
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    return TrainResult(
        run.path, run.read_pointer("last"), run.read_pointer("best"), read_metrics(run.path / "metrics.jsonl")
    )


def _run_processes(run_process, job, layout, prepared) -> None:
    import torch.multiprocessing as mp

    from unetkit.ports import free_port

    if layout.world > 1 and not layout.torchrun:
        ctx = mp.get_context("spawn")
        errors = ctx.SimpleQueue()
        try:
            mp.start_processes(run_process, args=(job, layout, free_port(), errors), nprocs=layout.world,
                               join=True, start_method="spawn")  # fmt: skip
        except Exception as exc:
            if not errors.empty():
                name, message, file, json_path = errors.get()
                raise UnetkitError(message, file=file, json_path=json_path) from None
            raise UnetkitError(f"a training process failed: {exc}") from exc
    else:
        run_process(0, job, layout, None, prepared=prepared if layout.world == 1 else None)


def remove_temporaries(run_dir: Path) -> list[Path]:
    """Remove what a killed run left half-written: the ``.<name>.<random>.tmp`` files and folders of
    ``unetkit.atomic``. Returns what was removed."""
    removed = sorted(run_dir.rglob(".*.tmp"), key=lambda p: len(p.parts), reverse=True)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        log.info("removed %s (left half-written by an interrupted run)", path)
    return removed


def _adopt_checkpoint_model(cfg: TrainConfig, init: Path) -> TrainConfig:
    """continue_training without an explicit model: train the checkpoint's architecture and options."""
    from unetkit.models.checkpoint import read_card

    card = read_card(init)
    data = json.loads(json.dumps(cfg.settings()))
    data["unetkit"]["model"] = card.model
    data["unetkit"]["model_options"] = {**card.model_options, **cfg.unetkit.model_options}
    return parse_config(data, file=cfg.source, warn=False)
