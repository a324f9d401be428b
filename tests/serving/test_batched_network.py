"""Serving plugs its micro-batcher into the predictor's network seam: every network pass runs in the batch
worker, the predictor object is not copied or patched, and TTA is applied around the batched network."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from unetkit.inference.modes import build_runner
from unetkit.serving.app import create_app
from unetkit.serving.engine import ServingEngine
from unetkit.serving.payloads import decode_index_mask

from .helpers import assert_same_classes, png_bytes, sample_image

IMAGE = sample_image(11)  # 64×48
WINDOWS = {"name": "sliding_window", "window": {"width": 32, "height": 32}, "batch_size": 8}


class CountingBackend:
    """The engine's backend, recording the thread and the batch size of every network pass."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, int]] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append((threading.current_thread().name, int(batch.shape[0])))
        return self.inner.probabilities(batch)


@pytest.fixture
def engine(tiny_checkpoint):
    engine = ServingEngine.load(tiny_checkpoint, device="cpu")
    engine.predictor.backend = CountingBackend(engine.predictor.backend)
    return engine


def served(engine: ServingEngine):
    return TestClient(create_app(engine=engine, max_batch=8, max_wait_ms=2), raise_server_exceptions=False)


def test_every_network_pass_goes_through_the_batcher(engine):
    direct = engine.predictor.predict(IMAGE)
    windows = build_runner(engine._config(WINDOWS), None, engine.predictor).apply(IMAGE).to_json()
    backend = engine.predictor.backend
    backend.calls.clear()
    with served(engine) as client:
        r = client.post("/v1/predict", files={"image": ("x.png", png_bytes(IMAGE), "image/png")})
        mode = {"mode": (None, json.dumps(WINDOWS))}
        files = {"image": ("x.png", png_bytes(IMAGE), "image/png"), **mode}
        ann = client.post("/model/inference", files=files).json()
        stats = client.get("/v1/model").json()["service"]["batching"]
    assert r.status_code == 200
    assert_same_classes(decode_index_mask(r.json()["mask_png"]), direct.probabilities)
    # warm-up (1 item), the image (1 item), the 2×2 windows (two rows of 2) — all in the batch worker
    assert [n for _, n in backend.calls] == [1, 1, 2, 2]
    assert all(thread.startswith("unetkit-batch") for thread, _ in backend.calls)
    assert stats["items"] == 6 and stats["batches"] == 4
    assert "forward" not in vars(engine.predictor)  # a seam, not a patched method
    assert ann == windows


def test_tta_is_applied_around_the_batched_network(engine):
    engine.predictor.tta = True
    direct = engine.predictor.predict(IMAGE)
    backend = engine.predictor.backend
    backend.calls.clear()
    with served(engine) as client:
        r = client.post("/v1/predict", files={"image": ("x.png", png_bytes(IMAGE), "image/png")})
    assert r.status_code == 200
    assert [n for _, n in backend.calls] == [1, 4]  # warm-up, then the image's 4 flips in one batch
    assert_same_classes(decode_index_mask(r.json()["mask_png"]), direct.probabilities)
