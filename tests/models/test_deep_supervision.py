"""U-Net deep supervision: heads on the decoder levels in train mode, the main logits alone everywhere else."""

from __future__ import annotations

import pytest
import torch

from unetkit.errors import ConfigError
from unetkit.models.registry import create_model


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_train_mode_returns_the_main_logits_and_one_head_per_decoder_level_at_the_input_size(depth):
    torch.manual_seed(0)
    net = create_model("unet", 3, base_channels=8, depth=depth, deep_supervision=True).train()
    outs = net(torch.randn(2, 3, 48, 64))
    assert isinstance(outs, tuple) and len(outs) == depth  # main + depth - 1 heads (the deepest has none)
    assert all(o.shape == (2, 3, 48, 64) for o in outs)
    weights = net.output_weights(len(outs))
    assert sum(weights) == pytest.approx(1.0)
    assert all(a == pytest.approx(2 * b) for a, b in zip(weights, weights[1:]))  # 1, ½, ¼ … normalised


def test_the_heads_leave_the_main_path_as_it_is_and_eval_mode_returns_it_alone():
    torch.manual_seed(0)
    plain = create_model("unet", 2, base_channels=8, depth=3)
    supervised = create_model("unet", 2, base_channels=8, depth=3, deep_supervision=True)
    missing, unexpected = supervised.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("aux_heads.") for k in missing)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(supervised.train()(x)[0], plain.train()(x))
    supervised.eval(), plain.eval()
    out = supervised(x)
    assert isinstance(out, torch.Tensor) and torch.equal(out, plain(x))


def test_a_supervised_state_dict_round_trips_and_its_heads_count_as_class_layers():
    net = create_model("unet", 2, base_channels=8, depth=3, deep_supervision=True)
    keys = [k for k in net.state_dict() if k.startswith("aux_heads.")]
    assert len(keys) == 4  # two heads, weight and bias each
    again = create_model("unet", 2, base_channels=8, depth=3, deep_supervision=True)
    again.load_state_dict(net.state_dict())  # strict
    assert "aux_heads." in net.head_names  # re-initialised by transfer learning, as outc is


@pytest.mark.parametrize(
    ("options", "message"),
    [({"deep_supervision": "yes"}, "must be true or false"), ({"deep_supervision": True, "padding": "valid"},
     'needs padding="same"')],
)  # fmt: skip
def test_bad_deep_supervision_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        create_model("unet", 2, base_channels=8, depth=2, **options)
