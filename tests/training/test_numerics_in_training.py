"""The training loop's numerics: the amp mode reaches the model and the loss, and torch.compile (on / auto) is
wired with its fallback."""

from __future__ import annotations

import logging

import torch

from conftest import tiny_config
from unetkit.models import numerics
from unetkit.training import loop, train


def test_bf16_training_keeps_fp32_losses_and_a_fp32_checkpoint(tiny_project, tmp_path, monkeypatch):
    monkeypatch.setattr(numerics, "cpu_bf16_pays", lambda: True)  # auto = bf16 + channels_last here
    seen = []
    build = loop.build_criterion

    def spying_build(*args, **kwargs):
        criterion, name = build(*args, **kwargs)

        def spy(logits, target):
            seen.append(logits.dtype)
            return criterion(logits, target)

        return spy, name

    monkeypatch.setattr(loop, "build_criterion", spying_build)
    chosen = []
    resolve = loop.resolve_numerics

    def spying_resolve(amp, device):
        chosen.append(resolve(amp, device))
        return chosen[-1]

    monkeypatch.setattr(loop, "resolve_numerics", spying_resolve)
    result = train(tiny_project, tiny_config(epochs=1, val_every=1), tmp_path / "run", progress=False)
    assert result.records[-1]["type"] in ("val", "checkpoint", "train") and result.last_val_metrics
    assert [n.label for n in chosen] == ["bf16+channels_last"]  # amp: auto (the default)
    assert seen and set(seen) == {torch.float32}  # the loss sees fp32 logits
    state = torch.load(result.last_checkpoint / "model.pt", weights_only=True)
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())


def test_compile_on_falls_back_with_one_notice(tiny_project, tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", lambda module, **kw: broken)
    cfg = tiny_config(epochs=1, val_every=1, unetkit={"compile": "on", "amp": "off"})
    with caplog.at_level(logging.WARNING, logger="unetkit.numerics"):
        result = train(tiny_project, cfg, tmp_path / "run", progress=False)
    assert result.last_checkpoint is not None
    assert [r.getMessage() for r in caplog.records].count(
        "torch.compile failed (RuntimeError: no compiler here); running uncompiled"
    ) == 1


def test_compile_auto_asks_the_probe(tiny_project, tmp_path, monkeypatch):
    asked = []

    def probe(module, example, numerics_, **kw):
        asked.append((tuple(example.shape), kw))
        return False

    monkeypatch.setattr(loop, "choose_compile", probe)
    cfg = tiny_config(epochs=1, val_every=1, unetkit={"compile": "auto"})
    train(tiny_project, cfg, tmp_path / "run", progress=False)
    assert asked == [((2, 3, 32, 32), {"train": True})]
