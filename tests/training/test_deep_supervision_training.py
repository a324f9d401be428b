"""Training a deep-supervised U-Net: the loss weighs its outputs by the model's weights; the checkpoint
carries the option, and every consumer of the checkpoint gets the main logits alone."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from conftest import TINY_MODEL, tiny_config
from unetkit.models import create_model
from unetkit.models.checkpoint import load_checkpoint
from unetkit.training import train
from unetkit.training.loop import Trainer


class _Fp32:
    """The two things ``Trainer._forward_loss`` asks of its numerics, for fp32."""

    @staticmethod
    def autocast():
        return contextlib.nullcontext()

    @staticmethod
    def prepare_input(x):
        return x


def test_the_training_loss_weighs_the_outputs_by_the_models_weights():
    torch.manual_seed(0)
    net = create_model("unet", 2, base_channels=8, depth=3, deep_supervision=True).train()
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 2, (2, 32, 32))
    criterion = torch.nn.CrossEntropyLoss()
    trainer = Trainer.__new__(Trainer)  # only what _forward_loss reads
    trainer.model, trainer.criterion, trainer.numerics = net, criterion, _Fp32()
    loss, main = trainer._forward_loss(x, y, net)
    outs = net(x)
    weights = net.output_weights(len(outs))
    assert torch.allclose(loss, sum(w * criterion(o, y) for w, o in zip(weights, outs)))
    assert torch.allclose(main, outs[0])
    assert not torch.allclose(loss, sum(criterion(o, y) for o in outs) / len(outs))  # not equal weights


def test_a_deep_supervised_run_trains_and_its_checkpoint_gives_the_main_logits(tiny_project, tmp_path):
    options = {**TINY_MODEL["model_options"], "deep_supervision": True}
    cfg = tiny_config(epochs=2, val_every=1, unetkit={**TINY_MODEL, "seed": 0, "model_options": options})
    res = train(tiny_project, cfg, tmp_path / "run", progress=False)
    losses = [r["metrics"]["loss"] for r in res.records if r["type"] == "train"]
    assert losses and all(np.isfinite(losses))
    loaded = load_checkpoint(res.best_checkpoint)
    assert loaded.card.model_options["deep_supervision"] is True
    assert any(k.startswith("aux_heads.") for k in loaded.model.state_dict())
    out = loaded.model.eval()(torch.randn(1, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 2, 32, 32)
