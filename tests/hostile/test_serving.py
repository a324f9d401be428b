"""The server answers hostile annotations (bombs, huge numbers) with a 4xx and keeps serving."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from inference.helpers import make_checkpoint

from .builders import META, bitmap, bitmap_bomb_data, polygon
from .runner import peak_mb, reset_peak


def _png(h=48, w=64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from unetkit.serving.app import create_app

    ckpt = make_checkpoint(tmp_path_factory.mktemp("ckpt") / "m")
    app = create_app(ckpt, device="cpu", max_batch=2, max_wait_ms=2, max_upload_mb=1, max_pixels=200_000)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _infer(client, objects):
    ann = {"size": {"height": 48, "width": 64}, "tags": [], "objects": objects}
    files = {
        "image": ("x.png", _png(), "image/png"),
        "annotation": ("a.json", json.dumps(ann).encode(), "application/json"),
        "meta": ("m.json", json.dumps(META).encode(), "application/json"),
    }
    return client.post("/model/inference", files=files)


@pytest.mark.parametrize(
    ("objects", "needle"),
    [
        ([bitmap([0, 0], bitmap_bomb_data())], "30000x30000"),
        ([bitmap([0, 0], bitmap_bomb_data(2000))], "larger than its image"),
        ([polygon([[1, 1], [10**400, 2], [3, 3]])], "out of range"),
        ([bitmap([10**30, 0], bitmap_bomb_data(2))], "out of range"),
    ],
    ids=["bitmap bomb", "bitmap larger than the image", "huge coordinate", "huge origin"],
)
def test_hostile_annotation_is_a_4xx_and_the_server_keeps_serving(client, objects, needle):
    r = _infer(client, objects)
    assert 400 <= r.status_code < 500, r.text
    assert needle in r.json()["detail"] and "$.objects[0]" in r.json()["detail"]
    assert _infer(client, []).status_code == 200
    assert client.get("/v1/model").json()["service"]["internal_errors"] == 0


def test_an_annotation_claiming_a_huge_image_is_refused_before_its_bitmaps_are_decoded(client):
    ann = {
        "size": {"height": 12000, "width": 12000},
        "tags": [],
        "objects": [bitmap([0, 0], bitmap_bomb_data(12000))],
    }
    files = {
        "image": ("x.png", _png(), "image/png"),
        "annotation": ("a.json", json.dumps(ann).encode(), "application/json"),
        "meta": ("m.json", json.dumps(META).encode(), "application/json"),
    }
    reset_peak()
    before = peak_mb()
    r = client.post("/model/inference", files=files)
    assert r.status_code == 400 and "differs from the image size" in r.json()["detail"], r.text
    assert peak_mb() - before < 100  # the 12000² bitmap alone would take 144 MB decoded (576 MB as BGRA)
