"""A thin Python client of the studio's JSON API: one method per endpoint, errors as :class:`StudioClientError`.

``StudioClient`` is async (what the pages use, in process through ``httpx.ASGITransport``);
``SyncStudioClient`` has the same methods, blocking, for scripts::

    with SyncStudioClient("http://127.0.0.1:8765", token="...") as studio:
        task = studio.import_masks(images="raw/img", masks="raw/masks", out="vessels")
        studio.wait(task["id"])
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote, urlencode

import httpx

FINISHED = ("done", "failed", "stopped", "interrupted")
IN_PROCESS_URL = "http://studio"


class StudioClientError(Exception):
    """An error answer of the API: ``code`` (e.g. ``invalid_config``), ``detail`` (one line), HTTP ``status``."""

    def __init__(self, code: str, detail: str, status: int = 0) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.status = code, detail, status


def _q(name: str) -> str:
    """A workspace-relative name in a URL path (``/`` kept: runs and datasets may nest)."""
    return quote(str(name), safe="/")


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    code, detail = f"http_{response.status_code}", ""
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
            code, detail = str(body.get("error", code)), str(body.get("detail", ""))
        except (ValueError, AttributeError):
            pass
    if not detail:  # not the API's JSON error body (e.g. a path the API does not have)
        detail = f"{response.request.method} {response.request.url.path}: HTTP {response.status_code} {response.reason_phrase}"
    raise StudioClientError(code, detail, response.status_code)


class _Endpoints:
    """The endpoint table; ``_call`` / ``_bytes`` are the transport (async or blocking)."""

    def __init__(self, token: str | None, url_token: bool = True) -> None:
        self.token, self.url_token = token, url_token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _call(
        self, method: str, path: str, *, json: Any = None, params: dict | None = None, files=None, data=None
    ):
        raise NotImplementedError

    def _bytes(self, path: str):
        raise NotImplementedError

    def url(self, path: str, **params: Any) -> str:
        """A URL path (``/api/...``) of a GET endpoint (images, report) for a browser, with ``?token=`` unless
        ``url_token`` is false (the studio's pages: the browser holds the token cookie)."""
        query = {k: v for k, v in params.items() if v is not None}
        if self.token and self.url_token:
            query["token"] = self.token
        return f"/api{path}" + (f"?{urlencode(query)}" if query else "")

    # workspace and tasks
    def workspace(self):
        return self._call("GET", "/workspace")

    def tasks(self):
        return self._call("GET", "/tasks")

    def task(self, task_id: str):
        return self._call("GET", f"/tasks/{_q(task_id)}")

    def task_log(self, task_id: str, offset: int = 0):
        return self._call("GET", f"/tasks/{_q(task_id)}/log", params={"offset": offset})

    def stop_task(self, task_id: str):
        return self._call("POST", f"/tasks/{_q(task_id)}/stop")

    def resume_task(self, task_id: str):
        return self._call("POST", f"/tasks/{_q(task_id)}/resume")

    # runs and models
    def runs(self):
        return self._call("GET", "/runs")

    def run(self, run: str):
        return self._call("GET", f"/runs/{_q(run)}")

    def run_metrics(self, run: str):
        return self._call("GET", f"/runs/{_q(run)}/metrics")

    def run_previews(self, run: str):
        return self._call("GET", f"/runs/{_q(run)}/previews")

    def preview_url(self, run: str, iteration: int) -> str:
        return self.url(f"/runs/{_q(run)}/previews/{iteration}.png")

    def report_url(self, run: str) -> str:
        return self.url(f"/runs/{_q(run)}/report")

    def export_onnx(self, run: str, opset: int | None = None):
        return self._call("POST", f"/runs/{_q(run)}/export", json={} if opset is None else {"opset": opset})

    def serve(self, run: str, port: int | None = None):
        return self._call("POST", f"/runs/{_q(run)}/serve", json={} if port is None else {"port": port})

    # projects
    def projects(self):
        return self._call("GET", "/projects")

    def project(self, project: str):
        return self._call("GET", f"/projects/{_q(project)}")

    def items(self, project: str, dataset: str | None = None, offset: int = 0, limit: int = 50):
        params = {"offset": offset, "limit": limit, **({"dataset": dataset} if dataset else {})}
        return self._call("GET", f"/projects/{_q(project)}/items", params=params)

    def image_url(self, project: str, dataset: str, item: str) -> str:
        return self.url(f"/projects/{_q(project)}/items/{_q(dataset)}/{_q(item)}/image.png")

    def layer_url(self, project: str, dataset: str, item: str, class_title: str) -> str:
        return self.url(
            f"/projects/{_q(project)}/items/{_q(dataset)}/{_q(item)}/layers/{_q(class_title)}.png"
        )

    def image_png(self, project: str, dataset: str, item: str):
        return self._bytes(f"/projects/{_q(project)}/items/{_q(dataset)}/{_q(item)}/image.png")

    def validate(self, project: str):
        return self._call("GET", f"/projects/{_q(project)}/validate")

    def import_masks(self, *, images: str | None = None, masks: str | None = None, out: str, **options: Any):
        """``import masks``: any of its options by their long name (``split_csv``, ``classes``, ``threshold``…)."""
        body = {"images": images, "masks": masks, "out": out, **options}
        return self._call("POST", "/projects/import", json={k: v for k, v in body.items() if v is not None})

    def upload(self, folder: str, files: list[tuple[str, bytes]]):
        """Save ``(name, content)`` files into the workspace folder ``folder``."""
        parts = [("files", (name, content)) for name, content in files]
        return self._call("POST", "/upload", files=parts, data={"folder": folder})

    # DTL
    def dtl_templates(self):
        return self._call("GET", "/dtl/templates")

    def dtl_check(self, graph: Any):
        return self._call("POST", "/dtl/check", json={"graph": graph})

    def dtl_run(self, graph: Any, out: str):
        return self._call("POST", "/dtl/run", json={"graph": graph, "out": out})

    # training
    def train_models(self):
        return self._call("GET", "/train/models")

    def train_defaults(self, project: str | None = None):
        return self._call("GET", "/train/defaults", params={"project": project} if project else None)

    def train_check(self, config: Any):
        return self._call("POST", "/train/check", json={"config": config})

    def train(self, project: str, run: str, config: Any, model: str | None = None):
        body = {"project": project, "run": run, "config": config, **({"model": model} if model else {})}
        return self._call("POST", "/train", json=body)

    def auto(self, project: str, run: str, budget: str | float):
        return self._call("POST", "/auto", json={"project": project, "run": run, "budget": budget})

    # testing and evaluation
    def test_defaults(self, run: str):
        return self._call("GET", "/test/defaults", params={"run": run})

    def test(self, run: str, project: str, out: str, config: Any = None, save_probabilities: bool = False):
        body = {"run": run, "project": project, "out": out, "save_probabilities": save_probabilities}
        return self._call(
            "POST", "/test", json={**body, **({"config": config} if config is not None else {})}
        )

    def evaluations(self):
        return self._call("GET", "/evaluations")

    def evaluation(self, name: str):
        return self._call("GET", f"/evaluations/{_q(name)}")

    def errors_url(self, name: str, dataset: str, item: str, threshold: float | None = None) -> str:
        return self.url(
            f"/evaluations/{_q(name)}/items/{_q(dataset)}/{_q(item)}/errors.png", threshold=threshold
        )

    def evaluation_threshold(self, name: str, threshold: float):
        return self._call("POST", f"/evaluations/{_q(name)}/threshold", json={"threshold": threshold})


class StudioClient(_Endpoints):
    """Async client: ``StudioClient(base_url, token)`` over HTTP or ``StudioClient.in_process(app)``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport=None,
        timeout: float = 60.0,
        url_token=True,
    ):
        super().__init__(token, url_token)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api", transport=transport, timeout=timeout
        )

    @classmethod
    def in_process(cls, app, token: str | None = None, *, url_token: bool = True) -> StudioClient:
        """Calls the FastAPI ``app`` directly (no socket): what the studio's pages use."""
        return cls(IN_PROCESS_URL, token, transport=httpx.ASGITransport(app=app), url_token=url_token)

    async def _call(self, method, path, *, json=None, params=None, files=None, data=None):
        response = await self._http.request(
            method, path, json=json, params=params, files=files, data=data, headers=self._headers()
        )
        _raise_for(response)
        return response.json() if response.content else None

    async def _bytes(self, path: str) -> bytes:
        response = await self._http.get(path, headers=self._headers())
        _raise_for(response)
        return response.content

    async def wait(self, task_id: str, timeout: float = 600.0, poll: float = 0.5) -> dict:
        """Poll a task until it finished (done, failed, stopped, interrupted); its last Task JSON."""
        deadline = time.monotonic() + timeout
        while (task := await self.task(task_id))["state"] not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still {task['state']} after {timeout:.0f} s")
            await asyncio.sleep(poll)
        return task

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> StudioClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class SyncStudioClient(_Endpoints):
    """Blocking client for scripts: ``SyncStudioClient("http://127.0.0.1:8765", token)``."""

    def __init__(self, base_url: str, token: str | None = None, *, transport=None, timeout: float = 60.0):
        super().__init__(token)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api", transport=transport, timeout=timeout
        )

    def _call(self, method, path, *, json=None, params=None, files=None, data=None):
        response = self._http.request(
            method, path, json=json, params=params, files=files, data=data, headers=self._headers()
        )
        _raise_for(response)
        return response.json() if response.content else None

    def _bytes(self, path: str) -> bytes:
        response = self._http.get(path, headers=self._headers())
        _raise_for(response)
        return response.content

    def wait(self, task_id: str, timeout: float = 600.0, poll: float = 0.5) -> dict:
        """Poll a task until it finished (done, failed, stopped, interrupted); its last Task JSON."""
        deadline = time.monotonic() + timeout
        while (task := self.task(task_id))["state"] not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still {task['state']} after {timeout:.0f} s")
            time.sleep(poll)
        return task

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SyncStudioClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
