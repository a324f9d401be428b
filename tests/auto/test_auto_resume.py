"""``auto --resume`` after a SIGKILL of a real child process at each stage: probe, inside a fold, between folds,
selection, report. Each resumed run is complete, leaves no temporary files, never trains a finished fold again,
states the time before and after the kill, and gives the masks of an uninterrupted run of the same plan."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from unetkit.auto.fingerprint import fingerprint
from unetkit.auto.plan import Network, Plan, Selection
from unetkit.auto.state import STATE_FILE
from unetkit.cli.main import main
from unetkit.inference.predictor import Predictor
from unetkit.project import Project

from .test_auto_run import make_project

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")
CHILD = """
import os, signal, sys
import unetkit
project, out, plan, target, resume = sys.argv[1:6]

def on_phase(name):
    if name == target:
        os.kill(os.getpid(), signal.SIGKILL)

unetkit.auto(project, out, plan=plan or None, budget="30s", folds=2, progress=False, resume=resume == "1",
             on_phase=on_phase)
"""


def child(project: Path, out: Path, plan: Path | None, *, kill_at: str = "", resume: bool = False):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable,
        "-c",
        CHILD,
        str(project),
        str(out),
        str(plan or ""),
        kill_at,
        "1" if resume else "0",
    ]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finished(proc, timeout: float = 300) -> int:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode


def kill_when(proc, ready, timeout: float = 300) -> None:
    """SIGKILL ``proc`` from outside as soon as ``ready()`` holds."""
    end = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()}"
        assert time.time() < end, "the stage never came"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert finished(proc) == -signal.SIGKILL


def val_records(metrics: Path) -> int:
    if not metrics.is_file():
        return 0
    return sum(1 for line in metrics.read_text().splitlines() if '"type": "val"' in line)


def assert_complete(run: Path) -> None:
    state = json.loads((run / STATE_FILE).read_text())
    assert (
        state["phase"] == "done"
        and (run / "report.html").is_file()
        and (run / "model" / "model.pt").is_file()
    )
    leftovers = [
        p
        for p in run.rglob("*")
        if p.name.startswith((".probe-", ".out-of-fold-")) or p.name.endswith(".tmp")
    ]
    assert not leftovers, leftovers
    assert len(state["sessions"]) == 2 and all(s["seconds"] > 0 for s in state["sessions"])
    html = (run / "report.html").read_text()
    assert "before the kill" in html and "after the kill" in html


def masks(run: Path, project: Path) -> list[np.ndarray]:
    predictor = Predictor.from_checkpoint(run, amp="off")
    return [predictor.predict(item.read_pixels()).mask for item in list(Project.read(project).items())[:3]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A project, a plan with fixed steps (so that runs are comparable), and its uninterrupted run."""
    root = tmp_path_factory.mktemp("resume")
    project = make_project(root / "project", n=6)
    plan = Plan(
        budget_s=60,
        fingerprint=fingerprint(project),
        network=Network(model_options={"base_channels": 8, "depth": 3}),
        patch=64,
        batch_size=4,
        iterations=12,
        validations=2,
        folds=2,
        selection=Selection(thresholds=[0.3, 0.5, 0.7], min_sizes=[0, 8], try_tta=False),
        time_s={"train": 600.0, "select": 30.0, "report": 10.0},  # no deadline cuts a fold short
    )
    plan.write(root / "plan.json")
    assert finished(child(project, root / "reference", root / "plan.json")) == 0
    return project, root / "plan.json", masks(root / "reference", project)


@pytest.mark.parametrize("stage", ["inside a fold", "fold 1", "select", "report"])
def test_a_kill_then_resume_gives_the_uninterrupted_run(setup, stage, tmp_path):
    project, plan, expected = setup
    run = tmp_path / "run"
    if stage == "inside a fold":  # after fold 0's first checkpoint, before its second
        kill_when(child(project, run, plan), lambda: val_records(run / "folds" / "0" / "metrics.jsonl") >= 1)
    else:
        assert finished(child(project, run, plan, kill_at=stage)) == -signal.SIGKILL
    fold0 = run / "folds" / "0" / "metrics.jsonl"
    before = hashlib.sha256(fold0.read_bytes()).hexdigest() if stage != "inside a fold" else None
    assert finished(child(project, run, plan, resume=True)) == 0
    assert_complete(run)
    if before is not None:  # fold 0 had finished: never trained again
        assert hashlib.sha256(fold0.read_bytes()).hexdigest() == before
    got = masks(run, project)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_a_kill_in_the_probe_then_resume_completes(tmp_path):
    project = make_project(tmp_path / "project", n=6)
    run = tmp_path / "run"
    kill_when(child(project, run, None), lambda: any(run.glob(".probe-*/run/metrics.jsonl")))
    assert not (run / "plan.json").exists()
    assert finished(child(project, run, None, resume=True)) == 0
    assert_complete(run)


def test_resume_needs_an_auto_run_and_a_new_run_an_empty_folder(tmp_path, capsys):
    project = make_project(tmp_path / "project", n=4)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    assert (
        main(["auto", str(project), "--out", str(tmp_path / "busy"), "--budget", "30s", "--no-progress"]) == 2
    )
    assert "add --resume" in capsys.readouterr().err
    args = ["auto", str(project), "--out", str(tmp_path / "busy"), "--resume", "--no-progress"]
    assert main(args) == 2
    assert "not an auto run folder" in capsys.readouterr().err
