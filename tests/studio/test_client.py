"""StudioClient / SyncStudioClient: one method per endpoint, JSON error bodies as StudioClientError, the token,
in process (ASGI) and over a real socket."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import httpx
import pytest

from unetkit.ports import free_port
from unetkit.studio.app import create_app
from unetkit.studio.client import StudioClient, StudioClientError, SyncStudioClient

from .conftest import PROJECT, RUN


def run(coro):
    return asyncio.run(coro)


def test_in_process_calls_and_error_bodies(trained_workspace, make_queue):
    app = create_app(trained_workspace, ui=False, tasks=make_queue(trained_workspace))

    async def walk():
        async with StudioClient.in_process(app) as studio:
            ws = await studio.workspace()
            assert ws["root"] == str(trained_workspace.resolve())
            assert PROJECT in [p["name"] for p in ws["projects"]]
            assert [r["name"] for r in await studio.runs()] == [RUN]
            assert (await studio.run(RUN))["summary"]["name"] == RUN
            assert (await studio.run_metrics(RUN))["train"]
            assert await studio.tasks() == []
            with pytest.raises(StudioClientError) as missing:
                await studio.task("nope")
            assert missing.value.status == 404 and missing.value.detail
            with pytest.raises(StudioClientError) as outside:
                await studio.run("/etc")  # absolute (".." is normalised away by the URL)
            assert (outside.value.status, outside.value.code) == (403, "outside_workspace")
            with pytest.raises(StudioClientError) as unknown:
                await studio._call("GET", "/no/such/endpoint")
            assert (unknown.value.status, unknown.value.code) == (404, "not_found")

    run(walk())


def test_an_answer_that_is_not_the_api_json_becomes_one_line():
    page = httpx.MockTransport(lambda request: httpx.Response(404, html="<!doctype html><html>…</html>"))

    async def walk():
        async with StudioClient("http://studio", transport=page) as studio:
            with pytest.raises(StudioClientError) as caught:
                await studio.evaluation("x")
        assert (caught.value.code, caught.value.detail) == (
            "http_404",
            "GET /api/evaluations/x: HTTP 404 Not Found",
        )

    run(walk())


def test_token_header_and_urls(workspace, make_queue):
    app = create_app(workspace, ui=False, token="s3cret", tasks=make_queue(workspace))

    async def walk():
        async with StudioClient.in_process(app) as anonymous:
            with pytest.raises(StudioClientError) as refused:
                await anonymous.workspace()
            assert (refused.value.status, refused.value.code) == (401, "unauthorized")
        async with StudioClient.in_process(app, token="s3cret") as studio:
            assert (await studio.workspace())["projects"]
            assert studio.image_url(PROJECT, "ds 0", "a.png") == (
                f"/api/projects/{PROJECT}/items/ds%200/a.png/image.png?token=s3cret"
            )
        pages = StudioClient.in_process(app, token="s3cret", url_token=False)
        assert (
            pages.layer_url(PROJECT, "ds0", "a.png", "fg")
            == f"/api/projects/{PROJECT}/items/ds0/a.png/layers/fg.png"
        )
        await pages.aclose()

    run(walk())


@pytest.fixture
def served(workspace, make_queue):
    """``(base_url, queue)`` of the studio API on a real socket (uvicorn in a thread)."""
    import uvicorn

    queue = make_queue(workspace)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(workspace, ui=False, tasks=queue), port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", queue
    server.should_exit = True
    thread.join(timeout=10)


def test_sync_client_waits_for_a_task_and_reads_its_log(served):
    base, queue = served
    task = queue.submit("echo", ["echo", "hello", "studio"], title="say hello")
    with SyncStudioClient(base) as studio:
        assert [t["id"] for t in studio.tasks()] == [task["id"]]
        done = studio.wait(task["id"], timeout=30, poll=0.05)
        assert done["state"] == "done"
        assert "hello studio" in studio.task_log(task["id"])["text"]
        with pytest.raises(StudioClientError) as conflict:  # a finished task that succeeded cannot resume
            studio.resume_task(task["id"])
        assert conflict.value.status in (400, 409)


def test_project_dtl_and_training_endpoints(workspace, make_queue):
    app = create_app(workspace, ui=False, tasks=make_queue(workspace))

    async def walk():
        async with StudioClient.in_process(app) as studio:
            assert [p["name"] for p in await studio.projects()] == [PROJECT]
            info = await studio.project(PROJECT)
            assert [c["title"] for c in info["class_stats"]] == ["fg"]
            page = await studio.items(PROJECT, limit=3)
            assert page["total"] == 8 and len(page["items"]) == 3
            first = page["items"][0]
            assert (await studio.image_png(PROJECT, first["dataset"], first["name"]))[:4] == b"\x89PNG"
            assert (await studio.validate(PROJECT))["ok"] is True
            graph = [{"dst": "$a", "src": [f"{PROJECT}/*"], "action": "data", "settings": {"classes_mapping": "default"}},
                     {"dst": "out", "src": ["$a"], "action": "supervisely_typo", "settings": {}}]  # fmt: skip
            checked = await studio.dtl_check(graph)
            assert not checked["ok"] and checked["errors"][0]["path"] == "$[1].action"
            assert "unet" in [m["name"] for m in await studio.train_models()]
            config = await studio.train_defaults(PROJECT)
            assert (await studio.train_check(config))["ok"]
            bad = await studio.train_check({**config, "input_size": {"width": 30, "height": 32}})
            assert bad["errors"][0]["path"] == "$.input_size.width"
            with pytest.raises(StudioClientError) as exists:  # the output must be new
                await studio.dtl_run(graph[:1] + [{**graph[1], "action": "supervisely"}], out=PROJECT)
            assert exists.value.status == 409

    run(walk())


UI_ONCE = """
import sys
from fastapi.testclient import TestClient
from unetkit.studio.app import create_app
from unetkit.studio.ui import install

app = create_app(sys.argv[1])
install(app)  # again, same app: nothing happens
with TestClient(app) as client:
    page = client.get("/tasks")
    assert page.status_code == 200 and "Tasks · unetkit studio" in page.text, page.text[:300]
    assert client.get("/api/tasks").json() == []
try:
    create_app(sys.argv[2])
except RuntimeError as exc:
    print("refused:", exc)
"""


def test_ui_mounts_once_per_process(tmp_path):
    """NiceGUI is global: the pages mount on one app per process, a second app is refused (in a subprocess)."""
    done = subprocess.run([sys.executable, "-c", UI_ONCE, str(tmp_path / "a"), str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "refused: the studio UI is already mounted on another app" in done.stdout
