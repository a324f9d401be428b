"""ONNX export: dynamic axes, metadata, parity with PyTorch."""

import json

import numpy as np
import onnx
import pytest

from unetkit.cli.main import main
from unetkit.inference import Predictor
from unetkit.inference.export import check_parity, export_onnx


@pytest.fixture(scope="module")
def exported(random_ckpt, tmp_path_factory):
    return export_onnx(random_ckpt, tmp_path_factory.mktemp("onnx") / "model.onnx")


def test_metadata_and_dynamic_axes(exported):
    model = onnx.load(str(exported))
    meta = json.loads({p.key: p.value for p in model.metadata_props}["unetkit"])
    assert meta["class_title_to_idx"] == {"bg": 0, "vessel": 1}
    assert [c["title"] for c in meta["out_classes"]] == ["vessel", "bg"]
    assert meta["input_size"] == {"width": 64, "height": 64}
    assert meta["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert meta["normalization"]["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert meta["resize"] == "bicubic" and meta["model"] == "unet" and meta["stride"] == 4
    assert meta["dynamic_spatial"] is True
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]


def test_logit_parity_and_identical_masks(exported, random_ckpt, chase_images):
    torch_p = Predictor.from_checkpoint(random_ckpt, amp="off")  # the export is fp32: compare with fp32
    onnx_p = Predictor.from_onnx(exported)
    assert onnx_p.class_title_to_idx == torch_p.class_title_to_idx and onnx_p.input_size == (64, 64)
    rng = np.random.default_rng(0)
    for shape in ((1, 3, 64, 64), (3, 3, 96, 128)):  # other batch size and image size: dynamic axes
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(onnx_p.backend.logits(x), torch_p.backend.logits(x), atol=1e-4)
    via_ckpt = Predictor.from_checkpoint(random_ckpt, backend="onnxruntime", onnx_path=exported)
    for img in chase_images:
        a, b = torch_p.predict(img), onnx_p.predict(img)
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)
        np.testing.assert_array_equal(via_ckpt.predict(img).mask, a.mask)
    assert check_parity(random_ckpt, exported) < 1e-4


def test_export_cli(random_ckpt, tmp_path, capsys):
    out = tmp_path / "sub" / "m.onnx"
    assert main(["export", "onnx", "--model", str(random_ckpt), "-o", str(out), "--opset", "17"]) == 0
    text = capsys.readouterr().out
    assert "exported" in text and "parity" in text
    assert out.is_file() and not list(out.parent.glob(".*tmp"))
    assert main(["export", "onnx", "--model", str(tmp_path / "missing"), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "checkpoint folder not found" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_from_onnx_requires_metadata(tmp_path):
    import torch

    from unetkit.errors import FormatError

    path = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 2, 1), (torch.zeros(1, 3, 4, 4),), str(path), dynamo=False)
    with pytest.raises(FormatError, match="metadata"):
        Predictor.from_onnx(path)


def test_size_dependent_model_gets_fixed_spatial_axes(tmp_path, chase_images):
    from .helpers import make_checkpoint

    # valid-padding U-Net computes its overlap-tile padding from the input size in Python: a traced graph only
    # fits the input size, so height/width are exported fixed
    ckpt = make_checkpoint(tmp_path / "valid", options={"base_channels": 4, "depth": 2, "padding": "valid"})
    path = export_onnx(ckpt, tmp_path / "valid.onnx")
    meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["unetkit"])
    assert meta["dynamic_spatial"] is False
    dims = [
        d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    ]
    assert dims == ["batch", 3, 64, 64]
    assert check_parity(ckpt, path) < 1e-4
    a = Predictor.from_checkpoint(ckpt).predict(chase_images[0]).mask
    np.testing.assert_array_equal(Predictor.from_onnx(path).predict(chase_images[0]).mask, a)
