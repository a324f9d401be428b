"""A real `unetkit serve` process (uvicorn on 127.0.0.1) under a bounded concurrent load with malformed requests."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np

from unetkit.serving.payloads import decode_index_mask

from .helpers import (
    CLASS_TITLE_TO_IDX,
    annotation_index_mask,
    assert_same_classes,
    png_bytes,
    sample_image,
)
from .test_bad_input import CHUNKED_HEADERS, chunked_multipart
from .test_limits import png_header_only

TOTAL, CONCURRENCY = 300, 8
SIZES = [(48, 64), (40, 40), (33, 57), (64, 48), (32, 32), (50, 70)]

BAD = [
    ("/v1/predict", {"files": {"image": ("x.png", b"not an image", "image/png")}}),
    ("/v1/predict", {"files": {"image": ("x.png", png_header_only(3000, 3000), "image/png")}}),
    ("/model/inference", {"files": {"image": ("x.png", png_bytes(sample_image(1))[:200], "image/png")}}),
    (
        "/model/inference",
        {"files": {"image": ("x.png", png_bytes(sample_image(1)), "image/png")}, "data": {"mode": "{bad"}},
    ),
    (
        "/model/inference",
        {
            "files": {"image": ("x.png", png_bytes(sample_image(1)), "image/png")},
            "data": {"mode": json.dumps({"name": "nope"})},
        },
    ),
]


def test_bounded_load_with_malformed_requests(server, predictor):
    images = [sample_image(100 + i, h, w) for i, (h, w) in enumerate(SIZES)]
    uploads = [png_bytes(im) for im in images]
    direct = [predictor.predict_proba(im) for im in images]
    model_titles = {f"{t}_model": i for t, i in CLASS_TITLE_TO_IDX.items()}

    async def one(client: httpx.AsyncClient, i: int) -> tuple[str, int, str]:
        if i % 10 == 9:  # 10 % malformed
            path, kwargs = BAD[(i // 10) % len(BAD)]
            r = await client.post(path, **kwargs)
            ok = 400 <= r.status_code < 500 and set(r.json()) == {"error", "detail"}
            return "bad", r.status_code, "" if ok else r.text
        k = i % len(images)
        files = {"image": (f"img{k}.png", uploads[k], "image/png")}
        if i % 2:
            r = await client.post("/v1/predict", files=files)
            if r.status_code != 200:
                return "good", r.status_code, r.text
            assert_same_classes(decode_index_mask(r.json()["mask_png"]), direct[k])
        else:
            r = await client.post("/model/inference", files=files)
            if r.status_code != 200:
                return "good", r.status_code, r.text
            mask = annotation_index_mask(r.json(), model_titles)
            assert (mask >= 0).all()  # every pixel got a class (bg included)
            assert_same_classes(mask, direct[k])
        return "good", r.status_code, ""

    async def run() -> list:
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=server, timeout=60, limits=limits) as client:
            sem = asyncio.Semaphore(CONCURRENCY)

            async def bounded(i):
                async with sem:
                    return await one(client, i)

            return await asyncio.gather(*(bounded(i) for i in range(TOTAL)))

    results = asyncio.run(run())
    assert len(results) == TOTAL
    assert not [r for r in results if r[1] >= 500], "5xx answers"
    bad = [r for r in results if r[0] == "bad"]
    assert len(bad) == TOTAL // 10 and all(not text for _, _, text in bad)
    good = [r for r in results if r[0] == "good"]
    assert all(code == 200 for _, code, _ in good), [t for _, c, t in good if c != 200][:3]

    stats = httpx.get(f"{server}/v1/model").json()["service"]
    assert stats["internal_errors"] == 0
    assert stats["batching"]["max_batch_seen"] > 1  # concurrent requests really shared forward passes
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}


def test_single_request_equals_direct_call_exactly(server, predictor):
    img = sample_image(77, 45, 61)
    r = httpx.post(
        f"{server}/v1/predict", files={"image": ("a.png", png_bytes(img), "image/png")}, timeout=30
    )
    np.testing.assert_array_equal(decode_index_mask(r.json()["mask_png"]), predictor.predict(img).mask)


def test_upload_limits_over_real_http(server):
    big = b"\0" * (21 * 1024 * 1024)  # the server's default limit is 20 MB
    r = httpx.post(f"{server}/v1/predict", files={"image": ("big.png", big, "image/png")}, timeout=60)
    assert r.status_code == 413 and r.json()["error"] == "request_too_large"
    r = httpx.post(
        f"{server}/model/inference", content=chunked_multipart(21), headers=CHUNKED_HEADERS, timeout=60
    )
    assert r.status_code == 413 and r.json()["error"] == "request_too_large"
    assert httpx.get(f"{server}/readyz").status_code == 200


def test_real_supervisely_item_through_the_original_protocol(server, predictor, sly_samples_dir):
    """A real annotated project item (lemons): image + annotation + meta files, bboxes mode, over HTTP."""
    from unetkit.inference.modes import build_runner
    from unetkit.project import Annotation, ProjectMeta
    from unetkit.serving.engine import ServingEngine
    from unetkit.serving.limits import decode_image

    project = sly_samples_dir / "lemons_annotated"
    image_bytes = (project / "ds1" / "img" / "IMG_0748.jpeg").read_bytes()
    ann_bytes = (project / "ds1" / "ann" / "IMG_0748.jpeg.json").read_bytes()
    meta_bytes = (project / "meta.json").read_bytes()
    mode = {
        "name": "bboxes",
        "from_classes": ["lemon"],
        "padding": {"left": "5%", "right": "5%"},
        "save": True,
    }
    files = {
        "image": ("IMG_0748.jpeg", image_bytes, "image/jpeg"),
        "annotation": ("IMG_0748.jpeg.json", ann_bytes, "application/json"),
        "meta": ("meta.json", meta_bytes, "application/json"),
        "mode": ("mode.json", json.dumps(mode).encode(), "application/json"),
    }
    r = httpx.post(f"{server}/model/inference", files=files, timeout=60)
    assert r.status_code == 200, r.text
    got = r.json()

    meta = ProjectMeta.from_json(json.loads(meta_bytes))
    inference_mode = build_runner(ServingEngine(predictor)._config(mode), meta, predictor)
    ann = Annotation.from_json(json.loads(ann_bytes), inference_mode.out_meta)
    image = decode_image(image_bytes, max_pixels=10**7)
    assert got == inference_mode.apply(image, ann).to_json()
    n_lemons = sum(o["classTitle"] == "lemon" for o in got["objects"])
    assert n_lemons >= 1
    assert sum(o["classTitle"] == "lemon_input_bbox" for o in got["objects"]) == n_lemons

    out_meta = httpx.post(
        f"{server}/model/get_out_meta", data={"meta": meta_bytes.decode(), "mode": json.dumps(mode)}
    ).json()
    Annotation.from_json(got, ProjectMeta.from_json(out_meta))
