"""Data as it ships, end to end: 16-bit 4-channel TIFF and 8-bit grey projects through DTL, train, infer, ONNX
and serving; the inputs rules of training (generated fixtures only)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient

from unetkit.cli.main import main
from unetkit.errors import ConfigError, UnetkitError
from unetkit.inference import Predictor
from unetkit.inference.export import check_parity, export_onnx
from unetkit.models.checkpoint import read_card
from unetkit.models.preprocess import IMAGENET_MEAN
from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    ObjClass,
    Project,
    ProjectMeta,
    ProjectWriter,
    Tag,
    TagMeta,
)
from unetkit.project.images import encode_pixels, read_pixels
from unetkit.training import train
from unetkit.training.inputs import choose_inputs

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")

CONFIG = {
    "lr": 0.01, "epochs": 1, "val_every": 1, "batch_size": {"train": 2, "val": 2},
    "input_size": {"width": 32, "height": 32}, "gpu_devices": [0], "data_workers": {"train": 0, "val": 0},
    "unetkit": {"model": "unet", "model_options": {"base_channels": 4, "depth": 2}, "seed": 0, "amp": "off"},
}  # fmt: skip


def pixels(kind: str, disk: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A picture of ``disk`` in the given kind: grey (8-bit, 1 channel) or u16x4 (16-bit, 4 channels)."""
    h, w = disk.shape
    if kind == "grey":
        img = (rng.random((h, w)) * 60).astype(np.uint8)
        img[disk] += 150
        return img[:, :, None]
    img = (rng.random((h, w, 4)) * 3000 + 20000).astype(np.uint16)
    img[disk] += np.array([9000, 0, 4000, 12000], np.uint16)  # 12-bit-ish signal in a 16-bit container
    return img


