"""Outputs: a failed command leaves nothing behind."""

from __future__ import annotations

import pytest

from training.conftest import make_project as make_train_project
from training.conftest import tiny_config
from unetkit.errors import UnetkitError


def test_a_training_run_failing_before_its_first_checkpoint_leaves_no_run_folder(tmp_path, monkeypatch):
    from unetkit.training import loop
    from unetkit.training.run import train

    project = make_train_project(tmp_path / "in", n_train=2, n_val=1, size=16)

    def boom(*_args, **_kwargs):
        raise UnetkitError("a broken image", file="in/ds0/img/x.png")

    monkeypatch.setattr(loop, "run_process", boom)
    with pytest.raises(UnetkitError, match="a broken image"):
        train(project, tiny_config(epochs=1), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_resume_removes_what_a_killed_run_left_half_written(tmp_path, monkeypatch):
    from unetkit.training import loop
    from unetkit.training.run import train

    project = make_train_project(tmp_path / "in", n_train=2, n_val=1, size=16)
    run = tmp_path / "run"
    train(project, tiny_config(epochs=1), run, progress=False)
    leftovers = [run / ".metrics.jsonl.ab12.tmp", run / "checkpoints" / ".00000001.cd34.tmp"]
    leftovers[0].write_text("half")
    leftovers[1].mkdir()
    (leftovers[1] / "model.pt").write_bytes(b"half")
    monkeypatch.setattr(loop, "run_process", lambda *a, **k: None)  # only the resume preparation matters
    train(project, None, run, resume=True, progress=False)
    assert not any(p.exists() for p in leftovers)
    assert (run / "checkpoints").is_dir() and (run / "train_config.json").is_file()


def test_a_failed_dtl_run_leaves_no_output(tmp_path, monkeypatch):
    import json

    from unetkit.dtl import executor
    from unetkit.dtl.graph import load_graph

    from .builders import make_project

    make_project(tmp_path / "in")
    graph = tmp_path / "g.json"
    graph.write_text(
        json.dumps(
            [
                {"action": "data", "src": ["in/*"], "dst": "$d", "settings": {"classes_mapping": "default"}},
                {"action": "save", "src": ["$d"], "dst": "out", "settings": {}},
            ]
        )
    )
    projects = executor.load_inputs([str(tmp_path / "in")])
    g = load_graph(graph, {p.name: p.meta for p in projects})

    def fail(out_writer, projects, jobs, results, report, progress):
        for _job, (outputs, _error) in zip(jobs, results):
            for out in outputs:
                out_writer.write(out)  # one item is written, then the run fails
        raise UnetkitError("the disk is full")

    monkeypatch.setattr(executor, "write_results", fail)
    with pytest.raises(UnetkitError, match="disk is full"):
        executor.run_graph(g, projects, tmp_path / "out", seed=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "in"]
