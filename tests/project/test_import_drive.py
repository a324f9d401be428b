"""Datasets as they ship: a DRIVE-shaped folder (TIFF images, GIF annotations with another suffix, GIF field-of-view
masks) imports with one command and evaluates inside the field of view; mask files of every common kind."""

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from unetkit.cli.main import main
from unetkit.errors import ConfigError, FormatError
from unetkit.inference.evaluate import evaluate_projects
from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    ObjClass,
    Project,
    ProjectMeta,
    ProjectWriter,
    rasterize,
)
from unetkit.project.imports import import_masks
from unetkit.project.mask_files import read_mask

H, W = 6, 8
FOV = np.zeros((H, W), bool)
FOV[:, 1:7] = True  # columns 0 and 7 are outside the field of view: 12 pixels
MANUAL = np.zeros((H, W), bool)
MANUAL[2, :] = True  # 6 vessel pixels inside the field of view, 2 outside
PRED = np.zeros((H, W), bool)
PRED[2, 0:5] = PRED[3, 0:2] = True
PRED[:, 7] = True  # predicted vessel outside the field of view


def gif(path, mask: np.ndarray, *, palette_order=None) -> None:
    """A black/white palette GIF (``palette_order``: the palette's colours, e.g. white first)."""
    if palette_order is None:
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)
        return
    index = np.where(mask, palette_order.index(255), palette_order.index(0)).astype(np.uint8)
    im = Image.fromarray(index, "P")
    im.putpalette([v for g in palette_order for v in (g, g, g)])
    im.save(path)


