"""An ``auto`` run's progress on disk (``RUN/auto-state.json``), so that ``--resume`` continues after a kill.

The file is rewritten atomically at every phase change: the sessions (start and, for a session that ended or was
killed, its length), the phase reached, whether the plan was given, and each finished fold (its best checkpoint and
the steps it ran). A killed session's length is measured from what it left on disk: the newest modification time
of anything in the run folder, minus the session's start.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unetkit import atomic
from unetkit.errors import ConfigError, FormatError

STATE_FILE = "auto-state.json"
SCRATCH_PREFIXES = (".out-of-fold-", ".probe-")  # scratch folders of a run, removed on resume


@dataclass
class RunState:
    sessions: list[dict] = field(
        default_factory=list
    )  # {"started": epoch seconds, "seconds": length or None}
    phase: str = "plan"
    given_plan: bool = False
    folds: list[dict] = field(default_factory=list)  # finished folds: {"best": path in RUN, "steps": n}
    choices: dict | None = None  # set when the run is complete

    @property
    def seconds_before(self) -> float:
        """Wall-clock seconds of the sessions before this one."""
        return sum(s["seconds"] or 0.0 for s in self.sessions[:-1])

    def write(self, run: Path) -> None:
        atomic.write_json(run / STATE_FILE, asdict(self), indent=2)

    def enter(self, run: Path, phase: str) -> None:
        self.phase = phase
        self.write(run)


def begin(run: Path, resume: bool) -> RunState:
    """The state of a new run (the folder must be new or empty), or of the killed run to resume (``resume``), with
    a new session started now."""
    file = run / STATE_FILE
    if run.exists() and not run.is_dir():
        raise ConfigError("the output folder is a file", file=run)
    has_content = run.is_dir() and any(run.iterdir())
    if has_content and not resume:
        raise ConfigError(
            "the output folder exists and is not empty (add --resume to continue its run)", file=run
        )
    if has_content and not file.is_file():
        raise ConfigError(f"cannot resume: no {STATE_FILE} (not an auto run folder)", file=run)
    if has_content:
        state = _read(file)
        if state.sessions and state.sessions[-1]["seconds"] is None:  # killed: its length from what it wrote
            last = state.sessions[-1]
            last["seconds"] = max(0.0, newest_mtime(run) - last["started"])
        remove_scratch(run)
    else:
        atomic.make_folder(run)
        state = RunState()
    state.sessions.append({"started": time.time(), "seconds": None})
    state.write(run)
    return state


def finish(run: Path, state: RunState, choices: dict) -> None:
    state.choices = choices
    state.sessions[-1]["seconds"] = time.time() - state.sessions[-1]["started"]
    state.enter(run, "done")


def _read(file: Path) -> RunState:
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
        return RunState(**raw)
    except (OSError, ValueError, TypeError) as exc:
        raise FormatError(f"cannot read the run state: {exc}", file=file) from None


def newest_mtime(run: Path) -> float:
    return max((p.stat().st_mtime for p in run.rglob("*") if p.is_file()), default=time.time())


def remove_scratch(run: Path) -> None:
    """What a killed session left half-done: scratch folders, and atomic writes' temporary files."""
    from unetkit.training.run import remove_temporaries

    for path in run.iterdir():
        if path.is_dir() and path.name.startswith(SCRATCH_PREFIXES):
            shutil.rmtree(path, ignore_errors=True)
    remove_temporaries(run)


__all__ = ["STATE_FILE", "RunState", "begin", "finish"]
