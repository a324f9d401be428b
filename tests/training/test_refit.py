"""Refit: a run sizes the rest of itself from its measured speed, once; the LR decay starts at the refit point."""

import time

import pytest

from conftest import tiny_config
from unetkit.training import train
from unetkit.training.lr_policy import schedule_factor
from unetkit.training.setup import Refit


def test_hold_keeps_the_full_lr_until_the_decay_starts():
    assert schedule_factor("cosine", 1, 100, warmup_iters=4, hold_iters=20) == pytest.approx(0.5)
    assert [schedule_factor("cosine", i, 100, warmup_iters=4, hold_iters=20) for i in (4, 19, 20)] == [
        1,
        1,
        1,
    ]
    assert schedule_factor("cosine", 60, 100, hold_iters=20) == pytest.approx(0.5)  # halfway from 20 to 100
    assert schedule_factor("cosine", 100, 100, hold_iters=20, min_lr_ratio=0.1) == pytest.approx(0.1)
    # a hold before the end of the warm-up changes nothing
    assert schedule_factor("cosine", 52, 100, warmup_iters=4, hold_iters=2) == schedule_factor(
        "cosine", 52, 100, warmup_iters=4
    )


def _run(project, tmp_path, refit, epochs=50):
    config = tiny_config(
        epochs=epochs, val_every=epochs / 2, unetkit={"scheduler": {"name": "cosine", "hold_iters": 3}}
    )
    return train(project, config, tmp_path / "run", progress=False, refit=refit).records


def test_a_refit_past_its_end_shortens_the_run_to_one_more_epoch(tiny_project, tmp_path):
    records = _run(
        tiny_project, tmp_path, Refit(at_iteration=3, end=time.time() - 1, reserve_s=0, validations=2)
    )
    refit = [r for r in records if r["type"] == "refit"]
    steps = [r["iteration"] for r in records if r["type"] == "train"]
    assert len(refit) == 1 and refit[0]["iteration"] == 3
    # 6 training images, batch 2: 3 steps an epoch; 3 done + at least one more epoch, in whole epochs
    assert refit[0]["total_iterations"] == 6 and refit[0]["epochs"] == 2
    assert max(steps) == 6
    # the validations are spread again over the new length: 2, the last at its end
    vals = [r["iteration"] for r in records if r["type"] == "val"]
    assert vals[-1] == 6 and len(vals) == 2
    lrs = {r["iteration"]: r["lr"] for r in records if r["type"] == "train"}
    assert (
        lrs[4] == pytest.approx(0.01) and lrs[6] < lrs[5] < 0.01
    )  # decays from the refit point to the new end


def test_a_resumed_run_keeps_the_length_its_refit_set(tiny_project, tmp_path):
    _run(tiny_project, tmp_path, Refit(at_iteration=3, end=time.time() - 1, reserve_s=0, validations=2))
    records = train(tiny_project, None, tmp_path / "run", resume=True, progress=False).records
    # the config says 50 epochs (150 steps); the refit cut it to 6, and the finished run stays finished
    assert max(r["iteration"] for r in records if r["type"] == "train") == 6


def test_a_refit_with_time_left_lengthens_the_run_to_fill_it(tiny_project, tmp_path):
    records = _run(tiny_project, tmp_path, Refit(at_iteration=3, end=time.time() + 6, reserve_s=0, validations=2),
                   epochs=2)  # fmt: skip
    refit = next(r for r in records if r["type"] == "refit")
    steps = [r["iteration"] for r in records if r["type"] == "train"]
    assert refit["total_iterations"] > 6  # 2 planned epochs were far too few for 6 seconds
    assert refit["total_iterations"] % 3 == 0 and max(steps) == refit["total_iterations"]


@pytest.mark.parametrize("step_s, expected", [(1.0, 9), (0.5, 15)])
def test_a_refit_in_the_first_epochs_uses_the_step_time_measured_before(
    tiny_project, tmp_path, step_s, expected
):
    """At iteration 3 of 3 an epoch the run's own timing still holds the first epoch's one-off costs: the given
    step time (auto's probe) sizes the run instead: ceil((3 + 6 s / step_s) / 3) whole epochs."""
    end = time.time() + 6.0
    records = _run(tiny_project, tmp_path, Refit(at_iteration=3, end=end, reserve_s=0, validations=2, step_s=step_s),
                   epochs=2)  # fmt: skip
    refit = next(r for r in records if r["type"] == "refit")
    assert refit["step_s"] == step_s
    # the time between `end` and the refit costs at most one step: at most one epoch fewer
    assert expected - 3 <= refit["total_iterations"] <= expected
