"""Shared fixtures. Real data lives in ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()


def require_shared_data(*parts: str) -> Path:
    """Path under ../shared/data; fails when CI=true and it is missing, skips otherwise."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"real data not found: {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data()


@pytest.fixture(scope="session")
def chasedb1_dir() -> Path:
    return require_shared_data("chasedb1")


@pytest.fixture(scope="session")
def sly_samples_dir() -> Path:
    return require_shared_data("sly_samples")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The suite runs 2 xdist workers on 2 cores: one intra-op thread each avoids oversubscription (tiny models
    also run fastest single-threaded)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
