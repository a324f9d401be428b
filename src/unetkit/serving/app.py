"""FastAPI application: original REST protocol, modern /v1 API, web page, health checks.

Original behaviour: docs/original-behaviour.md, "Deploy protocol".

Request flow: the handler reads the upload, then runs the CPU work (decode, pre/post-processing, the inference
mode) in a bounded thread pool; every model forward pass goes through the :class:`MicroBatcher`, so concurrent
requests share batches. Admission is bounded (``max_queue`` requests in the service at once; beyond → 503 with
Retry-After) and each request has a deadline (``timeout_s`` → 504).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from unetkit import __version__
from unetkit.errors import UnetkitError
from unetkit.project.images import display_rgb, encode_pixels
from unetkit.serving.batching import MicroBatcher
from unetkit.serving.errors import install_error_handlers, unetkit_to_api
from unetkit.serving.forms import JSON_PARTS, multipart_schema, read_form
from unetkit.serving.limits import (
    ApiError,
    ServeSettings,
    configure_pil,
    decode_image,
    parse_json_part,
    retry_after_seconds,
)
from unetkit.serving.middleware import BodyLimitMiddleware
from unetkit.serving.offline_docs import install_offline_docs
from unetkit.serving.payloads import (
    class_pixel_counts,
    encode_class_masks,
    encode_index_mask,
    encode_probabilities,
)

STATIC_DIR = Path(str(resources.files("unetkit.serving") / "static"))
# Swagger UI 5 and ReDoc 2 (both render the OpenAPI 3.1 that FastAPI writes), shipped by the fastapi-offline package


class Service:
    """Runtime state shared by the handlers: engine, batcher, thread pool, admission counter."""

    def __init__(self, engine: Any, settings: ServeSettings):
        self.engine = engine
        self.settings = settings
        # The admission bound keeps the batcher's queue from ever filling: at most max_queue requests,
        # each with at most max_batch forwards in flight.
        self.batcher = MicroBatcher(
            engine.forward_batch,
            max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue * settings.max_batch,
        )
        self.pool: ThreadPoolExecutor | None = None
        self.inflight = 0
        self._lock = threading.Lock()
        self._local = threading.local()  # per request thread: the request's deadline
        self.ready = False
        self.handled = 0
        self.rejected = 0
        self.internal_errors = 0

    def count_internal_error(self) -> None:
        self.internal_errors += 1

    async def start(self) -> None:
        self.pool = ThreadPoolExecutor(
            max_workers=self.settings.thread_count, thread_name_prefix="unetkit-req"
        )
        await self.batcher.start()
        await self.batcher.submit(self.engine.warmup_item())  # first forward pays the allocations
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.batcher.stop()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def network(self, batch: np.ndarray) -> np.ndarray:
        """The predictor's network pass for code in a request thread: N×C×h×w → N×K×h×w probabilities, the
        items going through the batcher in chunks of ≤ max_batch.

        Past the request's deadline the work is abandoned here, so a request that already got its 504
        stops using the model at its next network pass.
        """
        items, out = list(batch), []
        step = self.settings.max_batch
        deadline = getattr(self._local, "deadline", None)
        for start in range(0, len(items), step):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise RequestAbandoned("the request passed its deadline")
            chunk = items[start : start + step]
            try:
                out.extend(self.batcher.submit_from_thread_many(chunk, timeout=remaining))
            except concurrent.futures.TimeoutError:
                raise RequestAbandoned("the request passed its deadline") from None
        return np.stack(out)

    async def run(self, job: Callable[[], Any]) -> Any:
        """Run ``job`` in the request pool under the admission bound and the per-request deadline."""
        if not self.ready or self.pool is None:
            raise ApiError(503, "not_ready", "the model is still loading", {"Retry-After": "1"})
        if self.inflight >= self.settings.max_queue:
            self.rejected += 1
            retry = retry_after_seconds(
                self.inflight, self.settings.max_batch, self.batcher.stats.mean_batch_s
            )
            raise ApiError(
                503,
                "overloaded",
                f"{self.inflight} requests are already being served (limit {self.settings.max_queue}); "
                f"retry in {retry} s",
                {"Retry-After": str(retry)},
            )
        # The slot is held until the job really ends (not when its caller gives up), so abandoned work
        # still counts against the bound.
        with self._lock:
            self.inflight += 1
        work = self.pool.submit(self._with_deadline, job, time.monotonic() + self.settings.timeout_s)
        work.add_done_callback(self._release)
        result = asyncio.wrap_future(work)
        try:
            return await asyncio.wait_for(asyncio.shield(result), self.settings.timeout_s)
        except (asyncio.TimeoutError, RequestAbandoned):
            work.cancel()  # only succeeds if it has not started
            result.add_done_callback(_consume_outcome)
            raise ApiError(
                504,
                "timeout",
                f"the request took longer than {self.settings.timeout_s:g} s and was abandoned",
            ) from None
        except asyncio.CancelledError:  # the client went away; the deadline still ends the work
            work.cancel()
            result.add_done_callback(_consume_outcome)
            raise

    def _with_deadline(self, job: Callable[[], Any], deadline: float) -> Any:
        self._local.deadline = deadline
        try:
            return job()
        finally:
            self._local.deadline = None

    def _release(self, _future) -> None:
        with self._lock:
            self.inflight -= 1
            self.handled += 1


class RequestAbandoned(Exception):
    """Raised inside an abandoned request's thread (its caller already got a 504)."""


