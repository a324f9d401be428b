"""bf16 keeps the accuracy: the same short CHASE DB1 training in fp32 and in bf16 autocast (+ channels_last on
the CPU) reaches the same validation Dice within 0.005.

No time bound here (tests assert no wall-clock figures): ``benchmarks/numerics.py --accuracy`` prints the training
times. On a CPU without native bf16 (AVX2, or torch told to compute like one) bf16 is emulated and many times
slower, so the bf16 half is skipped there; the fp32 half still runs."""

from __future__ import annotations

import pytest

from unetkit.models.numerics import cpu_native_bf16
from unetkit.training.amp_parity import QUICK_RECIPE, amp_parity, downscaled_project

DICE_TOLERANCE = 0.005


def test_bf16_training_reaches_the_fp32_dice(chasedb1_dir, tmp_path):
    native = cpu_native_bf16()
    project = downscaled_project(chasedb1_dir, tmp_path / "chase")
    modes = ("off", "bf16") if native else ("off",)
    results = amp_parity(project.path, QUICK_RECIPE, tmp_path / "runs", modes=modes)
    fp32 = results["off"]["metrics"]["dice/vessel"]
    assert results["off"]["numerics"] == "fp32"
    assert fp32 > 0.7, results  # the fp32 training learned the vessels
    if not native:
        pytest.skip(
            "bf16 half skipped: this CPU has no native bf16 (no avx512_bf16 / amx_bf16, or ATEN_CPU_CAPABILITY / "
            "ONEDNN_MAX_CPU_ISA cap it, or UNETKIT_CPU_BF16=0), where emulated bf16 training is very slow; "
            "UNETKIT_CPU_BF16=1 runs it anyway"
        )
    bf16 = results["bf16"]["metrics"]["dice/vessel"]
    assert results["bf16"]["numerics"].startswith("bf16")
    assert bf16 > 0.7, results  # both trainings learned the vessels
    assert abs(fp32 - bf16) <= DICE_TOLERANCE, (fp32, bf16)
