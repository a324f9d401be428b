"""The task queue with real subprocesses: states, one heavy task at a time, stop, resume, restart, logs."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio.conftest import kill_group, wait_for
from unetkit.studio.errors import StudioError
from unetkit.studio.task_progress import log_progress, training_progress, whole_characters
from unetkit.studio.tasks import LOG_CHUNK

ENDED = ("done", "failed", "stopped", "interrupted")


def ended(queue, task_id, timeout=60.0):
    return wait_for(
        lambda: (t := queue.get(task_id))["state"] in ENDED and t, timeout, f"task {task_id} to end"
    )


def running(queue, task_id):
    """The task once its process has started and printed its first line."""

    def check():
        task = queue.get(task_id)
        return task["state"] == "running" and queue.log(task_id)["text"].count("\n") >= 2 and task

    return wait_for(check, what=f"task {task_id} to run")


def test_a_task_runs_to_done_with_its_output_in_the_log(make_queue):
    queue = make_queue()
    task = queue.submit("dtl", ["echo", "hello", "studio"], title="say hello", outputs={"project": "out"})
    assert task["state"] == "queued" and task["progress"] is None and task["outputs"] == {"project": "out"}
    done = ended(queue, task["id"])
    assert done["state"] == "done" and done["returncode"] == 0 and done["error"] is None
    assert done["started"] >= done["created"] and done["ended"] >= done["started"]
    assert not done["resumable"]
    assert "hello studio" in queue.log(task["id"])["text"]
    saved = json.loads((queue.state_dir / task["id"] / "task.json").read_text())
    assert saved["state"] == "done" and saved["argv"] == ["echo", "hello", "studio"]


def test_a_failed_task_reports_the_last_error_line(make_queue):
    queue = make_queue()
    task = ended(queue, queue.submit("train", ["fail", "no", "such", "project"], title="t")["id"])
    assert task["state"] == "failed" and task["returncode"] == 2
    assert task["error"] == "error: no such project"


def test_the_real_cli_runs_as_a_task(make_queue):
    queue = make_queue(fake=False)
    ok = queue.submit("import", ["--version"], title="version")
    bad = queue.submit("import", ["project", "info", "missing_project"], title="info")
    assert ended(queue, ok["id"])["state"] == "done"
    assert "unetkit" in queue.log(ok["id"])["text"]
    failed = ended(queue, bad["id"])
    assert failed["state"] == "failed" and "project folder not found" in failed["error"]


def test_one_heavy_task_at_a_time_and_light_ones_at_once(make_queue):
    queue = make_queue()
    first = queue.submit("train", ["sleep"], title="long")
    second = queue.submit("infer", ["echo", "second"], title="waits")
    running(queue, first["id"])
    light = queue.submit("serve", ["sleep"], title="serve", heavy=False)
    running(queue, light["id"])
    assert queue.get(second["id"])["state"] == "queued"
    assert queue.running_count() == 2
    assert queue.stop(first["id"])["state"] == "stopped"
    assert ended(queue, second["id"])["state"] == "done"
    assert queue.stop(light["id"])["state"] == "stopped"
    assert [t["id"] for t in queue.list()] == [light["id"], second["id"], first["id"]]


def test_a_task_after_another_waits_for_it_and_is_stopped_when_it_fails(make_queue):
    queue = make_queue()
    first = queue.submit("infer", ["sleep"], title="infer")
    then = queue.submit("evaluate", ["echo", "evaluated"], title="evaluate", after=first["id"], heavy=False)
    running(queue, first["id"])
    assert queue.get(then["id"])["state"] == "queued"  # light, yet it waits for the task it comes after
    queue.stop(first["id"])
    stopped = ended(queue, then["id"])
    assert stopped["state"] == "stopped" and stopped["started"] is None
    assert stopped["error"] == f"not started: task {first['id']} (infer) ended stopped"
    ok = queue.submit("infer", ["echo", "inferred"], title="infer")
    after_ok = queue.submit("evaluate", ["echo", "evaluated"], title="evaluate", after=ok["id"])
    assert ended(queue, after_ok["id"])["state"] == "done"
    assert queue.get(after_ok["id"])["started"] >= queue.get(ok["id"])["ended"]
    with pytest.raises(StudioError) as info:
        queue.submit("evaluate", ["echo"], title="x", after="no-such-task")
    assert info.value.status == 404


def test_a_dependent_task_survives_a_restart(make_queue, tmp_path):
    queue = make_queue(root=tmp_path / "q")
    first = queue.submit("infer", ["sleep"], title="infer")
    then = queue.submit("evaluate", ["echo", "evaluated"], title="evaluate", after=first["id"])
    running(queue, first["id"])
    queue.close()  # the studio dies: the sleeping task is interrupted at the next start
    again = make_queue(root=tmp_path / "q")
    assert again.get(first["id"])["state"] == "interrupted"
    stopped = ended(again, then["id"])
    assert stopped["state"] == "stopped" and "ended interrupted" in stopped["error"]


def test_stopping_a_queued_task_cancels_it(make_queue):
    queue = make_queue()
    blocker = queue.submit("train", ["sleep"], title="long")
    waiting = queue.submit("train", ["echo", "never"], title="never")
    stopped = queue.stop(waiting["id"])
    assert stopped["state"] == "stopped" and stopped["started"] is None
    queue.stop(blocker["id"])
    assert "never" not in queue.log(waiting["id"])["text"]
    with pytest.raises(StudioError) as info:
        queue.stop(waiting["id"])
    assert info.value.status == 409


def test_a_task_that_ignores_sigterm_is_killed(make_queue):
    queue = make_queue(kill_after_s=0.3)
    task = queue.submit("train", ["stubborn"], title="stubborn")
    running(queue, task["id"])
    queue.stop(task["id"], wait_s=0)
    assert ended(queue, task["id"])["state"] == "stopped"


def test_resume_runs_the_resume_argv_with_the_same_id_and_log(make_queue):
    queue = make_queue()
    task = queue.submit("train", ["fail", "oops"], title="t", resume_argv=["echo", "second", "try"])
    failed = ended(queue, task["id"])
    assert failed["state"] == "failed" and failed["resumable"]
    resumed = queue.resume(task["id"])
    assert resumed["id"] == task["id"] and resumed["state"] == "queued" and resumed["error"] is None
    done = ended(queue, task["id"])
    assert done["state"] == "done" and done["resumed"] == 1
    log = queue.log(task["id"])["text"]
    assert log.index("error: oops") < log.index("----- resumed") < log.index("second try")
    with pytest.raises(StudioError) as info:
        queue.resume(task["id"])
    assert (info.value.status, info.value.code) == (409, "not_resumable")


def test_without_resume_argv_a_task_is_not_resumable(make_queue):
    queue = make_queue()
    task = ended(queue, queue.submit("infer", ["fail", "x"], title="t")["id"])
    assert not task["resumable"]
    with pytest.raises(StudioError):
        queue.resume(task["id"])


def test_after_a_studio_death_a_dead_task_is_interrupted_and_resumes(make_queue, tmp_path):
    marker = tmp_path / "resumed.txt"
    first = make_queue()
    long = first.submit("train", ["sleep"], title="long", resume_argv=["mark", str(marker)])
    queued = first.submit("train", ["echo", "after"], title="queued")
    running(first, long["id"])
    first.close()  # the studio dies: its worker stops, the child goes on ...
    proc = first._procs.pop(long["id"])
    kill_group(proc.pid)  # ... and then dies too
    proc.wait(timeout=10)

    second = make_queue()
    interrupted = second.get(long["id"])
    assert interrupted["state"] == "interrupted" and interrupted["resumable"]
    assert ended(second, queued["id"])["state"] == "done"  # queued work survives the restart
    second.resume(long["id"])
    assert ended(second, long["id"])["state"] == "done" and marker.read_text() == "marked"


def test_a_task_left_running_by_a_dead_studio_is_stopped_on_restart(make_queue):
    first = make_queue()
    task = first.submit("train", ["sleep"], title="orphan", resume_argv=["echo", "again"])
    running(first, task["id"])
    first.close()
    proc = first._procs.pop(task["id"])
    second = make_queue(kill_after_s=5)
    assert second.get(task["id"])["state"] == "interrupted"
    assert proc.wait(timeout=10) != 0  # the orphan was terminated: a resume never runs it twice


def test_tasks_submitted_from_many_threads_all_run(make_queue):
    queue = make_queue()
    ids: list[str] = []
    lock = threading.Lock()

    def submit(n):
        for i in range(5):
            task = queue.submit("dtl", ["echo", f"{n}-{i}"], title=f"{n}-{i}", heavy=i % 2 == 0)
            with lock:
                ids.append(task["id"])

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 20
    assert all(ended(queue, i)["state"] == "done" for i in ids)


def test_the_log_comes_in_bounded_chunks(make_queue):
    queue = make_queue()
    task = ended(queue, queue.submit("dtl", ["count", "30000"], title="many lines")["id"])
    path = queue.state_dir / task["id"] / "log.txt"
    assert path.stat().st_size > LOG_CHUNK
    text, offset = "", 0
    while True:
        chunk = queue.log(task["id"], offset)
        assert len(chunk["text"].encode()) <= LOG_CHUNK
        if chunk["offset"] == offset:
            break
        text, offset = text + chunk["text"], chunk["offset"]
    assert text == path.read_text() and offset == path.stat().st_size
    assert task["progress"] == {"fraction": 1.0, "text": "step 30000/30000"}
    with pytest.raises(StudioError):
        queue.log("no-such-task")


@given(st.text(max_size=40), st.integers(min_value=0, max_value=200))
def test_log_chunks_never_split_a_character(text, cut):
    data = text.encode("utf-8")
    head = whole_characters(data[:cut])
    assert data.startswith(head) and len(data[: min(cut, len(data))]) - len(head) < 4
    head.decode("utf-8")  # whole characters only


def test_progress_is_read_from_log_lines_and_training_metrics(tmp_path):
    assert log_progress(["auto   12.5 s [train] fold 1/5"]) == {"fraction": None, "text": "[train] fold 1/5"}
    assert log_progress(["inference 40% done"])["fraction"] == 0.4
    assert log_progress(["nothing to see"]) is None
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps({"epochs": 4}))
    (run / "metrics.jsonl").write_text(json.dumps({"type": "train", "epoch": 1.0, "iteration": 3}) + "\n")
    assert training_progress(run) == {"fraction": 0.25, "text": "epoch 1.00/4"}