def _consume_outcome(future: asyncio.Future) -> None:
    """Retrieve an abandoned request's outcome so that asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


def create_app(model_dir: str | Path | None = None, *, engine: Any = None, **settings: Any) -> FastAPI:
    """Build the service. The model in ``model_dir`` is loaded here, once (or pass a ready ``engine``)."""
    config = ServeSettings(**settings)
    if engine is None:
        if model_dir is None:
            raise ValueError("create_app needs model_dir or engine")
        from unetkit.serving.engine import ServingEngine

        engine = ServingEngine.load(model_dir, backend=config.backend, device=config.device)
    service = Service(engine, config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        previous = configure_pil(config.max_pixels)  # process-wide; restored when the service stops
        await service.start()
        try:
            yield
        finally:
            await service.stop()
            configure_pil(previous)

    app = FastAPI(
        title="unetkit segmentation service",
        version=__version__,
        description="Original Supervisely REST protocol (`/model/*`), a modern JSON API (`/v1/*`) and a web page.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are served below from local files (they work offline)
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_upload_bytes)
    install_error_handlers(app, service.count_internal_error)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_offline_docs(app)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Readiness: the model is loaded, warmed up and the batch worker runs."""
        if service.ready and service.batcher.running:
            return JSONResponse({"status": "ready", "inflight": service.inflight})
        return JSONResponse({"error": "not_ready", "detail": "the model is not ready"}, status_code=503)

    @app.get("/v1/model", tags=["v1"])
    async def model_info() -> dict:
        """Classes with colours, input size, architecture, checkpoint information and service limits."""
        info = dict(engine.describe())
        info["service"] = {
            "settings": config.to_json(),
            "batching": service.batcher.stats.to_json(),
            "inflight": service.inflight,
            "handled": service.handled,
            "rejected": service.rejected,
            "internal_errors": service.internal_errors,
        }
        return info

    @app.post("/v1/predict", tags=["v1"])
    async def predict(
        image: UploadFile = File(..., description="the image (PNG, JPEG, BMP, WebP, TIFF, GIF)"),
        format: Literal["mask", "annotation"] = Query(
            "mask", description="`mask`: class map + PNG mask; `annotation`: a Supervisely annotation"
        ),
        probabilities: bool = Query(False, description="also return per-class probability maps (8-bit PNGs)"),
        preview: bool = Query(
            False,
            description="also return `preview_png`: the image as an 8-bit RGB picture (16-bit and float through a "
            "percentile window, the first three of many channels) for clients that cannot show the upload",
        ),
    ) -> dict:
        """Segment one image."""
        data = await image.read()

        def job() -> dict:
            started = time.perf_counter()
            img = decode_image(data, max_pixels=config.max_pixels)
            result = engine.predict(img, service.network)
            body: dict = {
                "format": format,
                "width": int(img.shape[1]),
                "height": int(img.shape[0]),
                "classes": engine.classes,
            }
            if format == "mask" and result.multilabel:  # overlapping classes: one mask per class
                body["multilabel"] = True
                body["masks_png"] = encode_class_masks(result.mask, engine.classes)
                body["class_pixels"] = class_pixel_counts(result.mask, engine.classes)
            elif format == "mask":
                body["mask_png"] = encode_index_mask(result.mask, engine.classes)
                body["class_pixels"] = class_pixel_counts(result.mask, engine.classes)
            else:
                body["annotation"] = engine.prediction_to_annotation(result)
            if probabilities:
                body["probabilities"] = encode_probabilities(result.probabilities, engine.classes)
            if preview:
                body["preview_png"] = base64.b64encode(encode_pixels(display_rgb(img), ".png")).decode(
                    "ascii"
                )
            body["time_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
            return body

        return await service.run(job)

    @app.post(
        "/model/inference",
        tags=["original protocol"],
        openapi_extra={
            "requestBody": multipart_schema(required=["image"], file_parts=["image", *JSON_PARTS])
        },
    )
    async def original_inference(request: Request) -> JSONResponse:
        """Original `rest_inference.py`: multipart `image` (+ optional JSON `annotation`, `meta`, `mode`)
        → the annotation JSON. Default mode: `full_image` with suffix `_model`."""
        parts, files = await read_form(request, config.max_upload_bytes)
        image = parts.get("image")
        if image is None:
            raise ApiError(400, "missing_image", "the multipart part 'image' is required")
        if "image" not in files:
            raise ApiError(400, "invalid_image", "the part 'image' must be a file upload, not a text field")
        docs = {name: parse_json_part(parts.get(name), name) for name in JSON_PARTS}

        def job() -> dict:
            img = decode_image(image, max_pixels=config.max_pixels)
            return engine.run_mode(img, docs["annotation"], docs["meta"], docs["mode"], service.network)

        return JSONResponse(await service.run(job))

    @app.post(
        "/model/get_out_meta",
        tags=["original protocol"],
        openapi_extra={
            "requestBody": multipart_schema(required=[], file_parts=[], field_parts=["meta", "mode"])
        },
    )
    async def original_out_meta(request: Request) -> JSONResponse:
        """Original `get_out_meta`: form fields `meta`, `mode` (JSON, optional) → the output project meta."""
        parts, _files = await read_form(request, config.max_upload_bytes)
        meta = parse_json_part(parts.get("meta"), "meta")
        mode = parse_json_part(parts.get("mode"), "mode")
        return JSONResponse(_call_engine(lambda: engine.out_meta(meta, mode)))

    return app


def _call_engine(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except UnetkitError as exc:
        raise unetkit_to_api(exc) from exc
