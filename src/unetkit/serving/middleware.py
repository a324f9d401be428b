"""ASGI middleware bounding the request body size (413 with a JSON error body), independent of framework versions."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(Exception):
    """Raised from ``receive`` once the body passes the limit; turned into a 413 by the middleware."""


class BodyLimitMiddleware:
    """Refuse bodies above ``max_bytes``: at once from Content-Length, or while streaming (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(send, f"the request body is {declared} bytes; the limit is {self.max_bytes}")
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLargeError(f"the request body exceeds the limit of {self.max_bytes} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app turned our exception into some other answer: answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(send, f"the request body exceeds the limit of {self.max_bytes} bytes")
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLargeError:
            if not started:
                await self._reject(send, f"the request body exceeds the limit of {self.max_bytes} bytes")

    @staticmethod
    async def _reject(send: Send, detail: str) -> None:
        body = json.dumps({"error": "request_too_large", "detail": detail}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
