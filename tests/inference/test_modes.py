"""Every inference mode on real (downscaled CHASE DB1) images, with exact expectations."""

import numpy as np
import pytest

from unetkit.errors import ConfigError
from unetkit.inference import Predictor
from unetkit.inference.modes import annotate, build_runner
from unetkit.inference.probabilities import decode_multichannel, read_probability_map
from unetkit.inference.tiling import SlidingWindowError, Window
from unetkit.project import Annotation, Project, Rectangle


@pytest.fixture(scope="module")
def project(chase_project):
    return Project.read(chase_project)


@pytest.fixture(scope="module")
def samples(project):
    items = list(project.items())
    return [(it.read_image(), it.read_annotation(project.meta)) for it in items]


@pytest.fixture(scope="module")
def vessel(vessel_ckpt):
    return Predictor.from_checkpoint(vessel_ckpt)


@pytest.fixture(scope="module")
def rand(random_ckpt):
    return Predictor.from_checkpoint(random_ckpt)


def titles(ann):
    return [lbl.class_title for lbl in ann.labels]


def box(label):
    b = label.geometry.bbox()
    return (b.left, b.top, b.right, b.bottom)


def class_mask(ann, title):
    m = np.zeros((ann.height, ann.width), bool)
    for lbl in ann.labels:
        if lbl.class_title == title:
            lbl.geometry.draw(m, True)
    return m


# ------------------------------------------------------------------ full_image
def test_full_image_default_suffix_keeps_existing_objects(project, samples, rand):
    mode = build_runner(None, project.meta, rand)
    assert [c.title for c in mode.out_meta.classes] == ["vessel", "box", "bg_unet", "vessel_unet"]
    assert [c.shape for c in mode.out_meta.classes[2:]] == ["bitmap", "bitmap"]
    assert [c.color for c in mode.out_meta.classes[2:]] == ["#222222", "#FF0000"]
    for image, ann in samples:
        out = mode.apply(image, ann)
        assert out.labels[:2] == ann.labels  # existing objects first, unchanged
        assert titles(out)[2:] == [t for t in ("bg_unet", "vessel_unet") if t in titles(out)]
        assert len(out.labels) - 2 == len(set(titles(out)[2:]))  # one bitmap per class
        mask = rand.predict(image).mask
        for idx, title in ((0, "bg_unet"), (1, "vessel_unet")):
            np.testing.assert_array_equal(class_mask(out, title), mask == idx)
        assert not out.custom_big_data


def test_full_image_constant_model(project, samples, vessel):
    image, ann = samples[0]
    out = build_runner({"name": "full_image"}, project.meta, vessel).apply(image, ann)
    assert titles(out) == ["vessel", "box", "vessel_unet"]  # bg absent from the prediction → no bg object
    assert box(out.labels[2]) == (0, 0, 99, 95) and out.labels[2].geometry.area() == 96 * 100


def test_filtering_and_renaming(project, samples, rand):
    mode = build_runner(
        {"model_classes": {"save_classes": ["bg"], "add_suffix": "_pred"}}, project.meta, rand
    )
    assert [c.title for c in mode.out_meta.classes] == ["vessel", "box", "bg_pred"]
    image, ann = samples[1]
    out = mode.apply(image, ann)
    assert set(titles(out)[2:]) <= {"bg_pred"}
    np.testing.assert_array_equal(class_mask(out, "bg_pred"), rand.predict(image).mask == 0)
    none = build_runner({"model_classes": {"save_names": []}}, project.meta, rand)
    assert none.out_meta.classes == project.meta.classes
    assert none.apply(image, ann).labels == ann.labels


def test_renamed_class_that_exists_is_an_error(project, rand):
    with pytest.raises(
        ConfigError, match="saved as 'vessel', but a class with that title already exists"
    ) as e:
        build_runner({"name": "roi"}, project.meta, rand)  # roi default suffix is "" → vessel collides
    assert e.value.json_path == "$.mode.model_classes.add_suffix"
    with pytest.raises(ConfigError) as e:
        build_runner({"name": "roi", "save": True, "class_name": "box", "model_classes": {"add_suffix": "_u"}},
                     project.meta, rand)  # fmt: skip
    assert e.value.json_path == "$.mode.class_name"
    with pytest.raises(ConfigError) as e:
        build_runner({"name": "bboxes", "save": True, "add_suffix": "", "model_classes": {"add_suffix": "_u"}},
                     project.meta, rand)  # fmt: skip
    assert e.value.json_path == "$.mode.add_suffix"


