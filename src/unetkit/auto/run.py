"""``unetkit auto``: fingerprint → plan → train the folds → choose on out-of-fold predictions → model + report.

The run folder works wherever a checkpoint does: ``RUN/checkpoints/best.json`` points at ``RUN/model`` (one fold's
best checkpoint, or the ensemble of the folds), whose model card carries the plan and the inference settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetkit import atomic
from unetkit.auto.folds import make_folds
from unetkit.auto.plan import Plan
from unetkit.auto.planner import (
    inference_config,
    plan_project,
    repeated,
    training_config,
    validation_reserve,
)
from unetkit.auto.select import Choices, OutOfFold, choose, choose_multilabel
from unetkit.auto.state import begin, finish
from unetkit.inference_config import parse_config
from unetkit.models.card import ClassMap, Provenance
from unetkit.project import Project, rasterize, read_pixels
from unetkit.project.rasterize import rasterize_labelsets
from unetkit.training.setup import Refit

log = logging.getLogger("unetkit.auto")
GUARD = 1.05  # training stops at 105 % of its planned time even if the probe was optimistic
REFIT_AGAIN = 0.5  # each fold refits once more halfway through its refitted length (rule "Budget")


@dataclass(repr=False)
class AutoResult:
    run_dir: Path
    plan: Plan
    choices: Choices
    model_dir: Path
    seconds: float

    def __repr__(self) -> str:
        return (
            f"AutoResult(model_dir={str(self.model_dir)!r}, folds={self.plan.folds}, "
            f"dice={self.choices.dice:.4f}, minutes={self.seconds / 60:.1f})"
        )


def on_disk(array: np.ndarray, path: Path, dtype) -> np.ndarray:
    """``array`` written to ``path`` (.npy) and mapped back read-only, so that out-of-fold results take disk,
    not memory, however many images there are."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=array.shape)
    out[...] = array
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def out_of_fold(
    ckpt: Path, project: Project, names: list[str], plan: Plan, tta: bool, store: Path
) -> list[OutOfFold]:
    """Probabilities of a fold's validation images (sliding window, Gaussian blending; also with flip-TTA), kept
    in ``store`` as float16 memory maps."""
    from unetkit.inference.modes import build_runner
    from unetkit.inference.predictor import Predictor

    items = {f"{it.dataset}/{it.name}": it for it in project.items()}
    predictor = Predictor.from_checkpoint(ckpt, amp=plan.amp)
    plain = build_runner(inference_config(plan, Choices(), predictor.card.classes), project.meta, predictor)
    flipped = build_runner(inference_config(plan, Choices(tta=True), predictor.card.classes), None, predictor)
    multilabel = predictor.card.classes.multilabel
    mapping = {**predictor.card.classes.class_title_to_idx, plan.neutral: predictor.num_classes}
    out = []
    for name in names:
        item = items[name]
        ann = item.read_annotation(project.meta)
        image = read_pixels(item.image_path)
        draw = rasterize_labelsets if multilabel else rasterize
        gt = draw(ann, mapping, skip_unknown=True)
        stem = store / str(len(out))
        _, probs, _ = plain.stitch(image, keep_probabilities=True)
        probs = on_disk(probs, stem.with_suffix(".probs.npy"), np.float16)
        probs_tta = None
        if tta:
            _, probs_tta, _ = flipped.stitch(image, keep_probabilities=True)
            probs_tta = on_disk(probs_tta, stem.with_suffix(".tta.npy"), np.float16)
        out.append(
            OutOfFold(name, on_disk(gt, stem.with_suffix(".gt.npy"), gt.dtype), probs, probs_tta, multilabel)
        )
    return out


def _final_model(run: Path, fold_ckpts: list[Path], plan: Plan, choices: Choices, classes: ClassMap) -> Path:
    """``RUN/model``: the single fold model, or the ensemble of the folds; its card carries the plan and the
    chosen inference settings."""
    from unetkit.models.checkpoint import load_checkpoint, save_checkpoint
    from unetkit.models.ensemble import Ensemble

    loaded = [load_checkpoint(c) for c in fold_ckpts]
    card = loaded[0].card
    if len(loaded) == 1:
        model, model_name, options = loaded[0].model, card.model, dict(card.model_options)
    else:
        model = Ensemble([ld.model for ld in loaded], card.classes.multilabel)
        model_name = "ensemble"
        options = {"member": card.model, "member_options": dict(card.model_options), "count": len(loaded),
                   "multilabel": card.classes.multilabel}  # fmt: skip
    provenance = Provenance.model_validate(
        {
            **card.provenance.model_dump(exclude_none=True),
            "plan": plan.model_dump(mode="json"),  # the plan, once (with the steps each fold ran)
            "auto": {  # what selection measured; what it chose is the card's inference settings
                "dice": choices.dice,
                "selection": choices.steps,
                "members": [str(c.relative_to(run)) for c in fold_ckpts],
            },
        }
    )
    settings = parse_config(inference_config(plan, choices, classes), file="the run's inference settings")
    final = card.model_copy(
        update={
            "model": model_name,
            "model_options": options,
            "provenance": provenance,
            "inference": settings,
        }
    )
    save_checkpoint(run / "model", model, final)
    atomic.write_json(run / "checkpoints" / "best.json", {"path": "model"})
    return run / "model"


