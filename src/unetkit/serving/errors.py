"""Exception → JSON error body ``{"error": <code>, "detail": <what is wrong>}`` for every failure."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from unetkit.errors import UnetkitError
from unetkit.serving.batching import BatcherClosedError, QueueFullError
from unetkit.serving.limits import ApiError

log = logging.getLogger("unetkit.serving")


def unetkit_to_api(exc: UnetkitError) -> ApiError:
    code = {"ConfigError": "invalid_mode", "GraphError": "invalid_mode", "FormatError": "invalid_format"}
    return ApiError(400, code.get(type(exc).__name__, "invalid_input"), str(exc))


def install_error_handlers(app: FastAPI, on_internal_error: Callable[[], None]) -> None:
    """Register the handlers; ``on_internal_error`` is called for each 500 (a server-side bug)."""

    def error(status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(UnetkitError)
    async def _unetkit_error(_req: Request, exc: UnetkitError) -> JSONResponse:
        api = unetkit_to_api(exc)
        return error(api.status, api.error, api.detail)

    @app.exception_handler(QueueFullError)
    async def _queue_full(_req: Request, exc: QueueFullError) -> JSONResponse:
        return error(503, "overloaded", str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(BatcherClosedError)
    async def _closed(_req: Request, exc: BatcherClosedError) -> JSONResponse:
        return error(503, "not_ready", str(exc), {"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large", 400: "bad_request"}
        return error(
            exc.status_code,
            codes.get(exc.status_code, f"http_{exc.status_code}"),
            str(exc.detail),
            exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        on_internal_error()
        log.exception("internal error while serving a request")
        return error(500, "internal_error", f"{type(exc).__name__}: {exc}")
