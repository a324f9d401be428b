"""`unetkit infer --amp MODE --compile MODE`: the precision reaches the backend; fp32 and auto agree on masks
almost everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetkit.cli.main import main
from unetkit.inference import Predictor
from unetkit.inference.predictor import load_image
from unetkit.project import Project


@pytest.fixture
def seen(monkeypatch):
    """The amp / compile arguments Predictor.from_checkpoint receives."""
    calls = []
    original = Predictor.from_checkpoint.__func__

    def spy(cls, *args, **kwargs):
        calls.append({k: kwargs.get(k) for k in ("amp", "compile")})
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(spy))
    return calls


def test_amp_and_compile_flags(chase_project, random_ckpt, tmp_path, seen, capsys):
    base = ["infer", "--model", str(random_ckpt), "--project", str(chase_project), "--workers", "1"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--amp", "off", "--compile", "off"]) == 0
    assert main([*base, "--out", str(tmp_path / "c"), "--amp"]) == 0
    assert seen == [
        {"amp": "auto", "compile": "off"},
        {"amp": "off", "compile": "off"},
        {"amp": True, "compile": "off"},
    ]
    with pytest.raises(SystemExit) as exc:
        main([*base, "--out", str(tmp_path / "d"), "--amp", "fp8"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_auto_and_fp32_masks_agree(random_ckpt, chase_project):
    fp32 = Predictor.from_checkpoint(random_ckpt, amp="off")
    auto = Predictor.from_checkpoint(random_ckpt)  # bf16 + channels_last where the CPU has native bf16
    assert fp32.backend.numerics.dtype is None
    for item in Project.read(chase_project).items():
        image = load_image(item.image_path)
        a, b = fp32.predict(image), auto.predict(image)
        assert b.probabilities.dtype == np.float32
        assert np.abs(a.probabilities - b.probabilities).max() < 0.05
        assert (a.mask == b.mask).mean() > 0.98
    if auto.backend.numerics.dtype is not None:
        assert auto.backend.numerics.dtype == torch.bfloat16 and auto.backend.numerics.channels_last
