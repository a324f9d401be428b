"""Workspace names: nothing a client sends reaches outside the folder; projects and runs are found."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unetkit.studio.errors import StudioError
from unetkit.studio.workspace import Workspace

SEGMENT = st.sampled_from(["a", "b", ".", "..", "", "link", "x y", "é", "...", ".hidden", "a\\..", "C:"])
NAMES = st.one_of(
    st.lists(SEGMENT, max_size=6).map("/".join),
    st.text(alphabet=st.sampled_from("ab./\\:\x00~ "), max_size=12),
    st.text(max_size=20),
)


@pytest.fixture
def ws(tmp_path) -> Workspace:
    root = tmp_path / "ws"
    (root / "a" / "b").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    (root / "inner").symlink_to(root / "a")
    return Workspace(root)


def refused(fn, *args, **kwargs) -> StudioError:
    with pytest.raises(StudioError) as info:
        fn(*args, **kwargs)
    return info.value


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(NAMES)
def test_resolve_never_leaves_the_workspace(ws, name):
    try:
        path = ws.resolve(name, must_exist=False)
    except StudioError as exc:
        assert exc.status == 403 and exc.code == "outside_workspace"
        return
    assert Path(os.path.realpath(path)).is_relative_to(ws.root)
    parts = name.replace("\\", "/").split("/")
    assert ".." not in parts and "\x00" not in name and not name.startswith(("/", "\\"))
    assert "secret" not in path.parts  # the symlink out is never followed


@pytest.mark.parametrize(
    "name", ["..", "../x", "a/../../x", "a/..", "/etc/passwd", "\\etc", "a\x00b", "link", "link/x", "C:\\x"]
)
def test_refused_names(ws, name):
    assert refused(ws.resolve, name, must_exist=False).status == 403


def test_names_inside_resolve_to_real_paths(ws):
    assert ws.resolve("a/b") == ws.root / "a" / "b"
    assert ws.resolve("inner/b") == ws.root / "a" / "b"  # a symlink that stays inside is fine
    assert ws.resolve("") == ws.resolve(".") == ws.root
    assert ws.resolve("a//./b/") == ws.root / "a" / "b"
    assert ws.rel(ws.root / "a" / "b") == "a/b" and ws.rel(ws.root) == "."
    error = refused(ws.resolve, "a/missing")
    assert (error.status, error.code) == (404, "not_found")
    assert ws.resolve("a/missing", must_exist=False) == ws.root / "a" / "missing"
    (ws.root / "a" / "f.txt").write_text("x")
    assert refused(ws.resolve, "a/f.txt", kind="dir").status == 400
    assert refused(ws.resolve, "a", kind="file").status == 400


def test_new_outputs_must_be_free_names_inside(ws):
    assert ws.new_output("out/project") == ws.root / "out" / "project"
    error = refused(ws.new_output, "a")
    assert (error.status, error.code) == (409, "exists")
    assert refused(ws.new_output, "../a").status == 403
    assert refused(ws.new_output, ".").status == 403
    assert refused(ws.new_output, ".studio/tasks/x").status == 403
    assert ws.new_name("fresh") == "fresh"
    (ws.root / "a-2").mkdir()
    assert ws.new_name("a") == "a-3"


def test_projects_are_folders_with_meta_json_to_depth_two(ws):
    for rel in ["p1", "group/p2", "group/deep/p3", "runs/r", "models/m", ".studio/x", ".hidden/p"]:
        (ws.root / rel).mkdir(parents=True)
        (ws.root / rel / "meta.json").write_text("{}")
    (ws.root / "p1" / "ds").mkdir()
    (ws.root / "p1" / "ds" / "meta.json").write_text("{}")  # inside a project: not another one
    (ws.root / "linked").symlink_to(ws.root / "group" / "p2")
    (ws.root.parent / "outside").mkdir()
    (ws.root.parent / "outside" / "meta.json").write_text("{}")
    (ws.root / "escape").symlink_to(ws.root.parent / "outside")
    assert ws.projects() == ["group/p2", "linked", "p1"]


def test_runs_are_found_under_runs_and_models(ws):
    card = {
        "settings": {"input_size": {"width": 8, "height": 8}},
        "out_classes": [],
        "class_title_to_idx": {},
    }
    layout = {
        "runs/train1/train_config.json": "{}",
        "runs/group/auto1/auto-state.json": "{}",
        "runs/done/checkpoints/best.json": '{"path": "checkpoints/00000001"}',
        "runs/empty/notes.txt": "",
        "models/original/config.json": json.dumps(card),
        "models/original/model.pt": "",
        "models/noweights/config.json": "{}",
        "elsewhere/train_config.json": "{}",
    }
    for rel, text in layout.items():
        (ws.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws.root / rel).write_text(text)
    assert ws.runs() == ["models/original", "runs/done", "runs/group/auto1", "runs/train1"]
