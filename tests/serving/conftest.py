"""Serving fixtures: the tiny checkpoint, a direct Predictor, a TestClient on the app."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .helpers import build_tiny_checkpoint, one_torch_thread, serve_process


@pytest.fixture(scope="module", autouse=True)
def _single_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module", autouse=True)
def _pil_limit_untouched():
    """A running app sets PIL's process-wide MAX_IMAGE_PIXELS and must restore it when it stops."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = before


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Built once per test run; pytest-xdist workers share it (the first one builds, the others wait)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run only
    path = root / "serving-tiny-checkpoint"
    lock = root / "serving-tiny-checkpoint.lock"
    deadline = time.monotonic() + 300
    while not (path / "model.pt").exists():
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited too long for {path}") from None
            time.sleep(0.2)
            continue
        try:
            if not (path / "model.pt").exists():
                build_tiny_checkpoint(path)  # written under a temporary name, then renamed
        finally:
            os.close(fd)
            lock.unlink()
    return path


@pytest.fixture(scope="session")
def predictor(tiny_checkpoint):
    from unetkit.inference.predictor import Predictor

    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu", backend="torch")


@pytest.fixture(scope="module")
def client(tiny_checkpoint):
    from fastapi.testclient import TestClient

    from unetkit.serving.app import create_app

    app = create_app(
        tiny_checkpoint, device="cpu", max_batch=8, max_wait_ms=2, max_upload_mb=1, max_pixels=200_000
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def server(tiny_checkpoint):
    """A real `unetkit serve` process on 127.0.0.1 (shared by the load and browser tests)."""
    flags = ("--max-batch", "8", "--max-wait-ms", "5", "--max-pixels", "1000000")
    with serve_process(tiny_checkpoint, *flags) as url:
        yield url
