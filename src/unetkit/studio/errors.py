"""Studio errors: every failure is a JSON body ``{"error": code, "detail": message}``, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from unetkit.errors import ConfigError, UnetkitError

log = logging.getLogger("unetkit.studio")
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "exists", 413: "request_too_large"}  # fmt: skip


class StudioError(Exception):
    """An error answered with ``status`` and the body ``{"error": code, "detail": detail}``."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def validation_detail(exc: RequestValidationError) -> str:
    """One line naming the first offending field: ``body.config.lr: Input should be a valid number``."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def install_error_handlers(app: FastAPI) -> None:
    """StudioError → its status; UnetkitError → 400; request validation → 400; anything else → 500 (logged)."""

    @app.exception_handler(StudioError)
    async def _studio(_req: Request, exc: StudioError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(UnetkitError)
    async def _unetkit(_req: Request, exc: UnetkitError) -> JSONResponse:
        code = "invalid_config" if isinstance(exc, ConfigError) else "invalid_input"
        return error_response(400, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_input", validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _internal(req: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", req.method, req.url.path, exc_info=exc)
        return error_response(500, "internal", f"internal error ({type(exc).__name__}); see the studio's log")
