"""Admission bound (503 + Retry-After), per-request deadline (504), server faults (500 JSON) — and recovery."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from unetkit.serving.app import create_app
from unetkit.serving.engine import ServingEngine

from .helpers import png_bytes, sample_image

IMAGE = {"image": ("x.png", png_bytes(sample_image(5)), "image/png")}


class SlowEngine:
    """The real engine with a configurable delay per batch and an optional injected fault."""

    def __init__(self, inner: ServingEngine, delay: float = 0.0):
        self.inner = inner
        self.delay = delay
        self.fail = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def forward_batch(self, items):
        time.sleep(self.delay)
        return self.inner.forward_batch(items)

    def predict(self, *args, **kwargs):
        if self.fail:
            raise RuntimeError("injected fault")
        return self.inner.predict(*args, **kwargs)


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    return SlowEngine(ServingEngine.load(tiny_checkpoint, device="cpu"))


def test_full_service_answers_503_with_retry_after(engine):
    app = create_app(engine=engine, max_batch=1, max_wait_ms=0, max_queue=2)
    with TestClient(app, raise_server_exceptions=False) as client:
        engine.delay = 0.5
        try:
            with ThreadPoolExecutor(8) as pool:
                responses = list(pool.map(lambda _: client.post("/v1/predict", files=IMAGE), range(8)))
        finally:
            engine.delay = 0.0
        codes = sorted(r.status_code for r in responses)
        assert set(codes) == {200, 503}
        assert codes.count(200) >= 2
        for r in responses:
            if r.status_code == 503:
                assert r.json()["error"] == "overloaded"
                assert int(r.headers["retry-after"]) >= 1
        assert client.post("/v1/predict", files=IMAGE).status_code == 200
        assert client.get("/v1/model").json()["service"]["rejected"] == codes.count(503)


def test_slow_request_times_out_with_504_and_service_recovers(engine):
    app = create_app(engine=engine, max_batch=2, max_wait_ms=0, timeout_s=0.2)
    with TestClient(app, raise_server_exceptions=False) as client:
        engine.delay = 1.0
        try:
            r = client.post("/v1/predict", files=IMAGE)
        finally:
            engine.delay = 0.0
        assert r.status_code == 504 and r.json()["error"] == "timeout"
        assert "0.2 s" in r.json()["detail"]
        time.sleep(1.2)  # the batch that was already running finishes
        assert client.post("/v1/predict", files=IMAGE).status_code == 200
        service = client.get("/v1/model").json()["service"]
        assert service["inflight"] == 0 and service["internal_errors"] == 0


def test_abandoned_request_stops_using_the_model(engine):
    """A sliding window of 48 windows (6 batches of 8, 0.3 s each) abandoned after 0.5 s stops early."""
    import json

    app = create_app(engine=engine, max_batch=8, max_wait_ms=0, timeout_s=0.5)
    mode = {"name": "sliding_window", "window": {"width": 8, "height": 8}}
    with TestClient(app, raise_server_exceptions=False) as client:
        before = client.get("/v1/model").json()["service"]["batching"]["items"]
        engine.delay = 0.3
        try:
            started = time.monotonic()
            r = client.post("/model/inference", files=IMAGE, data={"mode": json.dumps(mode)})
            assert r.status_code == 504
            while client.get("/v1/model").json()["service"]["inflight"]:
                time.sleep(0.05)
            elapsed = time.monotonic() - started
        finally:
            engine.delay = 0.0
        items = client.get("/v1/model").json()["service"]["batching"]["items"] - before
    assert items < 48 and elapsed < 1.6  # all 48 windows would take 1.8 s


def test_server_fault_is_a_json_500_and_counted(engine):
    app = create_app(engine=engine, max_batch=2)
    with TestClient(app, raise_server_exceptions=False) as client:
        engine.fail = True
        try:
            r = client.post("/v1/predict", files=IMAGE)
        finally:
            engine.fail = False
        assert r.status_code == 500
        assert r.json() == {"error": "internal_error", "detail": "RuntimeError: injected fault"}
        assert client.get("/v1/model").json()["service"]["internal_errors"] == 1
        assert client.post("/v1/predict", files=IMAGE).status_code == 200


def test_not_ready_before_startup(engine):
    app = create_app(engine=engine)
    client = TestClient(app, raise_server_exceptions=False)  # no `with`: the lifespan has not run
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["error"] == "not_ready"
    r = client.post("/v1/predict", files=IMAGE)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"


def test_pil_limit_is_set_while_serving_and_restored(engine):
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    app = create_app(engine=engine, max_pixels=1234)
    with TestClient(app):
        assert Image.MAX_IMAGE_PIXELS == 1234
    assert Image.MAX_IMAGE_PIXELS == before
