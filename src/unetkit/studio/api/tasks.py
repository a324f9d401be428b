"""Task endpoints: list, one task, its log, stop, resume (the queue is :mod:`unetkit.studio.tasks`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from unetkit.studio.context import Studio, get_studio

router = APIRouter(tags=["tasks"])


@router.get("/tasks", summary="every task, newest first")
def list_tasks(studio: Studio = Depends(get_studio)) -> list[dict]:
    return studio.tasks.list()


@router.get("/tasks/{task_id}", summary="one task")
def get_task(task_id: str, studio: Studio = Depends(get_studio)) -> dict:
    return studio.tasks.get(task_id)


@router.get("/tasks/{task_id}/log", summary="the task's output from byte `offset` (at most 256 KiB)")
def task_log(task_id: str, offset: int = Query(0, ge=0), studio: Studio = Depends(get_studio)) -> dict:
    return studio.tasks.log(task_id, offset)


@router.post("/tasks/{task_id}/stop", summary="cancel a queued task or stop a running one")
def stop_task(task_id: str, studio: Studio = Depends(get_studio)) -> dict:
    return studio.tasks.stop(task_id)


@router.post("/tasks/{task_id}/resume", summary="queue a stopped, interrupted or failed task again")
def resume_task(task_id: str, studio: Studio = Depends(get_studio)) -> dict:
    return studio.tasks.resume(task_id)
