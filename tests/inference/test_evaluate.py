"""`unetkit evaluate` against hand-computed figures."""

import json

import numpy as np
import pytest

from unetkit.cli.main import main
from unetkit.errors import ConfigError, FormatError
from unetkit.inference.evaluate import MaskEvaluator, detect_suffix, evaluate_projects
from unetkit.inference.probabilities import add_probabilities, probability_class_json, probability_label_json
from unetkit.project import Annotation, Bitmap, Label, ObjClass, ProjectMeta, ProjectWriter

GT1 = np.array([[0, 0, 1, 1], [0, 1, 1, 2]])  # 2 = neutral
PRED1 = np.array([[0, 1, 1, 0], [0, 1, 1, 1]])
SCORES1 = np.array([[0.1, 0.6, 0.9, 0.4], [0.2, 0.7, 0.8, 0.99]], np.float32)
GT2 = np.zeros((2, 2), int)
PRED2 = np.zeros((2, 2), int)
SCORES2 = np.full((2, 2), 0.3, np.float32)


def test_mask_evaluator_hand_computed():
    ev = MaskEvaluator(["bg", "vessel"], ignore_index=2)
    ev.add(GT1, PRED1, "a", SCORES1)
    ev.add(GT2, PRED2, "b", SCORES2)
    r = ev.result()
    fg, bg = r["pooled"]["per_class"]["vessel"], r["pooled"]["per_class"]["bg"]
    # vessel: TP 3, FP 1, FN 1, TN 2 + 4
    assert fg == pytest.approx(
        {
            "iou": 3 / 5,
            "dice": 6 / 8,
            "precision": 3 / 4,
            "recall": 3 / 4,
            "specificity": 6 / 7,
            "accuracy": 9 / 11,
        }
    )
    # bg: TP 2 + 4, FP 1, FN 1, TN 3
    assert bg == pytest.approx(
        {
            "iou": 6 / 8,
            "dice": 12 / 14,
            "precision": 6 / 7,
            "recall": 6 / 7,
            "specificity": 3 / 4,
            "accuracy": 9 / 11,
        }
    )
    assert r["pooled"]["mean"]["iou"] == pytest.approx((3 / 5 + 6 / 8) / 2)
    # per image: vessel is undefined on image b (no TP/FP/FN) → mean over image a only
    assert r["per_image"]["per_class"]["vessel"]["iou"] == pytest.approx(3 / 5)
    assert r["per_image"]["per_class"]["vessel"]["specificity"] == pytest.approx((2 / 3 + 1) / 2)
    assert r["per_image"]["per_class"]["bg"]["iou"] == pytest.approx((2 / 4 + 1) / 2)
    assert r["pixel_accuracy"] == pytest.approx(9 / 11)
    assert r["confusion_matrix"] == [[6, 1], [1, 3]]
    # ROC-AUC without the neutral pixel: positives .9 .4 .7 .8, negatives .1 .6 .2 .3×4 → 27 of 28 pairs
    assert r["roc_auc"]["pooled"] == pytest.approx(27 / 28)
    assert r["roc_auc"]["per_image"] == pytest.approx(11 / 12)  # image b has one class only → skipped
    only = ev.result(["vessel"])
    assert list(only["pooled"]["per_class"]) == ["vessel"] and only["pooled"]["mean"]["iou"] == pytest.approx(
        0.6
    )


def test_detect_suffix():
    assert detect_suffix(["vessel", "bg"], ["vessel", "bg_unet", "vessel_unet", "box"]) == "_unet"
    assert detect_suffix(["vessel"], ["vessel", "bg"]) == ""
    with pytest.raises(ConfigError, match="--suffix"):
        detect_suffix(["a"], ["a_x", "a_y"])


def _write(path, meta, masks, *, prefix="", probs=None):
    writer = ProjectWriter(path, meta)
    for i, mask in enumerate(masks):
        labels = []
        for value, title in ((1, "vessel"), (2, "neutral"), (0, "bg")):
            bm = Bitmap.from_full_mask(mask == value)
            if bm is not None and meta.get_class(prefix and title + prefix or title):
                labels.append(Label(title + prefix, bm))
        ann = Annotation(*mask.shape, labels)
        if probs is not None:
            ann = ann.clone(custom_big_data=add_probabilities(
                {}, [probability_class_json("vessel_unet", "#FF0000")],
                [probability_label_json("vessel_unet", (0, 0), probs[i])]))  # fmt: skip
        writer.add_item("ds", f"im{i}.png", np.zeros((*mask.shape, 3), np.uint8), ann)


@pytest.fixture
def projects(tmp_path):
    gt_meta = ProjectMeta([ObjClass("vessel", "bitmap"), ObjClass("neutral", "bitmap")])
    _write(tmp_path / "gt", gt_meta, [GT1, GT2])
    pred_meta = ProjectMeta(
        [ObjClass("vessel", "bitmap"), ObjClass("bg_unet", "bitmap"), ObjClass("vessel_unet", "bitmap")]
    )
    _write(tmp_path / "pred", pred_meta, [PRED1, PRED2], prefix="_unet", probs=[SCORES1, SCORES2])
    return tmp_path / "gt", tmp_path / "pred"


