"""Modern API (/v1), health checks, OpenAPI docs and the static page, through FastAPI's TestClient."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from unetkit.inference.predictor import Predictor
from unetkit.serving.payloads import decode_index_mask

from .helpers import CLASS_TITLE_TO_IDX, annotation_index_mask, png_bytes, sample_image


def upload(img: np.ndarray, name: str = "x.png", fmt: str = "PNG") -> dict:
    return {"image": (name, png_bytes(img, fmt), "application/octet-stream")}


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_model_description(client):
    info = client.get("/v1/model").json()
    assert info["architecture"] == "unet"
    assert info["input_size"] == {"width": 32, "height": 32}
    assert info["in_channels"] == 3 and info["num_classes"] == 3
    assert [(c["index"], c["title"], c["color"]) for c in info["classes"]] == [
        (0, "bg", "#000000"),
        (1, "disc", "#FF3030"),
        (2, "bar", "#2080FF"),
    ]
    assert info["checkpoint"]["epoch"] == 1.0 and info["checkpoint"]["original_supervisely"] is False
    assert info["checkpoint"]["model_options"] == {"base_channels": 4, "depth": 2}
    assert info["service"]["settings"]["max_batch"] == 8


def test_predict_mask_matches_a_direct_predictor_call(client, predictor):
    img = sample_image(7)
    body = client.post("/v1/predict", files=upload(img)).json()
    assert body["format"] == "mask" and (body["width"], body["height"]) == (64, 48)
    mask = decode_index_mask(body["mask_png"])
    direct = predictor.predict(img)
    np.testing.assert_array_equal(mask, direct.mask)
    assert body["class_pixels"] == {t: int((direct.mask == i).sum()) for t, i in CLASS_TITLE_TO_IDX.items()}
    assert body["class_pixels"]["disc"] > 50  # the tiny model really finds the disc
    assert body["time_ms"] > 0 and "probabilities" not in body
    # the PNG is a palette image coloured with the class colours
    with Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))) as png:
        assert png.mode == "P"
        assert png.getpalette()[3:6] == [0xFF, 0x30, 0x30]


def test_predict_annotation_and_probabilities(client, predictor):
    img = sample_image(8)
    r = client.post(
        "/v1/predict", params={"format": "annotation", "probabilities": "true"}, files=upload(img)
    )
    body = r.json()
    assert r.status_code == 200 and body["format"] == "annotation"
    ann = body["annotation"]
    assert ann["size"] == {"height": 48, "width": 64}
    assert {o["classTitle"] for o in ann["objects"]} <= set(CLASS_TITLE_TO_IDX)  # original titles, no suffix
    direct = predictor.predict(img)
    np.testing.assert_array_equal(annotation_index_mask(ann, CLASS_TITLE_TO_IDX), direct.mask)
    assert set(body["probabilities"]) == set(CLASS_TITLE_TO_IDX)
    disc = decode_index_mask(body["probabilities"]["disc"]).astype(np.float64) / 255
    expected = np.clip(direct.probabilities[:, :, 1], 0, 1)
    assert np.abs(disc - expected).max() <= 0.5 / 255 + 1e-6


def test_jpeg_and_rgba_uploads(client, predictor):
    img = sample_image(9)
    assert client.post("/v1/predict", files=upload(img, "x.jpg", "JPEG")).status_code == 200
    rgba = np.dstack([img, np.full(img.shape[:2], 128, np.uint8)])
    body = client.post("/v1/predict", files=upload(rgba)).json()
    np.testing.assert_array_equal(decode_index_mask(body["mask_png"]), predictor.predict(img).mask)


def test_openapi_docs_and_page(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    for path in (
        "/v1/predict",
        "/v1/model",
        "/model/inference",
        "/model/get_out_meta",
        "/healthz",
        "/readyz",
    ):
        assert path in spec["paths"]
    props = spec["paths"]["/model/inference"]["post"]["requestBody"]["content"]["multipart/form-data"][
        "schema"
    ]
    assert set(props["properties"]) == {"image", "annotation", "meta", "mode"}
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="file-input"' in page.text and "static/app.js" in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_onnxruntime_backend_agrees_with_torch(tiny_checkpoint, predictor):
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from unetkit.serving.app import create_app

    from .helpers import assert_same_classes

    app = create_app(tiny_checkpoint, device="cpu", backend="onnxruntime", max_batch=4, max_wait_ms=20)
    images = [sample_image(11 + i) for i in range(6)]
    with TestClient(app) as c:
        info = c.get("/v1/model").json()
        assert info["backend"] == "onnxruntime" and info["device"] == "CPUExecutionProvider"
        with ThreadPoolExecutor(6) as pool:  # concurrent requests: batched ONNX forward passes
            bodies = list(pool.map(lambda im: c.post("/v1/predict", files=upload(im)).json(), images))
        stats = c.get("/v1/model").json()["service"]["batching"]
    assert stats["max_batch_seen"] > 1
    fp32 = Predictor.from_checkpoint(tiny_checkpoint, device="cpu", amp="off")  # ONNX Runtime runs in fp32
    for img, body in zip(images, bodies):
        assert_same_classes(decode_index_mask(body["mask_png"]), fp32.predict_proba(img), tie=1e-3)
