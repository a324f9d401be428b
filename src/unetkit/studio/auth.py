"""The studio's access token: when one is set, every request must carry it (ASGI middleware).

Accepted as ``Authorization: Bearer T``, ``X-Studio-Token: T``, ``?token=T`` or the cookie ``studio_token=T``;
a request that brings it as ``?token=`` gets the cookie, so a browser opened on ``/?token=T`` keeps working.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "studio_token"
HEADER = b"x-studio-token"


class TokenMiddleware:
    """401 (HTTP) or a refused handshake (websocket) for requests without the token."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        found, from_query = presented_tokens(scope)
        if not any(hmac.compare_digest(t.encode(), self.token.encode()) for t in found):
            await self._refuse(scope, send)
            return
        if not any(hmac.compare_digest(t.encode(), self.token.encode()) for t in from_query):
            await self.app(scope, receive, send)
            return
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    async def _refuse(scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": "unauthorized", "detail": "this studio needs its access token"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"www-authenticate", b"Bearer")]  # fmt: skip
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def presented_tokens(scope: Scope) -> tuple[list[str], list[str]]:
    """(every token the request presents, those of them given as ``?token=``)."""
    found: list[str] = []
    for key, value in scope.get("headers", []):
        text = value.decode("latin-1")
        if key == b"authorization" and text[:7].lower() == "bearer ":
            found.append(text[7:].strip())
        elif key == HEADER:
            found.append(text.strip())
        elif key == b"cookie":
            try:
                jar = SimpleCookie(text)
            except CookieError:
                continue
            if COOKIE in jar:
                found.append(jar[COOKIE].value)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
    return found + query, query
