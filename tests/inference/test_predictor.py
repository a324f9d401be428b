import numpy as np
import pytest
from PIL import Image

from unetkit.errors import UnetkitError
from unetkit.inference import Predictor
from unetkit.inference.predictor import argmax, load_image
from unetkit.models.card import ClassMap
from unetkit.models.preprocess import normalize, resize_image

from .helpers import OUT_CLASSES, make_checkpoint


def test_model_classes_from_checkpoint_config():
    classes = ClassMap(out_classes=OUT_CLASSES, class_title_to_idx={"bg": 0, "vessel": 1}).classes
    assert [(c.index, c.title, c.color) for c in classes] == [(0, "bg", "#222222"), (1, "vessel", "#FF0000")]
    # classes missing from out_classes (e.g. neutral) are not output classes
    mapping = {"bg": 0, "vessel": 1, "neutral": 2}
    assert [c.title for c in ClassMap(out_classes=OUT_CLASSES, class_title_to_idx=mapping).classes] == [
        "bg",
        "vessel",
    ]


def test_preprocessing_is_the_training_one(random_ckpt, chase_images):
    p = Predictor.from_checkpoint(random_ckpt)
    img = chase_images[0]
    expected = normalize(resize_image(img, 64, 64, "bicubic"))
    np.testing.assert_array_equal(p.preprocess(img), expected)
    assert p.input_size == (64, 64) and p.resize == "bicubic"


def test_predict_real_image(random_ckpt, chase_images):
    p = Predictor.from_checkpoint(random_ckpt)
    pred = p.predict(chase_images[0])
    assert pred.mask.shape == (96, 100) and pred.mask.dtype == np.uint8
    assert pred.probabilities.shape == (96, 100, 2) and pred.probabilities.dtype == np.float32
    np.testing.assert_allclose(pred.probabilities.sum(axis=2), 1.0, atol=1e-3)
    np.testing.assert_array_equal(pred.mask, pred.probabilities.argmax(axis=2))
    # the probabilities are the softmax of the model output resized back bicubically
    x = p.preprocess(chase_images[0])[None]
    logits = p.backend.logits(x)[0]
    soft = np.exp(logits) / np.exp(logits).sum(axis=0)
    import cv2

    back = cv2.resize(soft.transpose(1, 2, 0), (100, 96), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(pred.probabilities, back, atol=1e-5)


def test_inputs_numpy_pil_path_agree(random_ckpt, chase_images, tmp_path):
    p = Predictor.from_checkpoint(random_ckpt)
    img = chase_images[1]
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    a = p.predict(img).probabilities
    np.testing.assert_array_equal(a, p.predict(Image.fromarray(img)).probabilities)
    np.testing.assert_array_equal(a, p.predict(path).probabilities)
    np.testing.assert_array_equal(a, p.predict(str(path)).probabilities)
    # 8-bit grey stays one channel when loaded; the RGB model sees it as RGB, and RGBA without its alpha
    gray = img[:, :, 0]
    np.testing.assert_array_equal(load_image(gray), gray[:, :, None])
    np.testing.assert_array_equal(
        p.predict(gray).probabilities, p.predict(np.dstack([gray] * 3)).probabilities
    )
    rgba = np.dstack([img, np.full(img.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(p.predict(rgba).probabilities, a)


def test_bad_inputs(random_ckpt):
    p = Predictor.from_checkpoint(random_ckpt)
    with pytest.raises(UnetkitError, match=r"has 6 channel\(s\) \(float32\) but the model takes 3"):
        p.predict(np.zeros((4, 4, 6), np.float32))
    with pytest.raises(UnetkitError, match="float32 pixels, but the model was trained on uint8"):
        p.predict(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(UnetkitError, match=r"has 2 channel\(s\) \(uint8\) but the model takes 3"):
        p.predict(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(UnetkitError, match=r"has 4 channel\(s\) \(uint16\) but the model takes 3"):
        p.predict(np.zeros((4, 4, 4), np.uint16))
    with pytest.raises(UnetkitError, match="shape"):
        load_image(np.zeros((4, 4, 2, 2), np.uint8))
    with pytest.raises(UnetkitError, match="unsupported image type"):
        load_image([[1, 2]])


def test_batch_equals_single(random_ckpt, chase_images):
    p = Predictor.from_checkpoint(random_ckpt)
    batch = p.predict_proba_batch(chase_images + [chase_images[0][:50, :70]])
    for img, probs in zip(chase_images, batch):
        np.testing.assert_allclose(probs, p.predict_proba(img), atol=1e-5)
    assert batch[-1].shape == (50, 70, 2)


def test_constant_head_is_exact(vessel_ckpt, chase_images):
    pred = Predictor.from_checkpoint(vessel_ckpt).predict(chase_images[2])
    assert (pred.mask == 1).all()
    np.testing.assert_allclose(pred.probabilities[:, :, 1], 1 / (1 + np.exp(-3.0)), rtol=1e-5)


def test_flip_tta_averages_the_four_flips(random_ckpt, chase_images):
    plain = Predictor.from_checkpoint(random_ckpt)
    tta = Predictor.from_checkpoint(random_ckpt, tta=True)
    x = plain.preprocess(chase_images[0])[None]
    expected = np.mean(
        [
            plain.forward(x),
            plain.forward(x[:, :, :, ::-1].copy())[:, :, :, ::-1],
            plain.forward(x[:, :, ::-1].copy())[:, :, ::-1],
            plain.forward(x[:, :, ::-1, ::-1].copy())[:, :, ::-1, ::-1],
        ],
        axis=0,
    )
    np.testing.assert_allclose(tta.forward(x), expected, atol=1e-6)
    assert tta.predict(chase_images[0]).mask.shape == (96, 100)


def test_amp_runs_and_mostly_agrees(random_ckpt, chase_images):
    plain = Predictor.from_checkpoint(random_ckpt).predict(chase_images[0])
    amp = Predictor.from_checkpoint(random_ckpt, amp=True).predict(chase_images[0])
    assert amp.probabilities.dtype == np.float32
    assert np.abs(amp.probabilities - plain.probabilities).max() < 0.05


def test_argmax_dtype():
    assert argmax(np.zeros((2, 2, 3), np.float32)).dtype == np.uint8
    assert argmax(np.zeros((2, 2, 300), np.float32)).dtype == np.uint16


def test_unknown_backend_and_missing_checkpoint(random_ckpt, tmp_path):
    with pytest.raises(UnetkitError, match="unknown backend"):
        Predictor.from_checkpoint(random_ckpt, backend="tensorrt")
    with pytest.raises(UnetkitError):
        Predictor.from_checkpoint(tmp_path / "nope")


def test_three_class_checkpoint(tmp_path, chase_images):
    out = [
        {"title": "lemon", "shape": "bitmap", "color": "#FFFF00"},
        {"title": "kiwi", "shape": "bitmap", "color": "#00FF00"},
        {"title": "bg", "shape": "bitmap", "color": "#222222"},
    ]
    ckpt = make_checkpoint(
        tmp_path / "c3", out_classes=out, class_map={"bg": 0, "kiwi": 1, "lemon": 2}, bias=(0.0, 0.0, 2.0)
    )
    p = Predictor.from_checkpoint(ckpt)
    assert [c.title for c in p.classes] == ["bg", "kiwi", "lemon"] and p.num_classes == 3
    assert (p.predict(chase_images[0]).mask == 2).all()
