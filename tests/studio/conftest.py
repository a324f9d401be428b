"""Shared studio fixtures: tiny workspaces (a project, optionally a trained run) and task queues.

``make_workspace(tmp_path, run=...)`` is importable (``from studio.conftest import make_workspace``); the
``workspace`` / ``trained_workspace`` fixtures call it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from training.conftest import make_project, tiny_config
from unetkit.studio.tasks import TaskQueue

FAKE_CLI = Path(__file__).with_name("fake_unetkit.py")
PROJECT = "lemons"
RUN = "runs/tiny"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A tiny trained run (2 epochs of a 2-level UNet on 32×32 images: seconds), trained once per session."""
    from unetkit.training import train

    root = tmp_path_factory.mktemp("studio_run")
    project = make_project(root / PROJECT)
    train(project, tiny_config(), root / "run", progress=False, quiet=True)
    return root / "run"


def make_workspace(tmp_path: Path, *, run: Path | None = None) -> Path:
    """``tmp_path/ws`` with the project ``lemons`` (8 images, class ``fg``) and, given ``run``, a copy of it
    at ``runs/tiny``."""
    root = tmp_path / "ws"
    make_project(root / PROJECT)
    if run is not None:
        shutil.copytree(run, root / RUN)
    return root


@pytest.fixture
def workspace(tmp_path) -> Path:
    return make_workspace(tmp_path)


@pytest.fixture
def trained_workspace(tmp_path, trained_run) -> Path:
    return make_workspace(tmp_path, run=trained_run)


@pytest.fixture
def make_queue(tmp_path):
    """``make_queue(root=None, fake=True)``: a TaskQueue on ``root/.studio/tasks``; with ``fake`` its tasks run
    ``fake_unetkit.py`` instead of unetkit. Every queue is closed and its processes killed at the end."""
    queues: list[TaskQueue] = []

    def make(root: Path | None = None, *, fake: bool = True, **kwargs) -> TaskQueue:
        root = root or tmp_path / "ws"
        launcher = [sys.executable, str(FAKE_CLI)] if fake else None
        queue = TaskQueue(root / ".studio" / "tasks", launcher=launcher, **kwargs)
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        queue.close()
        for proc in list(queue._procs.values()):
            kill_group(proc.pid)
            proc.wait(timeout=10)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll ``predicate()`` until it returns something truthy (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def open_client():
    """``open_client(root, **create_app_kwargs)``: a started ``TestClient`` of the studio (``ui=False`` unless
    given), closed at the end (which closes its task queue)."""
    from fastapi.testclient import TestClient

    from unetkit.studio.app import create_app

    clients = []

    def make(root: Path, *, raise_server_exceptions: bool = True, **kwargs) -> TestClient:
        kwargs.setdefault("ui", False)
        client = TestClient(create_app(root, **kwargs), raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


# ------------------------------------------------------------------------------------------ data (projects, DTL,
# training, testing): the tutorial's synthetic vessels project and the multi-class lemons sample
VESSELS = "vessels"
ENDED = ("done", "failed", "stopped", "interrupted")


def write_vessels(root: Path, name: str = VESSELS, n: int = 6, size: int = 64) -> Path:
    """``root/name``: the tutorial's synthetic vessels project (``n`` images, class ``vessel``, dataset ds0)."""
    from unetkit.demo.pipeline import write_sample_project

    write_sample_project(root / name, "fundus", list(range(1, n + 1)), size=size)
    return root / name


@pytest.fixture
def vessels_workspace(tmp_path) -> Path:
    """``tmp_path/ws`` holding the project ``vessels`` (6 synthetic 64×64 fundus images)."""
    root = tmp_path / "ws"
    write_vessels(root)
    return root


@pytest.fixture
def lemons_workspace(tmp_path, sly_samples_dir) -> Path:
    """``tmp_path/ws`` holding a copy of the multi-class sample ``lemons`` (kiwi, lemon); fails on CI when the
    shared data is missing, skips elsewhere."""
    root = tmp_path / "ws"
    shutil.copytree(sly_samples_dir / "lemons_annotated", root / "lemons")
    return root


def task_ended(client, task_id: str, timeout: float = 180.0) -> dict:
    """Poll ``/api/tasks/{id}`` until the task ended; its Task JSON (with its log on failure, for asserts)."""

    def check():
        task = client.get(f"/api/tasks/{task_id}").json()
        return task["state"] in ENDED and task

    task = wait_for(check, timeout, f"task {task_id} to end")
    if task["state"] != "done":
        task["log"] = client.get(f"/api/tasks/{task_id}/log").json()["text"]
    return task


class RecordingQueue:
    """A stand-in task queue: records what is submitted (the argv a task would run)."""

    def __init__(self):
        self.submitted = []
        self._closed = False

    def submit(self, kind, argv, *, title, outputs=None, resume_argv=None, heavy=True, after=None):
        task = {"id": f"t{len(self.submitted)}", "kind": kind, "argv": list(argv), "title": title,
                "outputs": dict(outputs or {}), "resume_argv": resume_argv, "heavy": heavy, "state": "queued",
                "after": after}  # fmt: skip
        self.submitted.append(task)
        return task

    def get(self, task_id):
        return next(t for t in self.submitted if t["id"] == task_id)

    def wait(self, task_id, timeout):
        time.sleep(min(timeout, 0.2))  # nothing runs: the task stays as it is
        return self.get(task_id)

    def stop(self, task_id):
        self.get(task_id)["state"] = "stopped"
        return self.get(task_id)

    def running_count(self):
        return 0

    def close(self):
        self._closed = True


def error_of(response, status: int) -> str:
    """The error code of an API error answer, after checking its status and its one-message JSON body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and "Traceback" not in body["detail"]
    return body["error"]
