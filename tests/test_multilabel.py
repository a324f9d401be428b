"""Overlapping classes (multi-label): per-class sigmoid channels from the training config to the model card,
inference masks that overlap, per-class thresholds, ONNX and serving (generated fixtures only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from unetkit.errors import ConfigError, FormatError
from unetkit.inference import Predictor
from unetkit.inference.export import check_parity, export_onnx
from unetkit.inference.labelsets import class_region, class_thresholds, decide_labelsets, unpack
from unetkit.inference.modes import annotate
from unetkit.inference.postprocess import clean_labelsets
from unetkit.inference.tiling import BandStitcher
from unetkit.inference_config import ClassCleanup
from unetkit.models.card import ClassMap, ModelCard
from unetkit.models.checkpoint import read_card
from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    ObjClass,
    Project,
    ProjectMeta,
    ProjectWriter,
    Rectangle,
    Tag,
    TagMeta,
)
from unetkit.project.rasterize import rasterize_labelsets
from unetkit.serving.app import create_app
from unetkit.serving.payloads import decode_class_mask
from unetkit.training import train
from unetkit.training.config import parse_config
from unetkit.training.losses import build_criterion, multilabel_bce_dice_loss
from unetkit.training.multilabel import NO_CLASS, neutral_flag, unpack_targets
from unetkit.training.validation import ValidationPreview

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")

SIZE = 32
CONFIG = {
    "lr": 0.02, "epochs": 30, "val_every": 10, "batch_size": {"train": 2, "val": 2},
    "input_size": {"width": SIZE, "height": SIZE}, "data_workers": {"train": 0, "val": 0},
    "unetkit": {"model": "unet", "model_options": {"base_channels": 4, "depth": 2}, "seed": 0, "amp": "off",
                "multilabel": True},
}  # fmt: skip


def disks(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An image with two overlapping disks: a (red) and b (green), and their masks."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    ca = rng.integers(10, 16, size=2)
    cb = ca + rng.integers(5, 9, size=2)
    a = (yy - ca[0]) ** 2 + (xx - ca[1]) ** 2 <= 64
    b = (yy - cb[0]) ** 2 + (xx - cb[1]) ** 2 <= 64
    img = (rng.random((SIZE, SIZE, 3)) * 40).astype(np.uint8)
    img[a, 0] += 180
    img[b, 1] += 180
    return img, a, b


def make_project(path, n: int = 8):
    """Disks a and b overlapping on every image, a neutral strip at the bottom, a background object on one."""
    rng = np.random.default_rng(0)
    classes = [ObjClass("a", "bitmap", "#FF0000"), ObjClass("b", "bitmap", "#00FF00"),
               ObjClass("bg", "rectangle", "#000000"), ObjClass("neutral", "rectangle", "#FFFFFF")]  # fmt: skip
    writer = ProjectWriter(path, ProjectMeta(classes=classes, tag_metas=[TagMeta("train"), TagMeta("val")]))
    for i in range(n):
        img, a, b = disks(rng)
        labels = [Label("a", Bitmap((0, 0), a)), Label("b", Bitmap((0, 0), b)),
                  Label("neutral", Rectangle(0, 29, 31, 31))]  # fmt: skip
        if i == 0:
            labels.insert(0, Label("bg", Rectangle(0, 0, 31, 31)))
        ann = Annotation(SIZE, SIZE, labels, [Tag("train" if i < 6 else "val")])
        writer.add_item("ds0", f"im{i}.png", img, ann)
    writer.write_meta()
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("multilabel")
    project = make_project(root / "project")
    torch.set_num_threads(1)
    result = train(project, CONFIG, root / "run", progress=False)
    return project, result


@pytest.fixture(scope="module")
def predictor(trained):
    return Predictor.from_checkpoint(trained[1].best_checkpoint, amp="off")


def val_image(project):
    items = sorted(Project.read(project).items(), key=lambda it: it.name)
    item = items[-1]
    ann = item.read_annotation(Project.read(project).meta)
    masks = {label.class_title: label.geometry.to_mask(SIZE, SIZE) for label in ann.labels}
    return item, masks


# ------------------------------------------------------------------------------------------------ classes


def test_class_map_multilabel_has_no_background_channel():
    classes = [ObjClass("b", "bitmap", "#00FF00"), ObjClass("bg", "bitmap", "#000000"),
               ObjClass("a", "bitmap", "#FF0000"), ObjClass("neutral", "bitmap", "#FFFFFF")]  # fmt: skip
    ml = ClassMap.for_project(classes, "bg", "neutral", multilabel=True)
    assert ml.class_title_to_idx == {"a": 0, "b": 1}
    assert ml.num_classes == 2 and ml.neutral_index == 2 and ml.background is None
    assert [c["title"] for c in ml.out_classes] == ["a", "b"] and ml.activation == "sigmoid"
    softmax = ClassMap.for_project(classes, "bg", "neutral")  # the default stays the original's
    assert softmax.class_title_to_idx == {"bg": 0, "a": 1, "b": 2}
    assert not softmax.multilabel and softmax.background == "bg" and softmax.activation == "softmax"
    cards = [
        ModelCard(model="unet", classes=c, preprocessing={"input_size": (32, 32)}) for c in (softmax, ml)
    ]
    assert "multilabel" not in cards[0].to_config()["unetkit"]  # the original's file, unchanged
    assert cards[1].to_config()["unetkit"]["multilabel"] is True
    assert ModelCard.from_config(cards[1].to_config()).classes == ml
    with pytest.raises(FormatError, match="at least one class"):
        ClassMap.for_project(classes[1:2] + classes[3:], "bg", "neutral", multilabel=True)
    many = [ObjClass(f"c{i:02d}", "bitmap", "#FF0000") for i in range(31)]
    with pytest.raises(FormatError, match="at most 30"):
        ClassMap.for_project(many, "bg", "neutral", multilabel=True)


def test_config_chooses_multilabel_explicitly():
    assert parse_config({}).unetkit.multilabel is False
    assert parse_config({"unetkit": {"multilabel": True}}).unetkit.multilabel is True
    with pytest.raises(ConfigError, match=r"\$\.unetkit\.loss\.name: multi-label"):
        parse_config({"unetkit": {"multilabel": True, "loss": {"name": "ce"}}})


# ------------------------------------------------------------------------------------------------ data + loss


def test_targets_keep_overlaps_and_mark_neutral_pixels():
    a = np.zeros((4, 4), bool)
    a[:2, :3] = True
    b = np.zeros((4, 4), bool)
    b[1:3, 1:] = True
    labels = [Label("bg", Rectangle(0, 0, 3, 3)), Label("a", Bitmap((0, 0), a)), Label("b", Bitmap((0, 0), b)),
              Label("n", Rectangle(0, 3, 3, 3))]  # fmt: skip
    ann = Annotation(4, 4, labels)
    packed = rasterize_labelsets(ann, {"a": 0, "b": 1, "n": 2, "bg": NO_CLASS})
    assert packed.tolist() == [[1, 1, 1, 0], [1, 3, 3, 2], [0, 2, 2, 2], [4, 4, 4, 4]]
    t, valid = unpack_targets(torch.from_numpy(packed).long()[None], 2)
    assert t.shape == (1, 2, 4, 4) and valid.shape == (1, 1, 4, 4)
    assert np.array_equal(t[0, 0].numpy().astype(bool), a) and np.array_equal(t[0, 1].numpy().astype(bool), b)
    assert valid[0, 0, 3].sum() == 0 and valid[0, 0, :3].all()
    assert neutral_flag(2) == 4
    with pytest.raises(FormatError, match=r"\$\.objects\[1\]\.classTitle"):
        rasterize_labelsets(ann, {"bg": NO_CLASS})


def test_loss_is_per_class_bce_plus_dice_ignoring_neutral_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 5)
    packed = torch.randint(0, 8, (2, 5, 5))
    packed[:, 0] = neutral_flag(3) | 1  # a neutral row (with a class bit that must not count either)
    loss = multilabel_bce_dice_loss(logits, packed)
    t, valid = unpack_targets(packed, 3)
    keep = valid.expand_as(t).bool()
    bce = torch.stack([torch.nn.functional.binary_cross_entropy_with_logits(logits[:, k][keep[:, k]],
                                                                           t[:, k][keep[:, k]]) for k in range(3)])  # fmt: skip
    p = torch.sigmoid(logits) * valid
    tv = t * valid
    dice = (2 * (p * tv).sum((0, 2, 3)) + 1) / (p.sum((0, 2, 3)) + tv.sum((0, 2, 3)) + 1)
    expected = (bce.mean() + 1 - dice.mean()) / 2
    assert torch.allclose(loss, expected, atol=1e-6)
    changed = logits.clone()
    changed[:, :, 0] = 50.0  # neutral pixels do not count
    assert torch.allclose(multilabel_bce_dice_loss(changed, packed), loss, atol=1e-6)
    perfect = (t * 2 - 1) * 30.0
    assert multilabel_bce_dice_loss(perfect, packed) < 1e-3
    criterion, name = build_criterion("auto", 3, 3, multilabel=True)
    assert name == "multilabel_bce_dice" and torch.allclose(criterion(logits, packed), loss)
    with pytest.raises(ConfigError, match="multi-label"):
        build_criterion("focal", 3, 3, multilabel=True)


def test_validation_preview_blends_every_class_present():
    classes = ClassMap(out_classes=({"title": "a", "color": "#FF0000"}, {"title": "b", "color": "#0000FF"}),
                       class_title_to_idx={"a": 0, "b": 1}, neutral="n", multilabel=True)  # fmt: skip
    preview = ValidationPreview.for_classes(classes)
    picture = np.zeros((1, 4, 3), np.uint8)
    out = preview.overlay(picture, np.array([[0, 1, 3, 4]]))
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, 1].tolist() == [140, 0, 0]  # a: 0.55 of red
    assert out[0, 2, 0] > 0 and out[0, 2, 2] > 0  # a and b: both colours
    assert out[0, 3].tolist() == [70, 70, 70]  # neutral grey


# ------------------------------------------------------------------------------------------------ inference units


def test_decide_and_clean_packed_masks():
    probs = np.zeros((3, 4, 2), np.float32)
    probs[:, :, 0] = [[0.9, 0.6, 0.4, 0.0]] * 3
    probs[:, :, 1] = [[0.1, 0.7, 0.95, 0.5]] * 3
    packed = decide_labelsets(probs, np.array([0.5, 0.5], np.float32))
    assert packed.dtype == np.uint8 and packed[0].tolist() == [1, 3, 2, 2]
    assert decide_labelsets(probs, np.array([0.5, 0.9], np.float32))[0].tolist() == [1, 1, 2, 0]
    planes = unpack(packed, 2)
    assert planes.shape == (3, 4, 2) and planes[:, 1].all()
    mask = np.zeros((6, 6), np.uint8)
    mask[0:3, 0:3] |= 1  # class 0: a 9-pixel component ...
    mask[5, 5] |= 1  # ... and a 1-pixel one
    mask[1:4, 1:4] |= 2  # class 1 overlaps class 0 with a 9-pixel component
    mask[5, 0] |= 2
    cleaned = clean_labelsets(mask, {0: ClassCleanup(min_size=2), 1: ClassCleanup(keep_largest=1)})
    assert class_region(cleaned, 0).sum() == 9 and not class_region(cleaned, 0)[5, 5]
    assert class_region(cleaned, 1).sum() == 9 and not class_region(cleaned, 1)[5, 0]
    assert (class_region(cleaned, 0) & class_region(cleaned, 1)).sum() == 4  # the overlap stays


def test_thresholds_number_or_per_class():
    from unetkit.models.card import ModelClass

    classes = [
        ModelClass(index=0, title="a", color="#FF0000"),
        ModelClass(index=1, title="b", color="#00FF00"),
    ]
    assert class_thresholds(None, classes).tolist() == [0.5, 0.5]
    assert class_thresholds(0.25, classes).tolist() == [0.25, 0.25]
    assert class_thresholds({"b": 0.75}, classes).tolist() == [0.5, 0.75]
    with pytest.raises(ConfigError, match=r"\$\.mode\.threshold\.c: no model class 'c'"):
        class_thresholds({"c": 0.5}, classes)


def test_band_stitcher_averages_sigmoids_per_class():
    stitcher = BandStitcher(4, 6, 2, 4, keep_probabilities=True, thresholds=np.array([0.5, 0.3], np.float32))
    left = np.zeros((2, 4, 4), np.float32)
    left[0], left[1] = 0.8, 0.2
    right = np.zeros((2, 4, 4), np.float32)
    right[0], right[1] = 0.1, 0.6
    stitcher.add(0, 0, left, np.ones((4, 4), np.float32))
    stitcher.add(0, 2, right, np.ones((4, 4), np.float32))
    mask, probs = stitcher.finish()
    # columns 0-1: left only; 2-3: mean (0.45, 0.4); 4-5: right only
    assert np.allclose(probs[0, :, 0], [0.8, 0.8, 0.45, 0.45, 0.1, 0.1], atol=1e-3)
    assert mask[0].tolist() == [1, 1, 2, 2, 2, 2]


# ------------------------------------------------------------------------------------------------ end to end


def test_training_writes_a_multilabel_card(trained):
    _, result = trained
    config = json.loads((result.best_checkpoint / "config.json").read_text())
    assert config["unetkit"]["multilabel"] is True
    assert config["class_title_to_idx"] == {"a": 0, "b": 1}
    assert config["settings"]["unetkit"]["multilabel"] is True
    card = read_card(result.best_checkpoint)
    assert card.classes.multilabel and card.num_classes == 2
    assert card.describe()["multilabel"] is True
    metrics = result.last_val_metrics
    assert metrics["iou/a"] > 0.8 and metrics["iou/b"] > 0.8, metrics


def test_continue_training_keeps_the_kind_of_model(trained, tmp_path):
    project, result = trained
    again = {**CONFIG, "epochs": 1, "val_every": 1, "weights_init_type": "continue_training"}
    resumed = train(project, again, tmp_path / "more", init=result.best_checkpoint, progress=False)
    assert read_card(resumed.best_checkpoint).classes.multilabel
    softmax = {**again, "unetkit": {**CONFIG["unetkit"], "multilabel": False}}
    with pytest.raises(ConfigError, match=r"\$\.unetkit\.multilabel: .*checkpoint is a multi-label model"):
        train(project, softmax, tmp_path / "softmax", init=result.best_checkpoint, progress=False)


def test_prediction_overlaps_where_the_disks_do(trained, predictor):
    project, _ = trained
    item, gt = val_image(project)
    pred = predictor.predict(item.image_path)
    assert pred.multilabel and pred.mask.shape == (SIZE, SIZE, 2) and pred.mask.dtype == bool
    both_gt = gt["a"] & gt["b"]
    both = pred.mask[:, :, 0] & pred.mask[:, :, 1]
    assert both_gt.sum() > 20 and (both & both_gt).sum() >= 0.8 * both_gt.sum()
    assert (pred.mask[:, :, 0] == gt["a"]).mean() > 0.95 and (pred.mask[:, :, 1] == gt["b"]).mean() > 0.95
    assert pred.probabilities.min() >= 0 and pred.probabilities.max() <= 1  # sigmoids, not a softmax
    ann = annotate(predictor, item.image_path)
    regions = {label.class_title: label.geometry.to_mask(SIZE, SIZE) for label in ann.labels}
    assert sorted(regions) == ["a_unet", "b_unet"]
    assert np.array_equal(regions["a_unet"], pred.mask[:, :, 0])
    assert np.array_equal(regions["b_unet"], pred.mask[:, :, 1])


def test_sliding_window_one_window_equals_full_image(trained, predictor):
    project, _ = trained
    item, _ = val_image(project)
    full = annotate(predictor, item.image_path, mode={"name": "full_image"})
    sliding = annotate(predictor, item.image_path, mode={"name": "sliding_window", "batch_size": 2,
                                                         "window": {"width": SIZE, "height": SIZE}})  # fmt: skip
    assert [lb.class_title for lb in full.labels] == ["a_unet", "b_unet"]
    assert [lb.class_title for lb in sliding.labels] == ["a", "b"]  # sliding_window: no suffix by default
    assert [lb.geometry.to_json() for lb in full.labels] == [lb.geometry.to_json() for lb in sliding.labels]
    tiled = annotate(predictor, item.image_path, mode={"name": "sliding_window", "batch_size": 2,
                     "window": {"width": 16, "height": 16}, "min_overlap": {"x": 8, "y": 8}, "blend": "gaussian"})  # fmt: skip
    tiled_regions = [lb.geometry.to_mask(SIZE, SIZE) for lb in tiled.labels]
    assert [lb.class_title for lb in tiled.labels] == ["a", "b"]
    assert (tiled_regions[0] & tiled_regions[1]).any()  # one bitmap per class, overlaps kept


def test_per_class_thresholds_are_honoured(trained, predictor):
    project, _ = trained
    item, _ = val_image(project)
    probs = predictor.predict_proba(item.image_path)

    def regions(threshold):
        ann = annotate(predictor, item.image_path, mode={"name": "full_image", "threshold": threshold})
        out = {lb.class_title: lb.geometry.to_mask(SIZE, SIZE) for lb in ann.labels}
        return out.get("a_unet", np.zeros((SIZE, SIZE), bool)), out.get(
            "b_unet", np.zeros((SIZE, SIZE), bool)
        )

    a, b = regions({"b": 0.9})
    assert np.array_equal(a, probs[:, :, 0] >= 0.5) and np.array_equal(b, probs[:, :, 1] >= 0.9)
    a, b = regions(0.2)
    assert np.array_equal(a, probs[:, :, 0] >= 0.2) and np.array_equal(b, probs[:, :, 1] >= 0.2)
    with pytest.raises(ConfigError, match="no model class 'c'"):
        regions({"c": 0.5})


def test_onnx_parity_and_sigmoid_from_the_card(trained, predictor, tmp_path):
    project, result = trained
    onnx_path = export_onnx(result.best_checkpoint, tmp_path / "model.onnx")
    assert check_parity(result.best_checkpoint, onnx_path) <= 1e-3
    onnx = Predictor.from_onnx(onnx_path)
    assert onnx.card.classes.multilabel and onnx.backend.activation == "sigmoid"
    item, _ = val_image(project)
    direct, exported = predictor.predict(item.image_path), onnx.predict(item.image_path)
    assert np.abs(direct.probabilities - exported.probabilities).max() < 1e-4
    near = np.abs(direct.probabilities - 0.5) < 1e-4
    assert np.array_equal(direct.mask | near, exported.mask | near)
    meta = ModelCard.from_onnx_metadata(json.dumps(json.loads(onnx.card.to_onnx_metadata())))
    assert meta.classes.multilabel


def test_serving_returns_one_mask_per_class(trained, predictor):
    project, result = trained
    item, _ = val_image(project)
    data = item.image_path.read_bytes()
    expected = predictor.predict(item.image_path).mask
    app = create_app(result.best_checkpoint, device="cpu", max_batch=2, max_wait_ms=1)
    with TestClient(app) as client:
        assert client.get("/v1/model").json()["multilabel"] is True
        body = client.post("/v1/predict", files={"image": ("x.png", data, "image/png")}).json()
        assert body["multilabel"] is True and "mask_png" not in body
        masks = {title: decode_class_mask(png) for title, png in body["masks_png"].items()}
        assert sorted(masks) == ["a", "b"]
        assert np.array_equal(masks["a"], expected[:, :, 0]) and np.array_equal(masks["b"], expected[:, :, 1])
        assert (masks["a"] & masks["b"]).any()
        assert body["class_pixels"] == {"a": int(expected[:, :, 0].sum()), "b": int(expected[:, :, 1].sum())}
        ann = client.post(
            "/v1/predict?format=annotation", files={"image": ("x.png", data, "image/png")}
        ).json()
        titles = [obj["classTitle"] for obj in ann["annotation"]["objects"]]
        assert titles == ["a", "b"]
        original = client.post("/model/inference", files={"image": ("x.png", data, "image/png")}).json()
        meta = ProjectMeta(
            classes=[ObjClass("a_model", "bitmap", "#FF0000"), ObjClass("b_model", "bitmap", "#00FF00")]
        )
        parsed = Annotation.from_json(original, meta)
        regions = {lb.class_title: lb.geometry.to_mask(SIZE, SIZE) for lb in parsed.labels}
        assert np.array_equal(regions["a_model"], expected[:, :, 0])
        assert np.array_equal(regions["b_model"], expected[:, :, 1])


def test_web_page_overlays_every_class(trained):
    import httpx

    from browser import ARGS, CHROMIUM, require_browser
    from serving.helpers import serve_process

    require_browser()
    from playwright.sync_api import sync_playwright

    project, result = trained
    item, _ = val_image(project)
    with serve_process(result.best_checkpoint) as url, sync_playwright() as pw:
        with item.image_path.open("rb") as fh:
            body = httpx.post(f"{url}/v1/predict", files={"image": ("x.png", fh, "image/png")}).json()
        a, b = (decode_class_mask(body["masks_png"][t]) for t in ("a", "b"))
        assert (a & b).any()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}/")
            page.wait_for_selector("#legend li")
            page.set_input_files("#file-input", str(item.image_path))
            page.wait_for_selector('#stage[data-state="ready"]', timeout=30_000)
            assert page.get_attribute("#stage", "data-overlay-pixels") == str(int((a | b).sum()))
            y, x = np.argwhere(a & b)[0]
            rgba = page.evaluate(
                "([x, y]) => Array.from(document.getElementById('overlay').getContext('2d')"
                ".getImageData(x, y, 1, 1).data)",
                [int(x), int(y)],
            )
            assert rgba == [128, 128, 0, 255]  # both classes: the mean of red and green
            page.locator("#legend li").nth(0).locator("input").uncheck()  # hide class a
            assert page.get_attribute("#stage", "data-overlay-pixels") == str(int(b.sum()))
            assert page.get_attribute("#download", "download") == f"{item.image_path.stem}_masks.png"
            assert page.get_attribute("#download", "href").startswith("data:image/png;base64,")
        finally:
            browser.close()


# ------------------------------------------------------------------------------------------------ evaluate


def _one_image_project(path, labels, classes, tags=()):
    meta = ProjectMeta(classes=[ObjClass(t, "rectangle", "#FF0000") for t in classes])
    writer = ProjectWriter(path, meta)
    writer.add_item("ds0", "x.png", np.zeros((4, 6, 3), np.uint8), Annotation(4, 6, labels, list(tags)))
    writer.write_meta()
    return path


def test_evaluate_multilabel_scores_each_class_on_its_own(tmp_path):
    from unetkit.inference.evaluate_multilabel import evaluate_multilabel

    # ground truth: a = columns 0-3, b = columns 2-5 (overlap 2-3), rows 0-2; row 3 neutral
    gt = _one_image_project(tmp_path / "gt", [Label("a", Rectangle(0, 0, 3, 3)), Label("b", Rectangle(2, 0, 5, 3)),
                                              Label("neutral", Rectangle(0, 3, 5, 3))], ["a", "b", "bg", "neutral"])  # fmt: skip
    # prediction: a = columns 0-2, b = columns 2-5 rows 0-1 (a later object must not hide an earlier one)
    pred = _one_image_project(tmp_path / "pred", [Label("a_unet", Rectangle(0, 0, 2, 3)),
                                                  Label("b_unet", Rectangle(2, 0, 5, 1))], ["a_unet", "b_unet"])  # fmt: skip
    result = evaluate_multilabel(gt, pred)
    a, b = (result["pooled"]["per_class"][t] for t in ("a", "b"))
    assert result["classes"] == ["a", "b"] and result["matched"] == {"a": "a_unet", "b": "b_unet"}
    assert (
        a["iou"] == pytest.approx(9 / 12) and a["recall"] == pytest.approx(9 / 12) and a["precision"] == 1.0
    )
    assert b["iou"] == pytest.approx(8 / 12) and b["specificity"] == 1.0
    assert result["pooled"]["mean"]["iou"] == pytest.approx((9 / 12 + 8 / 12) / 2)
    assert result["neutral_pixels"] == 6 and result["roc_auc_per_class"] == {}
    counted = evaluate_multilabel(gt, pred, ignore_neutral=False)["pooled"]["per_class"]["b"]
    assert counted["iou"] == pytest.approx(8 / 16)  # the neutral row counts: b's 4 pixels there are missed
    with pytest.raises(ConfigError, match="probability maps"):
        evaluate_multilabel(gt, pred, sweep_threshold=True)


def test_infer_and_evaluate_overlaps_from_the_cli(trained, tmp_path, capsys):
    from unetkit.cli.main import main

    project, result = trained
    config = tmp_path / "infer.json"
    config.write_text(json.dumps({"model": {}, "mode": {"name": "full_image", "save_probabilities": True}}))
    out = tmp_path / "pred"
    args = [
        "infer",
        "--model",
        str(result.best_checkpoint),
        "--project",
        str(project),
        "--config",
        str(config),
    ]
    assert main([*args, "--out", str(out)]) == 0
    pred = Project.read(out)
    first = next(it for it in pred.items() if it.name == "im7.png").read_annotation(pred.meta)
    masks = {
        lb.class_title: lb.geometry.to_mask(SIZE, SIZE)
        for lb in first.labels
        if lb.class_title.endswith("_unet")
    }
    assert sorted(masks) == ["a_unet", "b_unet"] and (masks["a_unet"] & masks["b_unet"]).any()
    report = tmp_path / "metrics.json"
    capsys.readouterr()
    assert main(["evaluate", "--gt", str(project), "--pred", str(out), "--multilabel", "--sweep-threshold",
                 "--json", str(report)]) == 0  # fmt: skip
    metrics = json.loads(report.read_text())
    assert metrics["multilabel"] and metrics["neutral_pixels"] == 8 * 3 * SIZE
    assert (
        metrics["pooled"]["per_class"]["a"]["iou"] > 0.8 and metrics["pooled"]["per_class"]["b"]["iou"] > 0.8
    )
    assert metrics["roc_auc_per_class"]["a"]["pooled"] > 0.95
    assert 0 < metrics["threshold_sweep_per_class"]["b"]["threshold"] < 1
    printed = capsys.readouterr().out
    assert "ROC-AUC (a)" in printed and "best threshold of b" in printed