@pytest.fixture
def drive(tmp_path):
    """training/images/NN_training.tif, training/1st_manual/NN_manual1.gif, training/mask/NN_training_mask.gif"""
    root = tmp_path / "DRIVE" / "training"
    for sub in ("images", "1st_manual", "mask"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, nn in enumerate(("21", "22")):
        image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        tifffile.imwrite(root / "images" / f"{nn}_training.tif", image, compression="lzw" if k else None)
        gif(root / "1st_manual" / f"{nn}_manual1.gif", MANUAL, palette_order=[255, 0] if k else None)
        gif(root / "mask" / f"{nn}_training_mask.gif", FOV)
    return root


def import_args(root, out):
    return ["import", "masks", "--images", str(root / "images"), "--masks", str(root / "1st_manual"),
            "--fov", str(root / "mask"), "--match", r"^(\d+)_", "--out", str(out)]  # fmt: skip


def test_drive_imports_with_one_command(drive, tmp_path, capsys):
    assert main(import_args(drive, tmp_path / "gt")) == 0
    assert "imported 2 image(s)" in capsys.readouterr().out
    project = Project.read(tmp_path / "gt")
    assert [c.title for c in project.meta.classes] == ["vessel", "neutral"]
    assert sorted(it.name for it in project.items()) == ["21_training.tif", "22_training.tif"]
    for item in project.items():
        ann = item.read_annotation(project.meta)
        assert [lbl.class_title for lbl in ann.labels] == ["vessel", "neutral"]
        index = rasterize(ann, {"vessel": 1, "neutral": 2})  # neutral drawn last
        assert ((index == 2) == ~FOV).all() and ((index == 1) == (MANUAL & FOV)).all()
        assert item.image_path.read_bytes() == (drive / "images" / item.name).read_bytes()  # copied as it is


def write_predictions(gt_dir, out_dir):
    gt = Project.read(gt_dir)
    meta = ProjectMeta([ObjClass("bg_unet", "bitmap"), ObjClass("vessel_unet", "bitmap")])
    writer = ProjectWriter(out_dir, meta)
    for item in gt.items():
        labels = [
            Label("bg_unet", Bitmap.from_full_mask(~PRED)),
            Label("vessel_unet", Bitmap.from_full_mask(PRED)),
        ]
        writer.add_item(item.dataset, item.name, item.image_path, Annotation(H, W, labels))


def test_drive_evaluates_inside_the_field_of_view(drive, tmp_path, capsys):
    assert main(import_args(drive, tmp_path / "gt")) == 0
    write_predictions(tmp_path / "gt", tmp_path / "pred")
    r = evaluate_projects(tmp_path / "gt", tmp_path / "pred")
    # inside the FOV, per image: vessel TP 4 (row 2, cols 1-4), FP 1 (row 3, col 1), FN 2 (row 2, cols 5-6),
    # TN 36 - 7 = 29; both images are the same
    vessel = r["pooled"]["per_class"]["vessel"]
    assert vessel["dice"] == pytest.approx(8 / 11) and vessel["iou"] == pytest.approx(4 / 7)
    assert vessel["precision"] == pytest.approx(4 / 5) and vessel["recall"] == pytest.approx(4 / 6)
    assert vessel["specificity"] == pytest.approx(29 / 30) and vessel["accuracy"] == pytest.approx(33 / 36)
    assert r["neutral_pixels"] == 24 and r["confusion_matrix"] == [[58, 2], [4, 8]]
    # the whole image, outside pixels as background: + FP 2 (col 0) + 6 (col 7)
    whole = evaluate_projects(tmp_path / "gt", tmp_path / "pred", ignore_neutral=False)
    assert whole["pooled"]["per_class"]["vessel"]["iou"] == pytest.approx(4 / 15)
    out = tmp_path / "metrics.json"
    args = ["evaluate", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--json", str(out)]
    assert main(args) == 0
    assert "neutral pixels left out: 24" in capsys.readouterr().out
    assert json.loads(out.read_text())["pooled"]["per_class"]["vessel"]["dice"] == pytest.approx(8 / 11)


def test_unpaired_files_are_listed(drive, tmp_path):
    (drive / "1st_manual" / "22_manual1.gif").rename(drive / "1st_manual" / "23_manual1.gif")
    with pytest.raises(FormatError, match=r"no mask for 1 image\(s\): 22_training.tif \(id 22\)"):
        main_import(drive, tmp_path / "a")
    (drive / "images" / "22_training.tif").unlink()
    with pytest.raises(FormatError, match=r"1 mask\(s\) have no image: 23_manual1.gif \(id 23\)"):
        main_import(drive, tmp_path / "b")
    (drive / "1st_manual" / "23_manual1.gif").unlink()
    (drive / "mask" / "21_training_mask.gif").unlink()
    with pytest.raises(FormatError, match=r"no field-of-view mask for 1 image\(s\): 21_training.tif"):
        main_import(drive, tmp_path / "c")
    gif(drive / "mask" / "21_training_mask.gif", FOV)
    gif(drive / "1st_manual" / "manual_21.gif", MANUAL)
    with pytest.raises(FormatError, match=r"finds no id in 1 mask name\(s\): manual_21.gif"):
        main_import(drive, tmp_path / "d")
    (drive / "1st_manual" / "manual_21.gif").rename(drive / "1st_manual" / "21_manual2.gif")
    with pytest.raises(FormatError, match=r"masks share an id: 21_manual1.gif and 21_manual2.gif \(id 21\)"):
        main_import(drive, tmp_path / "e")
    with pytest.raises(ConfigError, match="needs a group"):
        main_import(drive, tmp_path / "f", match=r"^\d+_")
    with pytest.raises(ConfigError, match="not a regular expression"):
        main_import(drive, tmp_path / "g", match=r"^(\d+")


def main_import(root, out, match=r"^(\d+)_"):
    return import_masks(root / "images", root / "1st_manual", out, match=match, fov_dir=root / "mask")


def test_fov_by_suffix_and_cli_errors(tmp_path, capsys):
    imgs, masks = tmp_path / "img", tmp_path / "gt"
    imgs.mkdir()
    masks.mkdir()
    tifffile.imwrite(imgs / "a.tiff", np.zeros((H, W), np.uint16))
    gif(masks / "a.gif", MANUAL)
    gif(masks / "a_fov.gif", FOV)
    project = import_masks(imgs, masks, tmp_path / "out", fov_dir=masks, fov_suffix="_fov")
    ann = next(project.items()).read_annotation(project.meta)
    assert (rasterize(ann, {"vessel": 1, "neutral": 2}) == np.where(FOV, MANUAL.astype(int), 2)).all()
    (masks / "a_fov.gif").unlink()
    args = ["import", "masks", "--images", str(imgs), "--masks", str(masks), "--out", str(tmp_path / "o2")]
    assert main([*args, "--fov", str(masks), "--fov-suffix", "_fov"]) == 2
    assert "no field-of-view mask '<stem>_fov.png' for 1 image(s): a.tiff" in capsys.readouterr().err
    assert main([*args, "--match", "(a)", "--fov", str(masks)]) == 2
    assert "need folders of their own" in capsys.readouterr().err


def test_mask_files_of_every_kind(tmp_path):
    values = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    Image.fromarray(values * 100).save(tmp_path / "gray.bmp")
    assert (read_mask(tmp_path / "gray.bmp") == values * 100).all()
    voc = Image.fromarray(values, "P")  # coloured palette: the indices are the class values
    voc.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])
    voc.save(tmp_path / "voc.png")
    assert (read_mask(tmp_path / "voc.png") == values).all()
    gif(tmp_path / "white_first.gif", values > 0, palette_order=[255, 0])  # grey palette: the grey levels
    assert (read_mask(tmp_path / "white_first.gif") == (values > 0) * 255).all()
    tifffile.imwrite(tmp_path / "classes16.tif", values.astype(np.uint16) * 1000, compression="zlib")
    assert (read_mask(tmp_path / "classes16.tif") == values.astype(int) * 1000).all()
    planes = np.stack([values] * 3)  # RGB stored plane by plane (channels first), all equal
    tifffile.imwrite(tmp_path / "planar.tif", planes, photometric="rgb", planarconfig="separate")
    assert (read_mask(tmp_path / "planar.tif") == values).all()
    Image.fromarray(values > 0).save(tmp_path / "bits.png")  # 1-bit
    assert (read_mask(tmp_path / "bits.png") == (values > 0)).all()
    Image.fromarray(np.stack([values * 50] * 3 + [np.full_like(values, 255)], axis=2)).save(
        tmp_path / "rgba.png"
    )
    assert (read_mask(tmp_path / "rgba.png") == values * 50).all()
    Image.fromarray(np.stack([values, values, values * 2], axis=2)).save(tmp_path / "colour.png")
    with pytest.raises(FormatError, match="colour masks are not supported"):
        read_mask(tmp_path / "colour.png")
    (tmp_path / "broken.gif").write_bytes(b"GIF89a nonsense")
    with pytest.raises(FormatError, match="cannot decode mask image"):
        read_mask(tmp_path / "broken.gif")
    tifffile.imwrite(tmp_path / "float.tif", values.astype(np.float32) + 0.5)
    with pytest.raises(FormatError, match="whole class values"):
        read_mask(tmp_path / "float.tif")


