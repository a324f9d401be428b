"""Tasks: long work run as ``python -m unetkit <argv>`` subprocesses, queued, watched and stoppable.

State lives in ``STATE_DIR/<id>/task.json`` (atomic writes) and the output of the process in ``log.txt`` beside
it, so the queue survives a studio restart: tasks recorded as running become ``interrupted`` (a process left
behind is stopped first, so that a resumed task never runs twice), queued ones run. At most one *heavy* task
(training, inference, ...) runs at a time; the others (``serve``) start at once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from unetkit import atomic
from unetkit.studio.errors import StudioError
from unetkit.studio.task_progress import error_line, progress, read_chunk

log = logging.getLogger("unetkit.studio")
STATES = ("queued", "running", "done", "failed", "stopped", "interrupted")
RESUMABLE = ("stopped", "interrupted", "failed")
KILL_AFTER_S = 10.0
LOG_CHUNK = 256 * 1024
POLL_S = 0.1


class TaskQueue:
    """The task queue of a workspace. ``launcher`` is the command before the argv (default
    ``python -m unetkit``; tests give a stand-in); tasks run in ``cwd`` (default: the workspace root)."""

    def __init__(
        self, state_dir, *, python: str = sys.executable, cwd=None, launcher=None, kill_after_s=KILL_AFTER_S
    ):
        self.state_dir = Path(state_dir)
        atomic.make_folder(self.state_dir)
        self.cwd = Path(cwd) if cwd is not None else self.state_dir.parents[1]
        self.launcher = list(launcher) if launcher is not None else [python, "-m", "unetkit"]
        self.kill_after_s = kill_after_s
        self._cond = threading.Condition(threading.RLock())
        self._tasks: dict[str, dict] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._kill_at: dict[str, float] = {}
        self._closed = False
        self._load()
        self._thread = threading.Thread(target=self._work, name="unetkit-studio-tasks", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- public API
    def submit(
        self, kind: str, argv, *, title: str, outputs=None, resume_argv=None, heavy: bool = True,
        after: str | None = None,
    ) -> dict:  # fmt: skip
        """Queue ``unetkit <argv>``; returns the task (state ``queued``). ``after``: a task id this one waits for;
        it starts when that task is done and is stopped when that one ends otherwise (kept across restarts)."""
        task = {
            "id": self._new_id(), "kind": kind, "title": title, "state": "queued",
            "argv": [str(a) for a in argv], "created": None, "started": None, "ended": None,
            "returncode": None, "outputs": dict(outputs or {}), "heavy": bool(heavy), "error": None,
            "resume_argv": None if resume_argv is None else [str(a) for a in resume_argv],
            "resumed": 0, "pid": None, "pid_start": None, "stop_requested": False, "after": after,
        }  # fmt: skip
        with self._cond:
            self._check_open()
            if after is not None:
                self._task(after)  # a StudioError 404 for an unknown id
            latest = max((t["created"] for t in self._tasks.values()), default=0.0)
            task["created"] = max(time.time(), latest + 1e-6)  # strictly increasing: a stable order
            atomic.make_folder(self._dir(task["id"]))
            self._tasks[task["id"]] = task
            self._save(task)
            self._cond.notify_all()
            return self._public(task)

    def list(self) -> list[dict]:
        """Every task, newest first."""
        with self._cond:
            tasks = sorted(self._tasks.values(), key=lambda t: (t["created"], t["id"]), reverse=True)
            return [self._public(t) for t in tasks]

    def get(self, task_id: str) -> dict:
        with self._cond:
            return self._public(self._task(task_id))

    def running_count(self) -> int:
        with self._cond:
            return sum(t["state"] == "running" for t in self._tasks.values())

    def log(self, task_id: str, offset: int = 0) -> dict:
        """``{text, offset}``: at most 256 KiB of the log from byte ``offset``; ``offset`` is where to go on."""
        self.get(task_id)
        if offset < 0:
            raise StudioError(400, "invalid_input", "offset must be >= 0")
        data = read_chunk(self._dir(task_id) / "log.txt", offset, LOG_CHUNK)
        return {"text": data.decode("utf-8", errors="replace"), "offset": offset + len(data)}

    def stop(self, task_id: str, *, wait_s: float = 3.0) -> dict:
        """Cancel a queued task, or SIGTERM a running one's process group (SIGKILL after 10 s); state stopped.

        Waits up to ``wait_s`` for a running process to end, then answers with the task as it is."""
        with self._cond:
            task = self._task(task_id)
            if task["state"] == "queued":
                task.update(state="stopped", ended=time.time())
                self._save(task)
                return self._public(task)
            if task["state"] != "running":
                raise StudioError(409, "not_running", f"task {task_id} is {task['state']}, not running")
            task["stop_requested"] = True
            self._save(task)
            self._signal(task, signal.SIGTERM)
            self._kill_at[task_id] = time.monotonic() + self.kill_after_s
            self._cond.notify_all()
            deadline = time.monotonic() + wait_s
            while task["state"] == "running" and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return self._public(task)

    def resume(self, task_id: str) -> dict:
        """Queue a stopped, interrupted or failed task again with its ``resume_argv`` (same id, same log)."""
        with self._cond:
            self._check_open()
            task = self._task(task_id)
            if task["state"] not in RESUMABLE or task["resume_argv"] is None:
                raise StudioError(409, "not_resumable", f"task {task_id} ({task['state']}) cannot be resumed")
            task.update(state="queued", resumed=task["resumed"] + 1, started=None, ended=None, returncode=None,
                        error=None, pid=None, pid_start=None, stop_requested=False)  # fmt: skip
            self._save(task)
            self._cond.notify_all()
            return self._public(task)

    def wait(self, task_id: str, timeout: float) -> dict:
        """The task once it has ended (or as it is after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            task = self._task(task_id)
            while task["state"] in ("queued", "running") and time.monotonic() < deadline:
                self._cond.wait(min(POLL_S * 5, max(deadline - time.monotonic(), 0.0)))
            return self._public(task)

    def close(self) -> None:
        """Stop the worker thread; running processes go on (they are found interrupted at the next start)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    # ---------------------------------------------------------------- the worker
    def _work(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                try:
                    self._reap()
                    self._escalate()
                    self._start_ready()
                except Exception:  # the worker must survive anything; the task shows the failure
                    log.exception("task worker error")
                self._cond.wait(POLL_S if self._procs else 1.0)

    def _reap(self) -> None:
        for task_id, proc in list(self._procs.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del self._procs[task_id]
            self._kill_at.pop(task_id, None)
            task = self._tasks[task_id]
            state = "stopped" if task["stop_requested"] else ("done" if rc == 0 else "failed")
            task.update(state=state, returncode=rc, ended=time.time(), pid=None, pid_start=None)
            if state == "failed":
                task["error"] = error_line(self._dir(task_id) / "log.txt")
            self._save(task)
            self._cond.notify_all()

    def _escalate(self) -> None:
        now = time.monotonic()
        for task_id, when in list(self._kill_at.items()):
            if now >= when and task_id in self._procs:
                self._signal(self._tasks[task_id], signal.SIGKILL)
                del self._kill_at[task_id]

    def _start_ready(self) -> None:
        heavy_running = any(self._tasks[t]["heavy"] for t in self._procs)
        queued = sorted(
            (t for t in self._tasks.values() if t["state"] == "queued"), key=lambda t: t["created"]
        )
        for task in queued:
            first = self._tasks.get(task.get("after") or "")
            if first is not None and first["state"] != "done":
                if first["state"] in ("queued", "running"):
                    continue  # waits for the task it comes after
                task.update(
                    state="stopped",
                    ended=time.time(),
                    error=f"not started: task {first['id']} ({first['kind']}) ended {first['state']}",
                )
                self._save(task)  # fmt: skip
                self._cond.notify_all()
                continue
            if task["heavy"]:
                if heavy_running:
                    continue
                heavy_running = True
            self._start(task)

    def _start(self, task: dict) -> None:
        argv = task["resume_argv"] if task["resumed"] else task["argv"]
        path = self._dir(task["id"]) / "log.txt"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(path, "ab") as fh:
            head = "----- resumed" if task["resumed"] else "-----"
            fh.write(f"{head} {time.strftime('%Y-%m-%d %H:%M:%S')}: unetkit {' '.join(argv)}\n".encode())
            fh.flush()
            try:
                proc = subprocess.Popen([*self.launcher, *argv], cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            except OSError as exc:
                fh.write(f"error: cannot start the task: {exc}\n".encode())
                task.update(state="failed", started=time.time(), ended=time.time(), error=f"error: {exc}")
                self._save(task)
                return
        self._procs[task["id"]] = proc
        task.update(state="running", started=time.time(), pid=proc.pid, pid_start=_start_time(proc.pid))
        self._save(task)
        self._cond.notify_all()

    # ---------------------------------------------------------------- restart
    def _load(self) -> None:
        for file in sorted(self.state_dir.glob("*/task.json")):
            try:
                task = json.loads(file.read_text(encoding="utf-8"))
                if task.get("id") != file.parent.name or task.get("state") not in STATES:
                    raise ValueError("not a task record")
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable task %s: %s", file, exc)
                continue
            self._tasks[task["id"]] = task
            if task["state"] == "running":
                self._interrupt(task)

    def _interrupt(self, task: dict) -> None:
        """A task that was running when the studio stopped: stop its process if it is still ours and alive."""
        pid = task.get("pid")
        if pid and task.get("pid_start") is not None and _start_time(pid) == task["pid_start"]:
            self._signal(task, signal.SIGTERM)
            deadline = time.monotonic() + self.kill_after_s
            while _start_time(pid) == task["pid_start"] and time.monotonic() < deadline:
                time.sleep(POLL_S)
            if _start_time(pid) == task["pid_start"]:
                self._signal(task, signal.SIGKILL)
        task.update(state="interrupted", ended=time.time(), pid=None, pid_start=None)
        self._save(task)

    # ---------------------------------------------------------------- helpers
    def _public(self, task: dict) -> dict:
        keys = ("id", "kind", "title", "state", "argv", "created", "started", "ended", "returncode", "outputs",
                "error", "heavy", "resumed", "after")  # fmt: skip
        out = {k: task.get(k) for k in keys}
        out["resumable"] = task["resume_argv"] is not None and task["state"] in RESUMABLE
        out["progress"] = (
            progress(task, self._dir(task["id"]) / "log.txt", self.cwd) if task["started"] else None
        )
        return out

    def _task(self, task_id: str) -> dict:
        task = self._tasks.get(task_id)
        if task is None:
            raise StudioError(404, "not_found", f"no task {task_id!r}")
        return task

    def _dir(self, task_id: str) -> Path:
        return self.state_dir / task_id

    def _save(self, task: dict) -> None:
        atomic.write_json(self._dir(task["id"]) / "task.json", task, indent=2)

    def _new_id(self) -> str:
        while True:
            task_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
            if task_id not in self._tasks and not self._dir(task_id).exists():
                return task_id

    def _check_open(self) -> None:
        if self._closed:
            raise StudioError(503, "closed", "the task queue is closed")

    def _signal(self, task: dict, sig: int) -> None:
        try:
            os.killpg(task["pid"], sig)  # start_new_session: the group id is the pid
        except (ProcessLookupError, PermissionError, TypeError):
            pass


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (tells it from a later process with the same id), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after "pid (comm)": state, ppid, ..., starttime at 19
    if len(fields) <= 19 or fields[0] in ("Z", "X"):  # a zombie has ended
        return None
    return fields[19]
