"""Registry, input-size rules, and per-architecture behaviour (valid U-Net, V-Net 3-D, U²-Net outputs, compile)."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from unetkit.errors import ConfigError
from unetkit.models import create_model, list_models, model_stride, register_model
from unetkit.models.u2net import official_outputs

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.* is deprecated:DeprecationWarning")


def test_registry_refuses_duplicates_and_unknowns():
    with pytest.raises(ValueError, match="already registered"):
        register_model("unet", stride=1)(lambda num_classes, in_channels=3: None)
    with pytest.raises(ConfigError, match="unknown model 'unet3'.*unet_v2"):
        create_model("unet3", 2)
    with pytest.raises(ConfigError, match="unknown option 'base_channel' for model 'unet'.*base_channels"):
        create_model("unet", 2, base_channel=8)
    with pytest.raises(ConfigError, match=r"padding='full' is not one of \['same', 'valid'\]"):
        create_model("unet", 2, padding="full")
    with pytest.raises(ConfigError, match="num_classes=0"):
        create_model("resunet", 0)
    assert list_models() == sorted(list_models())


def test_strides():
    expected = {"unet_v2": 16, "unet": 16, "fcn8s": 32, "fcn32s": 32, "resunet": 8, "inception_unet": 16}
    expected.update({"u2net": 1, "u2netp": 1, "vnet": 16})
    for name, stride in expected.items():
        assert model_stride(name) == stride
    assert model_stride("unet", depth=3) == 8 and model_stride("unet", padding="valid") == 1
    assert (
        model_stride("resunet", depth=4) == 16
        and create_model("resunet", 2, base_channels=4, depth=4).stride == 16
    )


def test_size_not_multiple_of_stride_and_pad_to_stride():
    torch.manual_seed(0)
    model = create_model("resunet", 2, base_channels=4).eval()
    x = torch.randn(1, 3, 36, 30)
    with pytest.raises(
        ConfigError, match="input size 36x30 is not a multiple of the model stride 8.*pad_to_stride"
    ):
        model(x)
    padded = create_model("resunet", 2, base_channels=4, pad_to_stride=True).eval()
    padded.load_state_dict(model.state_dict())
    with torch.no_grad():
        out = padded(x)
        manual = model(F.pad(x, (0, 2, 0, 4), mode="reflect"))[..., :36, :30]
    assert out.shape == (1, 2, 36, 30)
    torch.testing.assert_close(out, manual)
    with torch.no_grad():  # smaller than the padding: replicate instead of reflect
        assert padded(torch.randn(1, 3, 3, 5)).shape == (1, 2, 3, 5)
    with pytest.raises(ConfigError, match="expects a 4-D input"):
        model(torch.randn(3, 32, 32))


def test_valid_unet_paper_sizes_and_overlap_tile():
    torch.manual_seed(0)
    raw = create_model("unet", 2, padding="valid", base_channels=2, overlap_tile=False).eval()
    with torch.no_grad():
        assert raw(torch.randn(1, 3, 572, 572)).shape == (1, 2, 388, 388)
        with pytest.raises(ConfigError, match="not a valid size"):
            raw(torch.randn(1, 3, 570, 572))
    tiled = create_model("unet", 2, padding="valid", base_channels=2).eval()
    tiled.load_state_dict(raw.state_dict())
    x = torch.randn(1, 3, 388, 388)
    with torch.no_grad():
        out = tiled(x)
        # 388 is a valid output size: overlap-tile = mirror 92 px each side, as in the paper
        torch.testing.assert_close(out, raw(F.pad(x, (92, 92, 92, 92), mode="reflect")))
        assert tiled(torch.randn(1, 3, 50, 61)).shape == (1, 2, 50, 61)


def test_vnet_3d_volumes():
    torch.manual_seed(0)
    model = create_model("vnet", 2, in_channels=1, spatial_dims=3, base_channels=2, kernel_size=3)
    x = torch.randn(1, 1, 16, 16, 32)
    out = model(x)
    assert out.shape == (1, 2, 16, 16, 32)
    out.mean().backward()
    assert model.input_stage.conv[0].weight.grad is not None
    with pytest.raises(ConfigError, match="16x16x24 is not a multiple"):
        model(torch.randn(1, 1, 16, 16, 24))
    with pytest.raises(ConfigError, match="must be odd"):
        create_model("vnet", 2, kernel_size=4)


def test_u2net_official_outputs_and_odd_sizes():
    torch.manual_seed(0)
    model = create_model("u2netp", 1).eval()
    x = torch.randn(1, 3, 37, 23)  # any size: ceil-mode pools + upsampling to the skip size
    with torch.no_grad():
        fused = model(x)
        official = official_outputs(model, x)
    assert fused.shape == (1, 1, 37, 23) and len(official) == 7
    torch.testing.assert_close(official[0], torch.sigmoid(fused))
    assert all(o.shape == (1, 1, 37, 23) and 0 <= o.min() and o.max() <= 1 for o in official)
    model.train()
    outs = model(x)
    assert isinstance(outs, tuple) and len(outs) == 7


@pytest.mark.slow
@pytest.mark.skipif(
    bool(os.environ.get("ATEN_CPU_CAPABILITY")),
    reason="inductor generates code for the CPU's own ISA, not ATEN_CPU_CAPABILITY's: compiled results are wrong "
    "under that emulation (real AVX2 CPUs are not affected)",
)
def test_torch_compile_matches_eager():
    """torch.compile (inductor) on one tiny model; the first compile on a cold cache takes tens of seconds."""
    torch.manual_seed(0)
    model = create_model("unet", 2, base_channels=2, depth=1).eval()
    x = torch.randn(1, 3, 32, 32)
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list_models())
def test_head_names_cover_exactly_the_class_dependent_tensors(name):
    """``head_names`` substrings select every tensor whose shape depends on num_classes (and nothing else
    that a checkpoint with another class count could not fill)."""
    with torch.device("meta"):
        a = create_model(name, 2).state_dict()
        b = create_model(name, 5).state_dict()
        heads = create_model(name, 2).head_names
    differing = {k for k in a if a[k].shape != b[k].shape}
    selected = {k for k in a if any(h in k for h in heads)}
    assert differing and differing <= selected
    assert all(k.split(".")[0] in {h.split(".")[0] for h in heads} for k in selected)