# ------------------------------------------------------------------ roi
def test_roi_bounds_inclusive_px_and_percent(project, samples, vessel):
    cfg = {
        "name": "roi",
        "bounds": {"left": "10px", "top": "5%", "right": "0px", "bottom": "20%"},
        "save": True,
        "model_classes": {"add_suffix": "_unet"},
    }
    mode = build_runner(cfg, project.meta, vessel)
    assert [(c.title, c.shape) for c in mode.out_meta.classes][2:] == [
        ("bg_unet", "bitmap"), ("vessel_unet", "bitmap"), ("inference_roi", "rectangle"),
    ]  # fmt: skip
    # 100×96: top = int(96*5/100) = 4, bottom = 96 - int(96*20/100) - 1 = 76, left = 10, right = 99
    assert mode.regions(samples[0][1]) == [Window(4, 10, 73, 90)]
    image, ann = samples[0]
    out = mode.apply(image, ann)
    assert titles(out) == ["vessel", "box", "vessel_unet", "inference_roi"]
    assert box(out.labels[2]) == (10, 4, 99, 76) and out.labels[2].geometry.area() == 73 * 90
    assert out.labels[3].geometry == Rectangle(10, 4, 99, 76)


def test_roi_prediction_is_the_crops(project, samples, rand):
    mode = build_runner({"name": "roi", "bounds": {"left": "3px", "top": "7px", "right": "11px", "bottom": "13px"},
                         "model_classes": {"add_suffix": "_unet"}, "save_probabilities": True}, project.meta, rand)  # fmt: skip
    image, ann = samples[2]
    out = mode.apply(image, ann)
    crop_probs = rand.predict_proba(image[7:83, 3:89])
    full = np.full((96, 100), 255, np.uint8)
    full[7:83, 3:89] = crop_probs.argmax(axis=2)
    for idx, title in ((0, "bg_unet"), (1, "vessel_unet")):
        np.testing.assert_array_equal(class_mask(out, title), full == idx)
    fg = read_probability_map(out.custom_big_data, "vessel_unet", 96, 100)
    np.testing.assert_array_equal(fg[7:83, 3:89], crop_probs[:, :, 1])
    assert (fg[:7] == 0).all() and (fg[:, 89:] == 0).all()
    assert out.custom_big_data["probabilityLabels"][0]["multichannelBitmap"]["origin"] == [3, 7]


def test_roi_negative_bounds_clip_and_empty_roi(project, samples, vessel):
    grow = build_runner({"name": "roi", "bounds": {"left": "-5px", "top": "-10%"}, "model_classes": {"add_suffix": "_u"}},
                        project.meta, vessel)  # fmt: skip
    assert grow.regions(samples[0][1]) == [Window(0, 0, 96, 100)]
    empty = build_runner({"name": "roi", "bounds": {"left": "60%", "right": "50%"}, "model_classes": {"add_suffix": "_u"}},
                         project.meta, vessel)  # fmt: skip
    with pytest.raises(ConfigError, match="ROI is empty"):
        empty.apply(*samples[0])


# ------------------------------------------------------------------ bboxes
def test_bboxes_padding_order_and_kept_source(project, samples, vessel):
    cfg = {
        "name": "bboxes",
        "from_classes": ["box"],
        "padding": {"left": "10%", "top": "5px", "right": "0px", "bottom": "-10%"},
        "save": True,
        "model_classes": {"add_suffix": "_unet"},
    }
    mode = build_runner(cfg, project.meta, vessel)
    added = [(c.title, c.shape, c.color) for c in mode.out_meta.classes[2:]]
    assert added == [("bg_unet", "bitmap", "#222222"), ("vessel_unet", "bitmap", "#FF0000"),
                     ("box_input_bbox", "rectangle", "#00FF00")]  # fmt: skip
    image, ann = samples[0]  # box (20,10)-(39,29): 20×20
    out = mode.apply(image, ann)
    # vessel not selected → kept in place; box → model labels, its padded rectangle, then the box itself
    assert titles(out) == ["vessel", "vessel_unet", "box_input_bbox", "box"]
    assert out.labels[0] == ann.labels[0] and out.labels[3] == ann.labels[1]
    # left 20 - int(20*10/100) = 18, top 10 - 5 = 5, right 39, bottom 29 + int(20*-10/100) = 27
    assert box(out.labels[1]) == (18, 5, 39, 27) and out.labels[1].geometry.area() == 23 * 22
    assert out.labels[2].geometry == Rectangle(18, 5, 39, 27)


def test_bboxes_all_classes_clipped_to_image(project, samples, vessel):
    mode = build_runner({"name": "bboxes", "padding": {"left": "50px", "top": "50px", "right": "50px", "bottom": "50px"},
                         "model_classes": {"add_suffix": "_unet"}}, project.meta, vessel)  # fmt: skip
    image, ann = samples[1]
    out = mode.apply(image, ann)
    assert titles(out) == ["vessel_unet", "vessel", "vessel_unet", "box"]  # save=false: no rectangles
    assert box(out.labels[2]) == (0, 0, 90, 79)  # box (21,10)-(40,29) padded by 50, clipped at 0
    vb = ann.labels[0].geometry.bbox()
    assert box(out.labels[0]) == (
        max(vb.left - 50, 0),
        max(vb.top - 50, 0),
        min(vb.right + 50, 99),
        min(vb.bottom + 50, 95),
    )