def test_evaluate_projects(projects):
    r = evaluate_projects(*projects)
    assert r["suffix"] == "_unet" and r["matched"] == {"bg": "bg_unet", "vessel": "vessel_unet"}
    assert r["images"] == 2
    assert r["pooled"]["per_class"]["vessel"]["iou"] == pytest.approx(3 / 5)
    assert r["pooled"]["per_class"]["bg"]["iou"] == pytest.approx(6 / 8)
    assert r["roc_auc"]["pooled"] == pytest.approx(27 / 28)
    r2 = evaluate_projects(*projects, classes=["vessel"])
    assert list(r2["pooled"]["per_class"]) == ["vessel"]
    with pytest.raises(ConfigError, match="unknown class"):
        evaluate_projects(*projects, classes=["kiwi"])


def test_evaluate_without_suffix_and_missing_items(projects, tmp_path):
    gt, _ = projects
    meta = ProjectMeta([ObjClass("vessel", "bitmap"), ObjClass("bg", "bitmap")])
    _write(tmp_path / "plain", meta, [PRED1, PRED2])
    r = evaluate_projects(gt, tmp_path / "plain")
    assert r["suffix"] == "" and r["pooled"]["per_class"]["vessel"]["iou"] == pytest.approx(3 / 5)
    assert "roc_auc" not in r  # no saved probabilities
    _write(tmp_path / "short", meta, [PRED1])
    with pytest.raises(FormatError, match="ds/im1.png has no prediction"):
        evaluate_projects(gt, tmp_path / "short")


def test_evaluate_cli(projects, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--gt", str(projects[0]), "--pred", str(projects[1]), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "IoU" in text and "vessel" in text and "ROC-AUC" in text and "0.6000" in text
    data = json.loads(out.read_text())
    assert data["pooled"]["per_class"]["vessel"]["dice"] == pytest.approx(0.75)
    assert main(["evaluate", "--gt", str(projects[0]), "--pred", str(projects[1]), "--classes", "nope"]) == 2


def test_neutral_pixels_ignored_or_counted(projects):
    r = evaluate_projects(*projects)
    assert r["ignore_neutral"] is True and r["neutral_pixels"] == 1
    counted = evaluate_projects(*projects, ignore_neutral=False)
    # the neutral pixel (predicted vessel, score .99) becomes background: vessel TP 3, FP 2, FN 1
    assert counted["pooled"]["per_class"]["vessel"]["iou"] == pytest.approx(3 / 6)
    assert counted["pooled"]["per_class"]["vessel"]["precision"] == pytest.approx(3 / 5)
    assert counted["roc_auc"]["pooled"] == pytest.approx(
        27 / 32
    )  # a negative scoring .99 beats all 4 positives


def test_sweep_threshold(projects, tmp_path, capsys):
    # positives .9 .4 .7 .8, negatives .1 .6 .2 .3×4: "≥ t" for t in (.3, .4] finds all 4 with one false
    # positive (.6): Dice 8/9, better than t in (.6, .7] (Dice 6/7) and t ≤ .3 (Dice 8/13)
    sweep = evaluate_projects(*projects, sweep_threshold=True)["threshold_sweep"]
    assert sweep["dice"] == pytest.approx(8 / 9) and sweep["recall"] == 1.0
    low, high = sweep["range"]
    assert 0.3 < low < 0.3001 and 0.3999 < high <= 0.4
    assert sweep["threshold"] == pytest.approx(0.35, abs=1e-4)
    assert main(["evaluate", "--gt", str(projects[0]), "--pred", str(projects[1]), "--sweep-threshold"]) == 0
    assert "best threshold by Dice/F1: 0.3500" in capsys.readouterr().out
    meta = ProjectMeta([ObjClass("vessel", "bitmap"), ObjClass("bg", "bitmap")])
    _write(tmp_path / "plain", meta, [PRED1, PRED2])
    with pytest.raises(ConfigError, match="save_probabilities"):
        evaluate_projects(projects[0], tmp_path / "plain", sweep_threshold=True)


def test_per_item_rows_folders_and_a_threshold(projects):
    r = evaluate_projects(*projects)
    assert r["gt"] == str(projects[0]) and r["pred"] == str(projects[1]) and r["threshold"] is None
    assert [(i["dataset"], i["item"]) for i in r["items"]] == [("ds", "im0.png"), ("ds", "im1.png")]
    assert r["items"][0]["per_class"]["vessel"]["iou"] == pytest.approx(3 / 5)
    assert r["items"][1]["per_class"]["vessel"]["iou"] is None  # no vessel in image b, predicted or true
    # the saved maps cut at 0.35 instead of the predicted objects: the sweep's best Dice (8/9)
    cut = evaluate_projects(*projects, threshold=0.35)
    assert cut["threshold"] == 0.35 and cut["pooled"]["per_class"]["vessel"]["dice"] == pytest.approx(8 / 9)
