"""Training for the studio: the registered models, a default config for a project, and the config check
``unetkit train`` does before it starts (config fields, model name and options, input-size multiple).
"""

from __future__ import annotations

import copy
import warnings

from unetkit.errors import ConfigError
from unetkit.project import Project

DEFAULT_MODEL = "unet"  # the tutorial's config adapted to a CPU (unetkit.demo.pipeline.DEMO_TRAIN_CONFIG)
NOT_TRAINED = ("ensemble",)  # built from trained members by auto, not trained by `unetkit train`


def models() -> list[dict]:
    """``[{name, description}]`` of every registered architecture, the default config's first."""
    from unetkit.models.registry import get_model_spec, list_models

    names = sorted((n for n in list_models() if n not in NOT_TRAINED), key=lambda n: (n != DEFAULT_MODEL, n))
    return [{"name": n, "description": get_model_spec(n).summary.split("\n")[0]} for n in names]


def defaults(project: Project | None = None, model: str | None = None) -> dict:
    """The tutorial's training config adapted to a CPU (``unetkit demo``'s, docs/training.md's fields), with the
    project's background / neutral class and train / val tags filled in when it has them. ``model``: another
    architecture (then with its own default options)."""
    from unetkit.demo.pipeline import DEMO_TRAIN_CONFIG

    config = copy.deepcopy(DEMO_TRAIN_CONFIG)
    if model and model != config["unetkit"]["model"]:
        config["unetkit"] = {"model": model, "model_options": {}, "seed": 0}
    if project is not None:
        titles = [c.title for c in project.meta.classes]
        special = config["special_classes"]
        lowered = {t.lower(): t for t in titles}
        if special["background"] not in titles and "background" in lowered:
            special["background"] = lowered["background"]
        tags = [t.name for t in project.meta.tag_metas]
        for split in ("train", "val"):
            if split not in tags and split.upper() in tags:
                config["dataset_tags"][split] = split.upper()
    return config


def check(config, model: str | None = None) -> list[dict]:
    """``[{path, message}]``: the problem ``train`` would stop at before training (empty when none)."""
    try:
        validated(config, model)
    except ConfigError as exc:
        return [{"path": exc.json_path or "$", "message": exc.message}]
    return []


def validated(config, model: str | None = None):
    """The TrainConfig as ``train`` reads it (``model`` overriding ``unetkit.model`` as ``--model`` does), with the
    model's name, options and input-size multiple checked; ConfigError with its JSON path on the first problem.
    The project's checks (tags, classes, channels) are left to the task, which reports them at once."""
    from unetkit.models import model_stride
    from unetkit.training.config import check_model_stride, parse_config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'momentum' is accepted and ignored
        cfg = parse_config(config, warn=False)
        if model:
            data = cfg.settings()
            data["unetkit"]["model"] = model
            cfg = parse_config(data, warn=False)
    try:
        stride = model_stride(cfg.unetkit.model, **cfg.unetkit.model_options)
    except ConfigError as exc:
        where = "$.unetkit.model" if "unknown model" in exc.message else "$.unetkit.model_options"
        raise ConfigError(exc.message, json_path=exc.json_path or where) from None
    check_model_stride(cfg, stride)
    return cfg