# ------------------------------------------------------------------ sliding_window
SW = {"name": "sliding_window", "window": {"width": 48, "height": 40}, "min_overlap": {"x": 8, "y": 0},
      "model_classes": {"add_suffix": "_unet"}}  # fmt: skip


def test_sliding_window_grid_rectangles(project, samples, vessel):
    mode = build_runner({**SW, "save": True}, project.meta, vessel)
    assert (
        mode.out_meta.classes[-1].title == "sliding_window" and mode.out_meta.classes[-1].shape == "rectangle"
    )
    image, ann = samples[0]
    out = mode.apply(image, ann)
    rects = [lbl for lbl in out.labels if lbl.class_title == "sliding_window"]
    # H 96, h 40, stride 40 → tops 0, 40, min(80, 56); W 100, w 48, stride 40 → lefts 0, 40, min(80, 52)
    expected = [(x, y, x + 47, y + 39) for y in (0, 40, 56) for x in (0, 40, 52)]
    assert [box(r) for r in rects] == expected
    assert titles(out) == ["vessel", "box"] + ["sliding_window"] * 9 + ["vessel_unet"]
    assert out.labels[-1].geometry.area() == 96 * 100


@pytest.mark.parametrize("blend", ["constant", "gaussian"])
def test_sliding_window_equals_manual_blending(project, samples, rand, blend):
    from unetkit.inference.tiling import blend_weights

    mode = build_runner(
        {**SW, "blend": blend, "batch_size": 4, "save_probabilities": True}, project.meta, rand
    )
    image, ann = samples[1]
    out = mode.apply(image, ann)
    acc, wsum = np.zeros((96, 100, 2)), np.zeros((96, 100, 1))
    weight = blend_weights(40, 48, blend)[:, :, None]
    for y in (0, 40, 56):
        for x in (0, 40, 52):
            acc[y : y + 40, x : x + 48] += rand.predict_proba(image[y : y + 40, x : x + 48]) * weight
            wsum[y : y + 40, x : x + 48] += weight
    mean = acc / wsum
    sure = np.abs(mean[:, :, 1] - mean[:, :, 0]) > 1e-4
    for idx, title in ((0, "bg_unet"), (1, "vessel_unet")):
        np.testing.assert_array_equal(class_mask(out, title)[sure], (mean.argmax(axis=2) == idx)[sure])
    fg = read_probability_map(out.custom_big_data, "vessel_unet", 96, 100)
    np.testing.assert_allclose(fg, mean[:, :, 1], atol=1e-3)  # stored from the float16 stitching buffer


def test_sliding_window_errors(project, samples, vessel):
    mode = build_runner({**SW, "window": {"width": 101, "height": 40}}, project.meta, vessel)
    with pytest.raises(SlidingWindowError, match="window is larger than source") as e:
        mode.apply(*samples[0])
    assert e.value.json_path == "$.mode.window"


# ------------------------------------------------------------------ probabilities and assembly
def test_full_image_probabilities_round_trip(project, samples, rand):
    mode = build_runner({"save_probabilities": True}, project.meta, rand)
    image, ann = samples[0]
    out = mode.apply(image, ann)
    cbd = Annotation.from_json(out.to_json(), mode.out_meta).custom_big_data  # through JSON
    assert [c["title"] for c in cbd["probabilityClasses"]] == ["bg_unet", "vessel_unet"]
    assert all(c["shape"] == "multichannelBitmap" for c in cbd["probabilityClasses"])
    assert titles(out)[:2] == ["vessel", "box"]  # probability maps are not objects
    probs = rand.predict_proba(image)
    for k, label in enumerate(cbd["probabilityLabels"]):
        data = decode_multichannel(label["multichannelBitmap"]["data"])
        assert data.shape == (96, 100, 1) and data.dtype == np.float32
        np.testing.assert_array_equal(data[:, :, 0], probs[:, :, k])


def test_assemble_hand_made_probabilities(project, rand):
    mode = build_runner({"model_classes": {"add_suffix": "_x"}}, project.meta, rand)
    probs = np.zeros((10, 12, 2), np.float32)
    probs[:, :5, 0] = 0.9
    probs[:, 5:, 1] = 0.8
    out = mode.assemble(Annotation(10, 12), [Window(0, 0, 10, 12)], [probs])
    assert titles(out) == ["bg_x", "vessel_x"]
    assert box(out.labels[0]) == (0, 0, 4, 9) and box(out.labels[1]) == (5, 0, 11, 9)


def test_annotation_size_must_match(project, samples, rand):
    from unetkit.errors import FormatError

    with pytest.raises(FormatError, match="differs from the image size"):
        build_runner(None, project.meta, rand).apply(samples[0][0][:50], samples[0][1])


def test_annotate(samples, vessel):
    image, _ = samples[0]
    out = annotate(vessel, image)
    assert titles(out) == ["vessel_unet"]
    out = annotate(vessel, image, mode={"name": "roi", "bounds": {"top": "50%"}})
    assert titles(out) == ["vessel"] and box(out.labels[0]) == (0, 48, 99, 95)