def auto(
    project_dir,
    out_dir,
    *,
    budget: str | float = "60m",
    plan: Plan | str | Path | None = None,
    folds: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    resume: bool = False,
    on_phase: Callable[[str], None] | None = None,
    overrides: dict | None = None,
) -> AutoResult:
    """Plan (unless given a plan), train, choose and report within the budget (see docs/auto.md).

    ``resume``: continue the killed run in ``out_dir``: finished folds are kept, the current fold continues from its
    last checkpoint on the recorded plan, then selection and report run; the budget counts the time spent before.
    ``on_phase`` is called with each phase's name as it starts (``plan``, ``fold 0``…, ``select``, ``report``).
    ``overrides``: plan fields merged into the fresh plan (:meth:`Plan.overridden`; a rule experiment); unlike a
    given plan, the run still measures its speed and refits each fold to the budget."""
    from unetkit.auto.report import write_report
    from unetkit.training import train
    from unetkit.training.charts import read_metrics

    run = Path(out_dir)
    state = begin(run, resume)
    started = time.time() - state.seconds_before  # the budget's clock: sessions before a kill count
    say = _phases(progress, on_phase, started)
    if state.phase == "done":
        say("done", "the run is already complete")
        return _completed(run, state, started)
    recorded = (run / "plan.json").is_file()
    say("plan", "the recorded plan" if recorded else "the given plan" if plan is not None else
        "fingerprint and speed probes")  # fmt: skip
    if recorded:
        plan, given = Plan.read(run / "plan.json"), state.given_plan
    else:
        if isinstance(plan, (str, Path)):
            plan = Plan.read(plan)
        given = state.given_plan = plan is not None
        if plan is None:
            plan = plan_project(project_dir, budget=budget, device=device, folds=folds, seed=seed, scratch=run,
                                overrides=overrides)  # fmt: skip
        plan.write(run / "plan.json")
    project = Project.read(project_dir)
    names = [f"{it.dataset}/{it.name}" for it in project.items()]
    splits = make_folds(names, plan.folds, plan.seed, plan.holdout_fraction)
    t = plan.time_s
    planned = (0.0 if given else t.get("planning", 0.0)) + t.get("train", 0.7 * plan.budget_s)
    train_end = started + planned  # the planned end of training; a guard stops it at GUARD × planned
    fold_ckpts, histories, steps = [], [], list(plan.fold_iterations or [])
    stretches = list(plan.fold_stretches or [None] * len(steps))
    for i, split in enumerate(splits):
        fold_dir = run / "folds" / str(i)
        if i < len(state.folds):  # finished before a kill: never trained again
            fold_ckpts.append(run / state.folds[i]["best"])
            histories.append(read_metrics(fold_dir / "metrics.jsonl"))
            if len(steps) <= i:
                steps.append(state.folds[i]["steps"])
                stretches.append(state.folds[i].get("stretch"))
            continue
        state.enter(run, f"fold {i}")
        say(f"fold {i}", f"training fold {i + 1} of {len(splits)}")
        started_fold = time.time()
        left = len(splits) - i
        fold_end = started_fold + (train_end - started_fold) / left
        deadline = started_fold + (started + planned * GUARD - started_fold) / left
        fold = {"train": repeated(split["train"], plan.batch_size), "val": split["val"]}
        fixed = given or len(steps) > i  # a given plan runs its steps; a fresh run refits each fold
        config = training_config(
            plan, len(fold["train"]), *((steps[i], stretches[i]) if len(steps) > i else ())
        )
        refit = None
        if not fixed:
            at = max(1, config["unetkit"]["scheduler"]["hold_iters"])
            reserve = validation_reserve(plan, len(split["val"]))
            refit = Refit(
                at, fold_end, reserve, plan.validations, plan.probe.get("train_step_s"), REFIT_AGAIN
            )
        again = resume and fold_dir.is_dir() and any(fold_dir.iterdir())
        with on_planned_device(plan.device):
            result = train(project_dir, config, fold_dir, progress=progress, split=fold, deadline=deadline,
                           refit=refit, resume=again)  # fmt: skip
        if len(steps) <= i:
            refits = [r for r in result.records if r.get("type") == "refit"]
            per_epoch = math.ceil(len(fold["train"]) / plan.batch_size)
            steps.append(refits[-1]["total_iterations"] if refits else config["epochs"] * per_epoch)
            again = [r for r in refits if "stretch_from" in r]
            stretches.append((again[-1]["iteration"], again[-1]["stretch_from"]) if again else None)
        fold_ckpts.append(result.best_checkpoint)
        histories.append(result.records)
        state.folds.append({"best": str(result.best_checkpoint.relative_to(run)), "steps": steps[i],
                            "stretch": stretches[i]})  # fmt: skip
        state.write(run)
    plan = plan.model_copy(update={"fold_iterations": steps, "fold_stretches": stretches})
    plan.write(run / "plan.json")  # with the steps each fold ran: the plan reproduces this run
    state.enter(run, "select")
    say("select", "choosing threshold, clean-up and TTA on out-of-fold predictions")
    classes = read_classes(fold_ckpts[0])
    oof: list[OutOfFold] = []
    scratch = Path(tempfile.mkdtemp(prefix=".out-of-fold-", dir=run))  # removed once the report is written
    for i, (ckpt, split) in enumerate(zip(fold_ckpts, splits)):
        atomic.make_folder(scratch / str(i))
        oof += out_of_fold(ckpt, project, split["val"], plan, plan.selection.try_tta, scratch / str(i))
    s = plan.selection
    if classes.multilabel:
        choices = choose_multilabel(oof, s.thresholds, s.try_tta)
    else:
        choices = choose(oof, classes.neutral_index, s.thresholds, s.min_sizes, s.try_tta, s.try_keep_largest)
    model_dir = _final_model(run, fold_ckpts, plan, choices, classes)
    state.enter(run, "report")
    say("report", "writing report.html")
    sessions = [*(x["seconds"] for x in state.sessions[:-1]), time.time() - state.sessions[-1]["started"]]
    write_report(run, plan, choices, oof, histories, splits, project, classes, sessions=sessions)
    del oof
    shutil.rmtree(scratch, ignore_errors=True)
    finish(run, state, choices_json(choices))
    say("done", f"{time.time() - started:.0f} s in all")
    return AutoResult(run, plan, choices, model_dir, time.time() - started)


