"""One parametrized test over every registered model: shape, backward, state dict, autocast, channels_last, ONNX."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from unetkit.models import create_model, list_models, model_stride

from .helpers import SMALL_OPTIONS

NAMES = list_models()


def small(name: str, classes: int = 2, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, classes, **{**SMALL_OPTIONS[name], **extra})


def test_every_registered_model_is_covered():
    assert sorted(SMALL_OPTIONS) == NAMES
    assert {
        "unet_v2",
        "unet",
        "fcn32s",
        "fcn16s",
        "fcn8s",
        "resunet",
        "inception_unet",
        "u2net",
        "u2netp",
        "vnet",
    } <= set(NAMES)


def _outputs(y):
    return y if isinstance(y, tuple) else (y,)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_state_dict(name):
    model = small(name, 3)
    stride = model_stride(name, **SMALL_OPTIONS[name])
    side = 16 if stride == 1 else max(32, stride)  # U²-Net (any size) runs at 16×16
    x = torch.randn(2, 3, side, side)
    # train mode: logits at input size (U²-Net: fused + 6 side outputs), gradients everywhere that is used
    model.train()
    outs = _outputs(model(x))
    assert len(outs) == (7 if name.startswith("u2net") else 1)
    for out in outs:
        assert out.shape == (2, 3, side, side)
    sum(o.float().pow(2).mean() for o in outs).backward()
    for key, p in model.named_parameters():
        if key.startswith("blocks.0."):  # unet_v2's original, unused block
            assert p.grad is None
            continue
        assert p.grad is not None, key
        assert torch.isfinite(p.grad).all(), key
    # eval mode: a single tensor; a state dict round trip reproduces it exactly
    model.eval()
    with torch.no_grad():
        ref = model(x)
    assert isinstance(ref, torch.Tensor) and ref.shape == (2, 3, side, side)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = small(name, 3)
    fresh.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), ref)
        # channels_last gives the same logits; bf16 autocast on CPU runs and stays close
        model_cl = model.to(memory_format=torch.channels_last)
        torch.testing.assert_close(
            model_cl(x.to(memory_format=torch.channels_last)), ref, atol=1e-4, rtol=1e-4
        )
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf = model(x)
    assert out_bf.shape == ref.shape and torch.isfinite(out_bf.float()).all()
    corr = torch.corrcoef(torch.stack([out_bf.float().flatten(), ref.flatten()]))[0, 1]
    assert corr > 0.9  # bf16 keeps ~3 significant digits: the logits stay clearly correlated


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_dynamic_parity(name):
    model = small(name).eval()
    stride = model_stride(name, **SMALL_OPTIONS[name])
    stride = 8 if stride == 1 else max(stride, 16)
    x = torch.randn(1, 3, 2 * stride, 2 * stride)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), buf, dynamo=False, opset_version=18, input_names=["image"], output_names=["logits"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}},
        )  # fmt: skip
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    # a different batch and a non-square size than the export example: the axes really are dynamic
    x2 = torch.randn(2, 3, 2 * stride, 3 * stride)
    for inp in (x, x2):
        with torch.no_grad():
            ref = model(inp).numpy()
        (out,) = session.run(None, {"image": inp.numpy()})
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


def test_onnx_dynamo_exporter_with_dynamic_shapes(tmp_path):
    """The torch.export-based exporter (torch's default since 2.9) also handles the size rules dynamically."""
    from torch.export import Dim

    torch.manual_seed(0)
    model = create_model("unet", 2, base_channels=4, depth=2).eval()
    x = torch.randn(1, 3, 32, 32)
    path = tmp_path / "unet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=True, opset_version=18, input_names=["image"], output_names=["logits"],
            dynamic_shapes={"x": {0: Dim("batch"), 2: Dim("height"), 3: Dim("width")}}, verbose=False,
        )  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x2 = torch.randn(3, 3, 48, 64)
    with torch.no_grad():
        ref = model(x2).numpy()
    (out,) = session.run(None, {"image": x2.numpy()})
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
