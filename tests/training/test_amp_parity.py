"""bf16 keeps the accuracy: the same short CHASE DB1 training in fp32 and in bf16 autocast (+ channels_last on
the CPU) reaches the same validation Dice within 0.005."""

from __future__ import annotations

import time

from unetkit.training.amp_parity import QUICK_RECIPE, amp_parity, downscaled_project

DICE_TOLERANCE = 0.005


def test_bf16_training_reaches_the_fp32_dice(chasedb1_dir, tmp_path):
    project = downscaled_project(chasedb1_dir, tmp_path / "chase")
    start = time.perf_counter()
    results = amp_parity(project.path, QUICK_RECIPE, tmp_path / "runs", modes=("off", "bf16"))
    seconds = time.perf_counter() - start
    fp32, bf16 = (results[m]["metrics"]["dice/vessel"] for m in ("off", "bf16"))
    assert results["off"]["numerics"] == "fp32" and results["bf16"]["numerics"].startswith("bf16")
    assert fp32 > 0.7 and bf16 > 0.7, results  # both trainings learned the vessels
    assert abs(fp32 - bf16) <= DICE_TOLERANCE, (fp32, bf16)
    assert seconds < 240, seconds  # about 40 s on 2 idle cores; the bound only catches a runaway