def make_project(path, kind: str, ext: str, n: int = 6, size: int = 32):
    rng = np.random.default_rng(0)
    meta = ProjectMeta(
        classes=[ObjClass("fg", "bitmap", "#FF0000")], tag_metas=[TagMeta("train"), TagMeta("val")]
    )
    writer = ProjectWriter(path, meta)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx = rng.integers(10, 22, size=2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 36
        ann = Annotation(
            size, size, [Label("fg", Bitmap((0, 0), disk))], [Tag("train" if i < n - 2 else "val")]
        )
        writer.add_item("ds0", f"img_{i}{ext}", pixels(kind, disk, rng), ann)
    writer.write_meta()
    return path


@pytest.fixture(scope="module")
def u16x4(tmp_path_factory):
    root = tmp_path_factory.mktemp("u16x4")
    project = make_project(root / "project", "u16x4", ".tif")
    result = train(project, CONFIG, root / "run", progress=False)
    return project, result.best_checkpoint, root


def test_sixteen_bit_four_channel_tiff_trains_with_measured_statistics(u16x4):
    project, ckpt, _ = u16x4
    img = read_pixels(next(Project.read(project).items()).image_path)
    assert img.shape == (32, 32, 4) and img.dtype == np.uint16
    card = read_card(ckpt)
    pre = card.preprocessing
    assert card.in_channels == 4 and pre.pixel_type == "uint16" and pre.scale == 65535.0
    assert len(pre.mean) == 4 and 0.3 < pre.mean[0] < 0.5 and all(0 < s < 0.2 for s in pre.std)
    config = json.loads((ckpt / "config.json").read_text())
    assert (
        config["unetkit"]["pixel_type"] == "uint16" and config["unetkit"]["normalization"]["scale"] == 65535.0
    )


def test_sixteen_bit_four_channel_infer_export_and_serve(u16x4, tmp_path):
    project, ckpt, _ = u16x4
    assert (
        main(["infer", "--model", str(ckpt), "--project", str(project), "--out", str(tmp_path / "inf")]) == 0
    )
    assert len(Project.read(tmp_path / "inf")) == 6
    onnx = export_onnx(ckpt, tmp_path / "m.onnx")
    assert check_parity(ckpt, onnx) <= 1e-3
    image = read_pixels(next(Project.read(project).items()).image_path)
    direct = Predictor.from_checkpoint(ckpt, amp="off").predict(image).mask
    np.testing.assert_array_equal(Predictor.from_onnx(onnx).predict(image).mask, direct)
    with pytest.raises(UnetkitError, match=r"has 3 channel\(s\) \(uint8\) but the model takes 4"):
        Predictor.from_onnx(onnx).predict(np.zeros((8, 8, 3), np.uint8))

    from unetkit.serving.app import create_app

    buf = io.BytesIO()
    tifffile.imwrite(buf, image, photometric="minisblack", planarconfig="contig", compression="lzw")
    with TestClient(create_app(ckpt)) as client:
        model = client.get("/v1/model").json()
        assert model["in_channels"] == 4 and model["pixel_type"] == "uint16"
        res = client.post(
            "/v1/predict?preview=true", files={"image": ("x.tif", buf.getvalue(), "image/tiff")}
        )
        assert res.status_code == 200, res.text
        body = res.json()
        assert (body["width"], body["height"]) == (32, 32) and body["preview_png"]
        wrong = client.post("/v1/predict", files={"image": ("x.png", encode_pixels(image[:, :, :3], ".png"))})
        assert wrong.status_code == 400 and "the model takes 4" in wrong.json()["detail"]


def test_grey_project_stays_one_channel_through_dtl_train_and_infer(tmp_path):
    project = make_project(tmp_path / "grey", "grey", ".png")
    graph = [
        {"action": "data", "src": ["grey/*"], "dst": "$data", "settings": {"classes_mapping": "default"}},
        {"action": "flip", "src": ["$data"], "dst": "$flipped", "settings": {"axis": "vertical"}},
        {"action": "supervisely", "src": ["$data", "$flipped"], "dst": "grey_x2", "settings": {}},
    ]
    (tmp_path / "g.json").write_text(json.dumps(graph))
    out = tmp_path / "grey_x2"
    assert main(["dtl", "run", str(tmp_path / "g.json"), "--input", str(project), "--out", str(out)]) == 0
    images = [read_pixels(it.image_path) for it in Project.read(out).items()]
    assert len(images) == 12 and all(im.shape == (32, 32, 1) and im.dtype == np.uint8 for im in images)
    result = train(out, CONFIG, tmp_path / "run", progress=False)
    card = read_card(result.best_checkpoint)
    assert card.in_channels == 1 and card.preprocessing.pixel_type == "uint8"
    assert card.preprocessing.mean[0] != IMAGENET_MEAN[0]  # measured on the data, not ImageNet's
    predictor = Predictor.from_checkpoint(result.best_checkpoint, amp="off")
    assert predictor.predict(images[0]).mask.shape == (32, 32)


def write(path, px):
    path.write_bytes(encode_pixels(px, path.suffix))
    return path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"a.jpg": (np.uint8, 3), "b.png": (np.uint8, 3)}, (3, "uint8", True)),
        ({"a.png": (np.uint8, 1), "b.png": (np.uint8, 3), "c.png": (np.uint8, 4)}, (3, "uint8", True)),
        ({"a.png": (np.uint8, 1), "b.bmp": (np.uint8, 1)}, (1, "uint8", False)),
        ({"a.tif": (np.uint16, 4), "b.tif": (np.uint16, 4)}, (4, "uint16", False)),
        ({"a.tif": (np.float32, 2)}, (2, "float32", False)),
        ({"a.png": (np.uint16, 1), "b.png": (np.uint8, 1)}, "pixel type"),
        ({"a.tif": (np.uint16, 4), "b.tif": (np.uint16, 3)}, "channel count"),
    ],
)
def test_input_rules(tmp_path, files, expected):
    rng = np.random.default_rng(1)
    paths = []
    for name, (dtype, c) in files.items():
        top = 255 if dtype == np.uint8 else 4095
        paths.append(write(tmp_path / name, (rng.random((6, 5, c)) * top).astype(dtype)))
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=expected):
            choose_inputs(paths, (8, 8))
        return
    channels, pre = choose_inputs(paths, (8, 8))
    assert (channels, pre.pixel_type, pre.mean == IMAGENET_MEAN) == expected
    assert len(pre.mean) >= channels and pre.input_size == (8, 8)


def test_render_shows_chosen_channels_of_a_many_channel_project(tmp_path):
    px = np.zeros((8, 8, 5), np.uint8)
    for c in range(5):
        px[:, :, c] = 40 * (c + 1)
    writer = ProjectWriter(tmp_path / "p", ProjectMeta())
    writer.add_item("ds", "a.tif", px, Annotation(8, 8))
    writer.write_meta()
    assert main(["project", "render", str(tmp_path / "p"), str(tmp_path / "r"), "--channels", "4,2,0"]) == 0
    shown = read_pixels(tmp_path / "r" / "ds" / "overlays" / "a.jpg")
    assert np.abs(shown[4, 4].astype(int) - [200, 120, 40]).max() <= 3  # JPEG
    assert main(["project", "render", str(tmp_path / "p"), str(tmp_path / "r2"), "--channels", "7,1,0"]) == 2
