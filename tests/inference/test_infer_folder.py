"""`unetkit infer --images DIR`: a folder of images in, one mask file per image out, the same masks as
`Predictor.predict` with the same settings."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from unetkit.cli.main import main
from unetkit.inference import Predictor
from unetkit.inference.folder import infer_folder, mask_dtype, safe_name
from unetkit.models import create_model
from unetkit.models.card import ClassMap, ModelCard, Preprocessing
from unetkit.models.checkpoint import load_checkpoint, save_checkpoint
from unetkit.project.images import display_rgb, encode_pixels, read_pixels

from .helpers import TINY, make_checkpoint

SIZES = {"a.png": (40, 50), "b.tif": (70, 60), "c.jpg": (48, 64)}  # name -> (height, width)


def _picture(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth colour gradients with noise: a random model then predicts more than one class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], axis=2) * 255
    return np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)


def write_images(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, (h, w)) in enumerate(SIZES.items()):
        (folder / name).write_bytes(encode_pixels(_picture(h, w, i), Path(name).suffix))
    (folder / "notes.txt").write_text("not an image")  # left out
    (folder / ".hidden.png").write_bytes(b"junk")  # hidden: left out
    (folder / "sub").mkdir()  # subfolders are not searched
    (folder / "sub" / "d.png").write_bytes(encode_pixels(_picture(40, 40, 9), ".png"))
    return folder


def balanced(ckpt: Path, out: Path) -> Path:
    """``ckpt`` with its head biases shifted so that each class's probability is 0.5 at the median pixel of a test
    picture: the tiny random model then predicts every class on part of each image (instead of one class
    everywhere), so that comparing masks means something."""
    loaded = load_checkpoint(ckpt)
    probs = Predictor.from_checkpoint(ckpt).predict(_picture(40, 50, 0)).probabilities.astype(np.float64)
    if loaded.card.classes.multilabel:  # sigmoids: one logit per class
        shifts = [np.median(np.log(probs[..., k] / (1 - probs[..., k]))) for k in range(probs.shape[2])]
    else:  # a two-class softmax: the logit difference of class 1 over class 0
        shifts = [0.0, np.median(np.log(probs[..., 1] / probs[..., 0]))]
    with torch.no_grad():
        loaded.model.outc.conv.bias -= torch.tensor(shifts, dtype=torch.float32)
    return save_checkpoint(out, loaded.model, loaded.card)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt")
    return balanced(make_checkpoint(folder / "random", seed=3), folder / "model")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("in") / "images")


def infer(ckpt, images, out, *extra) -> int:
    return main(["infer", "--model", str(ckpt), "--images", str(images), "--out", str(out), "--device", "cpu",
                 "--no-progress", *extra])  # fmt: skip


def read_mask(path: Path) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert mask is not None and mask.ndim == 2, path
    return mask


def assert_nothing_left(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir())
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no staging folder


def test_masks_equal_predictor_predict(ckpt, images, tmp_path, capsys):
    out = tmp_path / "masks"
    assert infer(ckpt, images, out) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("model applied: 3 images in ")
    assert "1 other file(s) left out" in summary[0] and summary[0].endswith(f"-> {out}")
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "classes.json"]
    predictor = Predictor.from_checkpoint(ckpt)
    classes = set()
    for name, (h, w) in SIZES.items():
        expected = predictor.predict(images / name).mask
        mask = read_mask(out / f"{Path(name).stem}.png")
        assert mask.shape == (h, w) and mask.dtype == np.uint8
        np.testing.assert_array_equal(mask, expected)
        classes |= set(np.unique(mask).tolist())
    assert classes == {0, 1}  # both classes appear somewhere: the comparison means something
    table = json.loads((out / "classes.json").read_text())
    assert table["class_title_to_idx"] == {"bg": 0, "vessel": 1} and table["multilabel"] is False
    assert table["colors"]["vessel"] == [255, 0, 0] and table["mask_files"] == "<stem>.png"


def test_sliding_window_config_smaller_than_the_images(ckpt, images, tmp_path):
    config = tmp_path / "sw.json"
    config.write_text(json.dumps({"model": {"gpu_device": 0}, "mode": {
        "name": "sliding_window", "window": {"width": 32, "height": 24}, "min_overlap": {"x": 8, "y": 6},
        "blend": "gaussian"}}))  # fmt: skip
    out = tmp_path / "sw"
    assert infer(ckpt, images, out, "--config", str(config)) == 0
    predictor = Predictor.from_checkpoint(ckpt)
    differs = False
    for name in SIZES:
        sliding = predictor.predict(images / name, settings=config).mask
        np.testing.assert_array_equal(read_mask(out / f"{Path(name).stem}.png"), sliding)
        differs |= not np.array_equal(sliding, predictor.predict(images / name).mask)
    assert differs  # the config, not the card's full_image settings, made the masks


def test_tta_flag_overrides_the_settings(ckpt, images, tmp_path):
    out = tmp_path / "tta"
    assert infer(ckpt, images, out, "--tta") == 0
    predictor = Predictor.from_checkpoint(ckpt)
    settings = predictor.settings.with_mode(tta=True)
    for name in SIZES:
        expected = predictor.predict(images / name, settings=settings).mask
        np.testing.assert_array_equal(read_mask(out / f"{Path(name).stem}.png"), expected)


def test_probabilities_and_overlays(ckpt, images, tmp_path):
    out = tmp_path / "all"
    assert infer(ckpt, images, out, "--save-probabilities", "--overlays") == 0
    assert {p.name for p in out.iterdir()} == {"classes.json"} | {
        f"{Path(n).stem}{s}" for n in SIZES for s in (".png", "_probabilities.npy", "_overlay.png")
    }
    predictor = Predictor.from_checkpoint(ckpt)
    for name, (h, w) in SIZES.items():
        stem = Path(name).stem
        prediction = predictor.predict(images / name)
        probs = np.load(out / f"{stem}_probabilities.npy")
        assert probs.dtype == np.float16 and probs.shape == (h, w, 2)
        np.testing.assert_allclose(probs, prediction.probabilities, atol=2e-3)
        shown = cv2.cvtColor(cv2.imread(str(out / f"{stem}_overlay.png")), cv2.COLOR_BGR2RGB)
        picture = display_rgb(read_pixels(images / name))
        assert shown.shape == (h, w, 3)
        bg = prediction.mask == 0
        np.testing.assert_array_equal(shown[bg], picture[bg])  # the background class is not drawn
        red = np.round(picture[~bg].astype(np.float32) * 0.5 + np.array([255, 0, 0]) * 0.5).astype(np.uint8)
        np.testing.assert_array_equal(shown[~bg], red)


def test_multilabel_model_writes_one_mask_per_class(tmp_path):
    torch.manual_seed(0)
    out_classes = [{"title": "a", "shape": "bitmap", "color": "#FF0000"},
                   {"title": "b c", "shape": "bitmap", "color": "#0000FF"}]  # fmt: skip
    card = ModelCard(
        model="unet", model_options=dict(TINY), preprocessing=Preprocessing(input_size=(64, 64)),
        classes=ClassMap(out_classes=out_classes, class_title_to_idx={"a": 0, "b c": 1}, multilabel=True),
    )  # fmt: skip
    random = save_checkpoint(tmp_path / "random", create_model("unet", 2, **TINY).eval(), card)
    ckpt = balanced(random, tmp_path / "ml")
    images = write_images(tmp_path / "images")
    out = tmp_path / "out"
    assert infer(ckpt, images, out, "--overlays") == 0
    assert safe_name("b c") == "b_c"
    predictor = Predictor.from_checkpoint(ckpt)
    for name in SIZES:
        stem, prediction = Path(name).stem, predictor.predict(images / name)
        assert prediction.multilabel
        for k, title in enumerate(("a", "b_c")):
            mask = read_mask(out / f"{stem}_{title}.png")
            np.testing.assert_array_equal(mask, prediction.mask[:, :, k].astype(np.uint8) * 255)
            assert set(np.unique(mask).tolist()) == {0, 255}
        assert not (out / f"{stem}.png").exists() and (out / f"{stem}_overlay.png").is_file()
    table = json.loads((out / "classes.json").read_text())
    assert table["multilabel"] is True and table["mask_files"] == {
        "a": "<stem>_a.png",
        "b c": "<stem>_b_c.png",
    }


def test_library_call_and_mask_type(ckpt, images, tmp_path):
    predictor = Predictor.from_checkpoint(ckpt)
    stats = infer_folder(predictor, images, tmp_path / "lib")
    assert (stats.images, stats.skipped) == (3, 1) and stats.images_per_second > 0
    assert mask_dtype(2) == mask_dtype(256) == np.uint8 and mask_dtype(257) == np.uint16


# ------------------------------------------------------------------------------------------------ errors
def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_exactly_one_input(ckpt, images, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["infer", "--model", str(ckpt), "--out", str(out)]) == 2
    assert "exactly one of --project DIR" in _error(capsys) and not out.exists()
    assert main(["infer", "--model", str(ckpt), "--images", str(images), "--project", str(tmp_path / "p"),
                 "--out", str(out)]) == 2  # fmt: skip
    assert "got both" in _error(capsys) and not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "ray"], "--engine ray is for --project"),
        (["--batch-size", "2"], "--batch-size is for --project"),
    ],
)
def test_project_only_options_are_refused(ckpt, images, tmp_path, capsys, extra, message):
    assert infer(ckpt, images, tmp_path / "o", *extra) == 2
    assert message in _error(capsys)
    assert_nothing_left(tmp_path / "o")


def test_folder_only_options_are_refused_with_a_project(ckpt, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["infer", "--model", str(ckpt), "--project", str(tmp_path / "p"), "--out", str(out),
                 "--overlays"]) == 2  # fmt: skip
    assert "--overlays is for --images" in _error(capsys) and not out.exists()


def test_non_empty_output_is_refused(ckpt, images, tmp_path, capsys):
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert infer(ckpt, images, out) == 2
    err = _error(capsys)
    assert str(out) in err and "not empty" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_empty_output_folder_is_used(ckpt, images, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert infer(ckpt, images, out) == 0
    assert (out / "a.png").is_file()


@pytest.mark.parametrize("broken", ["b_broken.png", "b_deep.png"])
def test_unreadable_image_names_the_file_and_leaves_nothing(ckpt, tmp_path, capsys, broken):
    images = write_images(tmp_path / "images")
    if broken == "b_broken.png":
        (images / broken).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    else:  # decodes, but 16-bit pixels for a model trained on 8-bit ones: the predictor refuses it
        (images / broken).write_bytes(encode_pixels(np.full((40, 40, 3), 40000, np.uint16), ".png"))
    out = tmp_path / "out"
    assert infer(ckpt, images, out) == 2
    err = _error(capsys)
    assert str(images / broken) in err
    assert_nothing_left(out)


def test_two_images_with_one_stem_are_refused(ckpt, tmp_path, capsys):
    images = write_images(tmp_path / "images")
    (images / "a.jpg").write_bytes(encode_pixels(_picture(40, 40, 5), ".jpg"))
    assert infer(ckpt, images, tmp_path / "out") == 2
    err = _error(capsys)
    assert "a.jpg and a.png would both be written as a.png" in err
    assert_nothing_left(tmp_path / "out")


def test_folder_without_images_and_bboxes_mode_are_refused(ckpt, tmp_path, capsys):
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    assert infer(ckpt, empty, tmp_path / "out") == 2
    assert "no image files in the folder" in _error(capsys)
    images = write_images(tmp_path / "images")
    config = tmp_path / "bboxes.json"
    config.write_text(json.dumps({"model": {}, "mode": {"name": "bboxes"}}))
    assert infer(ckpt, images, tmp_path / "out", "--config", str(config)) == 2
    err = _error(capsys)
    assert "bboxes.json: $.mode.name: mode bboxes" in err and "--project" in err
    assert_nothing_left(tmp_path / "out")