@contextlib.contextmanager
def on_planned_device(device: str):
    """Training where the plan says: on a CPU plan, no warning that CUDA is missing (nobody asked for it)."""
    with warnings.catch_warnings():
        if device == "cpu":
            warnings.filterwarnings("ignore", "CUDA is not available", UserWarning)
        yield


def _phases(
    progress: bool, on_phase: Callable[[str], None] | None, started: float
) -> Callable[[str, str], None]:
    """One line per phase on stderr (with ``progress``; the budget's clock in front), and the ``on_phase`` seam."""

    def say(phase: str, text: str) -> None:
        if on_phase is not None:
            on_phase(phase)
        if progress and text:
            print(f"auto {time.time() - started:6.1f} s [{phase}] {text}", file=sys.stderr, flush=True)

    return say


def choices_json(choices: Choices) -> dict:
    out = dataclasses.asdict(choices)
    if isinstance(out["threshold"], dict):
        out["threshold"] = {str(k): v for k, v in out["threshold"].items()}
    out["min_sizes"] = {str(k): v for k, v in out["min_sizes"].items()}
    return out


def choices_from_json(raw: dict) -> Choices:
    threshold = raw.get("threshold")
    if isinstance(threshold, dict):
        threshold = {int(k): v for k, v in threshold.items()}
    return Choices(
        **{**raw, "threshold": threshold, "min_sizes": {int(k): v for k, v in raw["min_sizes"].items()}}
    )


def _completed(run: Path, state, started: float) -> AutoResult:
    state.sessions[-1]["seconds"] = time.time() - state.sessions[-1]["started"]
    state.write(run)
    choices = choices_from_json(state.choices or {"min_sizes": {}})
    return AutoResult(run, Plan.read(run / "plan.json"), choices, run / "model", time.time() - started)


def read_classes(ckpt: Path) -> ClassMap:
    from unetkit.models.checkpoint import read_card

    return read_card(ckpt).classes


__all__ = ["AutoResult", "auto"]
