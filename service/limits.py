"""Request body limit, enforced while the body is read (pure ASGI middleware).

A declared Content-Length over the limit is answered with 413 before any byte of the
body is read; a body without one (chunked) is counted as it arrives and refused as
soon as it passes the limit, so an oversized body is never held in memory.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .api.problems import problem
from .errors import PayloadTooLarge


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body exceeds the limit of {self.limit} bytes"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            response = problem(413, "payload-too-large", "Request body too large", too_large,
                               Request(scope), {"Connection": "close"}, limit=self.limit)
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLarge(too_large, limit=self.limit)
            return message

        await self.app(scope, limited, send)