def test_drive_pipeline_import_train_infer_evaluate(tmp_path, capsys):
    """The README's DRIVE commands on a generated DRIVE-shaped folder: a tiny model trains on the TIFF images
    (outside-FOV pixels ignored), infers with a threshold and clean-up, and is evaluated inside the FOV."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:32, :32]
    fov = (yy - 15.5) ** 2 + (xx - 15.5) ** 2 <= 15**2
    for split, ids in (("training", ("21", "22", "23", "24")), ("test", ("01", "02"))):
        root = tmp_path / "DRIVE" / split
        for sub in ("images", "1st_manual", "mask"):
            (root / sub).mkdir(parents=True)
        for nn in ids:
            vessel = np.zeros((32, 32), bool)
            col = rng.integers(6, 24)
            vessel[:, col : col + 2] = True
            vessel[rng.integers(6, 24), :] = True
            image = (rng.random((32, 32, 3)) * 60).astype(np.uint8)
            image[vessel] += 150
            image[~fov] = 0
            tifffile.imwrite(root / "images" / f"{nn}_{split}.tif", image, compression="lzw")
            gif(root / "1st_manual" / f"{nn}_manual1.gif", vessel)
            gif(root / "mask" / f"{nn}_{split}_mask.gif", fov)
    drive = tmp_path / "DRIVE"
    common = ["--match", r"^(\d+)_", "--class", "vessel"]
    assert main(["import", "masks", "--images", str(drive / "training/images"), "--masks",
                 str(drive / "training/1st_manual"), "--fov", str(drive / "training/mask"), *common,
                 "--split", "0.75", "--out", str(tmp_path / "drive_train")]) == 0  # fmt: skip
    assert main(["import", "masks", "--images", str(drive / "test/images"), "--masks",
                 str(drive / "test/1st_manual"), "--fov", str(drive / "test/mask"), *common,
                 "--out", str(tmp_path / "drive_test")]) == 0  # fmt: skip
    config = {"lr": 0.01, "epochs": 2, "val_every": 1, "batch_size": {"train": 3, "val": 1},
              "input_size": {"width": 32, "height": 32}, "gpu_devices": [0],
              "data_workers": {"train": 0, "val": 0},
              "unetkit": {"model": "unet", "model_options": {"base_channels": 4, "depth": 2}, "seed": 0}}  # fmt: skip
    (tmp_path / "train.json").write_text(json.dumps(config))
    infer = {"model": {}, "mode": {"name": "full_image", "model_classes": {"add_suffix": "_unet"},
             "save_probabilities": True, "threshold": 0.4, "postprocess": {"vessel": {"min_size": 3}}}}  # fmt: skip
    (tmp_path / "infer.json").write_text(json.dumps(infer))
    run = tmp_path / "runs" / "drive"
    assert main(["train", "--project", str(tmp_path / "drive_train"), "--config", str(tmp_path / "train.json"),
                 "--out", str(run), "--no-progress"]) == 0  # fmt: skip
    assert main(["infer", "--model", str(run), "--project", str(tmp_path / "drive_test"), "--config",
                 str(tmp_path / "infer.json"), "--out", str(tmp_path / "drive_pred")]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--gt", str(tmp_path / "drive_test"), "--pred", str(tmp_path / "drive_pred"),
                 "--sweep-threshold", "--json", str(out)]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert result["neutral_pixels"] == 2 * int((~fov).sum()) and result["ignore_neutral"] is True
    assert sum(map(sum, result["confusion_matrix"])) == 2 * int(fov.sum())  # every counted pixel is inside
    assert result["roc_auc"]["pooled"] is not None and result["threshold_sweep"]["threshold"] is not None
