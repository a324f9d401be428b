"""The DTL API: templates, the check (errors with their JSON path, the drawing, the outputs), running a graph."""

from __future__ import annotations

import json

from studio.conftest import VESSELS, RecordingQueue, error_of, task_ended
from unetkit.demo.pipeline import vessels_graph


def test_templates_start_with_the_tutorials_graph(open_client, tmp_path):
    templates = open_client(tmp_path / "ws").get("/api/dtl/templates").json()
    first = templates[0]
    assert first["name"] == "vessels_train" and first["graph"] == vessels_graph()
    assert "vessels → vessels_train" in first["title"]
    assert all(isinstance(t["graph"], list) and t["title"] for t in templates)
    assert len({t["name"] for t in templates}) == len(templates)


def test_check_the_tutorials_graph(vessels_workspace, open_client):
    client = open_client(vessels_workspace)
    for graph in (vessels_graph(), json.dumps(vessels_graph())):  # the array or its JSON text
        result = client.post("/api/dtl/check", json={"graph": graph}).json()
        assert result["ok"] is True and result["errors"] == [] and result["outputs"] == ["vessels_train"]
        assert result["svg"].startswith("<svg") and "flip" in result["svg"]
        titles = {c["title"] for c in result["meta"]["classes"]}
        assert titles == {"vessel", "bg"} and set(result["meta"]["tags"]) == {"train", "val"}


def test_check_errors_name_the_json_path(vessels_workspace, open_client):
    client = open_client(vessels_workspace)
    broken = vessels_graph()
    broken[1]["action"] = "flipp"
    [error] = client.post("/api/dtl/check", json={"graph": broken}).json()["errors"]
    assert error["path"] == "$[1].action" and "flipp" in error["message"]
    broken = vessels_graph()
    broken[5]["settings"]["random_part"]["width"]["max_percent"] = "lots"
    result = client.post("/api/dtl/check", json={"graph": broken}).json()
    assert not result["ok"] and result["errors"][0]["path"].startswith("$[5].settings.random_part")
    result = client.post("/api/dtl/check", json={"graph": '[{"action": '}).json()
    assert result == {"ok": False, "errors": [result["errors"][0]], "svg": None, "outputs": [], "meta": None}
    assert result["errors"][0]["path"] == "$" and "not JSON" in result["errors"][0]["message"]
    other = vessels_graph()
    other[0]["src"] = ["chase/*"]
    result = client.post("/api/dtl/check", json={"graph": other}).json()
    assert not result["ok"] and result["svg"]  # drawn, but its project is not in the workspace
    assert (
        result["errors"][0]["path"] == "$[0].src"
        and "'chase' is not in the workspace" in result["errors"][0]["message"]
    )
    assert error_of(client.post("/api/dtl/check", json={}), 400) == "invalid_input"


def test_run_submits_the_graph_file_and_inputs(vessels_workspace, open_client):
    client = open_client(vessels_workspace, tasks=RecordingQueue())
    task = client.post(
        "/api/dtl/run", json={"graph": vessels_graph(), "out": "vessels_train", "seed": 1}
    ).json()
    graph_file = ".studio/graphs/vessels_train.json"
    assert task["kind"] == "dtl" and task["outputs"] == {"project": "vessels_train", "graph": graph_file}
    assert task["argv"] == [
        "dtl",
        "run",
        graph_file,
        "--input",
        VESSELS,
        "-o",
        "vessels_train",
        "--seed",
        "1",
    ]
    assert json.loads((vessels_workspace / graph_file).read_text()) == vessels_graph()
    broken = vessels_graph()
    broken[1]["action"] = "flipp"
    response = client.post("/api/dtl/run", json={"graph": broken, "out": "x"})
    assert error_of(response, 400) == "invalid_graph" and "$[1].action" in response.json()["detail"]
    assert (
        error_of(client.post("/api/dtl/run", json={"graph": vessels_graph(), "out": VESSELS}), 409)
        == "exists"
    )
    other = vessels_graph()
    other[0]["src"] = ["chase/*"]
    assert error_of(client.post("/api/dtl/run", json={"graph": other, "out": "y"}), 400) == "invalid_graph"


def test_run_the_tutorials_graph_to_a_project(vessels_workspace, open_client):
    client = open_client(vessels_workspace)
    task = client.post(
        "/api/dtl/run", json={"graph": vessels_graph(), "out": "vessels_train", "seed": 0}
    ).json()
    task = task_ended(client, task["id"])
    assert task["state"] == "done", task.get("log")
    summary = client.get("/api/projects/vessels_train").json()["summary"]
    assert summary["images"] == 6 * 44  # (3 flips + 1) sources × (10 crops + 1) per image
    assert {c["title"] for c in summary["classes"]} == {"vessel", "bg"}
