"""Refit: a run sizes the rest of itself from its measured speed (and again halfway, with `again_at`); the LR decay
starts at the first refit point and is re-anchored, without a jump, at the second."""

import math
import time

import pytest
import torch

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


def test_a_stretch_re_anchors_the_decay_without_a_jump():
    from unetkit.training.lr_policy import decay_progress

    # halfway from 20 to 100 the decay is at 0.5; re-anchored there, a longer run goes on from 0.5 to 1 at 200
    assert decay_progress(60, 100, 20) == pytest.approx(0.5)
    assert decay_progress(60, 200, 20, stretch_at=60, stretch_from=0.5) == pytest.approx(0.5)
    assert decay_progress(130, 200, 20, stretch_at=60, stretch_from=0.5) == pytest.approx(0.75)
    assert decay_progress(200, 200, 20, stretch_at=60, stretch_from=0.5) == 1.0
    # before the stretch point at the pace of the length planned then (100): a re-run replays what ran
    assert decay_progress(40, 200, 20, stretch_at=60, stretch_from=0.5) == decay_progress(40, 100, 20)
    before = schedule_factor("cosine", 59, 100, hold_iters=20)
    after = schedule_factor("cosine", 60, 200, hold_iters=20, stretch_at=60, stretch_from=0.5)
    assert abs(after - before) < 0.03  # one step's worth of decay, not a jump


def test_a_second_refit_resizes_the_run_and_the_lr_follows_without_a_jump(
    tiny_project, tmp_path, monkeypatch
):
    """The first refit sizes the run for 4 s; the second, halfway, finds the end passed and cuts the run to one more
    epoch; the LR goes on from where the decay was (the refit record says where)."""
    end = time.time() + 4.0
    refit = Refit(at_iteration=3, end=end, reserve_s=0, validations=2, step_s=0.05, again_at=0.5)
    config = tiny_config(epochs=2, val_every=1, unetkit={"scheduler": {"name": "cosine", "hold_iters": 3}})
    import unetkit.training.loop as loop

    real = loop.Trainer._refit_again

    def late(self, epoch_flt):  # the machine got slower: the end has passed when the second refit comes
        object.__setattr__(self.job.refit, "end", time.time() - 1)  # (a frozen dataclass)
        real(self, epoch_flt)

    monkeypatch.setattr(loop.Trainer, "_refit_again", late)
    records = train(tiny_project, config, tmp_path / "run", progress=False, refit=refit).records
    refits = [r for r in records if r["type"] == "refit"]
    assert len(refits) == 2 and "stretch_from" not in refits[0]
    first, second = refits
    assert second["iteration"] == max(first["iteration"] + 3, first["total_iterations"] // 2)
    assert second["total_iterations"] == 3 * math.ceil((second["iteration"] + 3) / 3)  # one more epoch
    lrs = {r["iteration"]: r["lr"] for r in records if r["type"] == "train"}
    k = second["iteration"]
    assert max(lrs) == second["total_iterations"]
    # the step after the second refit decays from where the schedule was, not from a recomputed point
    expected = schedule_factor("cosine", k, second["total_iterations"], hold_iters=3, stretch_at=k,
                               stretch_from=second["stretch_from"]) * 0.01  # fmt: skip
    assert lrs[k + 1] == pytest.approx(expected)
    assert abs(lrs[k + 1] - lrs[k]) < 0.2 * 0.01
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=False)
    assert state["stretch"] == [k, second["stretch_from"]]
