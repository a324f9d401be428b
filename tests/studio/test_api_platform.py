"""The platform endpoints through the real app: workspace, tasks, runs; the token, path refusals, limits, errors."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import APIRouter

from studio.conftest import RUN, error_of, wait_for
from unetkit.cli.main import main
from unetkit.errors import ConfigError, UnetkitError
from unetkit.studio import run_info
from unetkit.studio.app import create_app

ENDED = ("done", "failed", "stopped", "interrupted")


def ended(client, task_id, timeout=120.0):
    def check():
        task = client.get(f"/api/tasks/{task_id}").json()
        return task["state"] in ENDED and task

    return wait_for(check, timeout, f"task {task_id} to end")


# ------------------------------------------------------------------------------------------ workspace, runs
def test_the_workspace_lists_projects_runs_and_running_tasks(trained_workspace, open_client):
    body = open_client(trained_workspace).get("/api/workspace").json()
    assert body["root"] == str(trained_workspace.resolve())
    assert [p["name"] for p in body["projects"]] == ["lemons"]
    assert [r["name"] for r in body["runs"]] == [RUN] and body["tasks_running"] == 0


def test_a_run_summary_and_its_card(trained_workspace, open_client):
    client = open_client(trained_workspace)
    (summary,) = client.get("/api/runs").json()
    assert summary["name"] == RUN and summary["kind"] == "train" and summary["architecture"] == "unet"
    assert [c["title"] for c in summary["classes"]] == ["bg", "fg"] and summary["error"] is None
    assert summary["best_checkpoint"].startswith(f"{RUN}/checkpoints/") and summary["created"] > 0
    run = client.get(f"/api/runs/{RUN}").json()
    assert run["summary"] == summary
    assert run["card"]["unetkit"]["model"] == "unet" and "class_title_to_idx" in run["card"]
    assert run["inference"] is None or isinstance(run["inference"], dict)
    assert run["files"] == {"report": None, "charts": f"{RUN}/charts.png", "onnx": None}
    assert client.get(f"/api/runs/{RUN}/charts.png").content.startswith(b"\x89PNG")


def test_metrics_and_previews_of_a_run(trained_workspace, open_client):
    client = open_client(trained_workspace)
    metrics = client.get(f"/api/runs/{RUN}/metrics").json()
    assert len(metrics["train"]) == 6 and len(metrics["val"]) == 2
    assert {"iteration", "epoch", "loss", "dice", "lr"} <= set(metrics["train"][0])
    assert {"iteration", "epoch", "loss", "dice"} <= set(metrics["val"][-1])
    previews = client.get(f"/api/runs/{RUN}/previews").json()
    assert [p["iteration"] for p in previews] == [3, 6]
    picture = client.get(previews[0]["url"])
    assert picture.headers["content-type"] == "image/png" and picture.content.startswith(b"\x89PNG")
    assert error_of(client.get(f"/api/runs/{RUN}/previews/4.png"), 404) == "not_found"


def test_metrics_are_binned_to_at_most_500_points():
    rows = [{"iteration": i, "epoch": i / 10, "loss": float(i), "dice": None} for i in range(1, 1201)]
    out = run_info.binned(rows, 500)
    assert len(out) == 500 and out[-1]["iteration"] == 1200 and out[0]["dice"] is None
    assert out[0]["loss"] == pytest.approx(1.5) and run_info.binned(rows[:10], 500) == rows[:10]


def test_an_auto_run_shows_its_report_and_latest_fold(tmp_path, trained_run, open_client):
    import shutil

    root = tmp_path / "ws"
    auto = root / "runs" / "auto1"
    shutil.copytree(trained_run, auto / "folds" / "0")
    (auto / "auto-state.json").write_text("{}")
    (auto / "report.html").write_text("<html>report</html>")
    client = open_client(root)
    (summary,) = client.get("/api/runs").json()
    assert summary["kind"] == "auto" and summary["best_checkpoint"] is None
    assert client.get("/api/runs/runs/auto1/report").text == "<html>report</html>"
    assert len(client.get("/api/runs/runs/auto1/metrics").json()["val"]) == 2
    assert client.get("/api/runs/runs/auto1/previews?fold=0").json()[0]["url"].endswith(".png?fold=0")
    assert error_of(client.post("/api/runs/runs/auto1/export"), 409) == "no_checkpoint"


def test_a_train_run_has_no_report_and_a_project_is_not_a_run(trained_workspace, open_client):
    client = open_client(trained_workspace)
    assert error_of(client.get(f"/api/runs/{RUN}/report"), 404) == "not_found"
    assert error_of(client.get("/api/runs/lemons"), 404) == "not_a_run"
    assert error_of(client.get("/api/runs/nothing/here"), 404) == "not_found"


def test_export_and_serve_run_as_tasks(trained_workspace, open_client):
    client = open_client(trained_workspace)
    export = client.post(f"/api/runs/{RUN}/export", json={"opset": 17}).json()
    assert export["kind"] == "export" and export["outputs"] == {"run": RUN, "onnx": f"{RUN}/model.onnx"}
    assert export["argv"] == ["export", "onnx", "--model", RUN, "-o", f"{RUN}/model.onnx", "--opset", "17"]
    served = client.post(f"/api/runs/{RUN}/serve", json={}).json()
    try:
        assert served["kind"] == "serve" and not served["heavy"]
        assert served["outputs"]["url"].startswith("http://")
        state = ended(client, export["id"])["state"]
        assert state == "done", client.get(f"/api/tasks/{export['id']}/log").json()
        assert client.get(f"/api/runs/{RUN}").json()["files"]["onnx"] == f"{RUN}/model.onnx"
        url = served["outputs"]["url"]

        def ready():
            try:
                return httpx.get(url + "readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return client.get(f"/api/tasks/{served['id']}").json()["state"] != "running"

        wait_for(ready, 120, "the model service")
        assert httpx.get(url + "v1/model", timeout=5).json()["architecture"] == "unet"
    finally:  # the service never outlives the test, whatever failed above
        assert client.post(f"/api/tasks/{served['id']}/stop").json()["state"] in ("running", "stopped")
    assert ended(client, served["id"])["state"] == "stopped"


def test_original_and_broken_checkpoints_are_listed(tmp_path, open_client):
    card = {
        "settings": {"input_size": {"width": 64, "height": 64}},
        "out_classes": [{"title": "bg", "color": "#000000", "shape": "bitmap"},
                        {"title": "lemon", "color": "#FFFF00", "shape": "bitmap"}],
        "class_title_to_idx": {"bg": 0, "lemon": 1},
    }  # fmt: skip
    root = tmp_path / "ws"
    for name, text in {"original": json.dumps(card), "broken": "{"}.items():
        (root / "models" / name).mkdir(parents=True)
        (root / "models" / name / "config.json").write_text(text)
        (root / "models" / name / "model.pt").write_bytes(b"")
    client = open_client(root)
    broken, original = client.get("/api/runs").json()
    assert original["kind"] == "original" and original["architecture"] == "unet_v2"
    assert original["best_checkpoint"] == "models/original" and original["classes"][1]["title"] == "lemon"
    assert broken["name"] == "models/broken" and "invalid JSON" in broken["error"]
    assert client.get("/api/runs/models/broken").json()["card"] is None


def test_the_platform_modules_load_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, unetkit.studio.app, unetkit.studio.api.runs, unetkit.studio.api.tasks, unetkit.cli.studio;"
        "print('torch' in sys.modules, 'unetkit.training' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------ tasks
def test_task_endpoints(workspace, open_client, make_queue):
    queue = make_queue(workspace)
    client = open_client(workspace, tasks=queue)
    done = queue.submit("dtl", ["echo", "hi"], title="echo", outputs={"project": "out"})
    long = queue.submit("train", ["sleep"], title="long", resume_argv=["echo", "resumed"])
    assert ended(client, done["id"])["state"] == "done"
    tasks = client.get("/api/tasks").json()
    assert [t["id"] for t in tasks] == [long["id"], done["id"]]
    expected = {"id", "kind", "title", "state", "argv", "created", "started", "ended", "returncode", "outputs",
                "resumable", "error", "progress"}  # fmt: skip
    assert expected <= set(tasks[0])
    log = client.get(f"/api/tasks/{done['id']}/log").json()
    assert "hi" in log["text"] and log["offset"] == len(log["text"].encode())
    assert client.get(f"/api/tasks/{done['id']}/log", params={"offset": log["offset"]}).json()["text"] == ""
    wait_for(lambda: client.get(f"/api/tasks/{long['id']}").json()["state"] == "running")
    assert client.get("/api/workspace").json()["tasks_running"] == 1
    client.post(f"/api/tasks/{long['id']}/stop")
    assert ended(client, long["id"])["state"] == "stopped"
    assert client.post(f"/api/tasks/{long['id']}/resume").json()["state"] == "queued"
    assert ended(client, long["id"])["state"] == "done"
    assert error_of(client.post(f"/api/tasks/{long['id']}/resume"), 409) == "not_resumable"
    assert error_of(client.post(f"/api/tasks/{long['id']}/stop"), 409) == "not_running"
    assert error_of(client.get("/api/tasks/nope"), 404) == "not_found"
    assert error_of(client.get(f"/api/tasks/{done['id']}/log?offset=-1"), 400) == "invalid_input"


# ------------------------------------------------------------------------------------------ guards
@pytest.mark.parametrize(
    "path",
    [
        "%2e%2e/outside",
        "runs/%2e%2e/%2e%2e/outside",
        "%2Fetc/passwd",
        "runs/evil",
        "a%00b",
        "runs%2F..%2F..%2Fx",
    ],
)
def test_names_outside_the_workspace_are_refused(tmp_path, open_client, trained_run, path):
    import shutil

    root = tmp_path / "ws"
    root.mkdir()
    shutil.copytree(trained_run, tmp_path / "outside")
    (root / "runs").mkdir()
    (root / "runs" / "evil").symlink_to(tmp_path / "outside")
    client = open_client(root)
    assert error_of(client.get(f"/api/runs/{path}/metrics"), 403) == "outside_workspace"
    assert client.get("/api/runs").json() == []  # the symlink out is not listed either


def test_the_token_guards_every_request(workspace, open_client):
    client = open_client(workspace, token="s3cret")
    for path in ("/api/workspace", "/docs", "/api/openapi.json", "/anything"):
        assert error_of(client.get(path), 401) == "unauthorized"
    assert error_of(client.get("/api/workspace", headers={"Authorization": "Bearer wrong"}), 401)
    assert client.get("/api/workspace", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/workspace", headers={"X-Studio-Token": "s3cret"}).status_code == 200
    first = client.get("/docs?token=s3cret")
    assert first.status_code == 200 and "studio_token=s3cret" in first.headers["set-cookie"]
    assert client.get("/api/workspace").status_code == 200  # the cookie now carries it
    client.cookies.clear()
    assert client.get("/api/workspace").status_code == 401
    assert open_client(workspace).get("/api/workspace").status_code == 200  # no token: open


def test_a_body_over_the_limit_is_refused(trained_workspace, open_client):
    client = open_client(trained_workspace, max_upload_mb=0.001)
    response = client.post(f"/api/runs/{RUN}/export", content=json.dumps({"x": "y" * 5000}))
    assert error_of(response, 413) == "request_too_large"


def test_errors_are_json_with_one_line_and_no_traceback(trained_workspace, open_client):
    app = create_app(trained_workspace, ui=False)
    router = APIRouter()

    @router.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    @router.get("/bad-input")
    def bad_input():
        raise UnetkitError("no such thing", file="x.json", json_path="$.a")

    @router.get("/bad-config")
    def bad_config():
        raise ConfigError("lr must be > 0", json_path="$.lr")

    app.include_router(router, prefix="/test")
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/test/boom")
        assert error_of(response, 500) == "internal" and "secret internals" not in response.text
        assert client.get("/test/bad-input").json() == {
            "error": "invalid_input",
            "detail": "x.json: $.a: no such thing",
        }
        assert client.get("/test/bad-config").json()["error"] == "invalid_config"
        wrong = client.post(f"/api/runs/{RUN}/export", json={"opset": "seventeen"})
        assert error_of(wrong, 400) == "invalid_input" and "opset" in wrong.json()["detail"]
        assert "\n" not in wrong.json()["detail"]
        assert error_of(client.post(f"/api/runs/{RUN}/serve", json={"port": 0}), 400) == "invalid_input"
        assert error_of(client.post(f"/api/runs/{RUN}/export", json={"other": 1}), 400) == "invalid_input"
        assert error_of(client.get("/api/no/such/endpoint"), 404) == "not_found"


def test_offline_docs(workspace, open_client):
    client = open_client(workspace)
    page = client.get("/docs").text
    assert "/docs-static/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/workspace", "/api/tasks", "/api/tasks/{task_id}/log", "/api/runs/{run}/export"} <= set(
        paths
    )


# ------------------------------------------------------------------------------------------ the command
def test_the_command_binds_with_a_token_off_loopback(tmp_path, monkeypatch, capsys):
    import uvicorn

    from unetkit.studio import app as studio_app

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    build = studio_app.create_app  # NiceGUI mounts once per process: the command's app is built without pages
    monkeypatch.setattr(studio_app, "create_app", lambda *a, **kw: build(*a, **{**kw, "ui": False}))
    root = tmp_path / "new_ws"
    assert main(["studio", str(root), "--host", "0.0.0.0", "--port", "9999"]) == 0
    assert root.is_dir() and calls["host"] == "0.0.0.0" and calls["port"] == 9999
    printed = capsys.readouterr().out
    assert "http://127.0.0.1:9999/?token=" in printed
    token = printed.split("?token=")[1].split()[0]
    assert calls["app"].state.studio.token == token and len(token) >= 16
    calls["app"].state.studio.tasks.close()
    assert main(["studio", str(root), "--port", "9998"]) == 0
    assert calls["app"].state.studio.token is None
    calls["app"].state.studio.tasks.close()
    (tmp_path / "file").write_text("x")
    assert main(["studio", str(tmp_path / "file")]) == 2
    assert "error:" in capsys.readouterr().err


def test_an_unknown_api_path_is_a_json_404(workspace, open_client):
    client = open_client(workspace)
    for method in ("get", "post", "delete"):
        response = client.request(method, "/api/no/such/thing")
        assert response.status_code == 404
        assert response.json() == {
            "error": "not_found",
            "detail": f"no API endpoint {method.upper()} /api/no/such/thing",
        }
