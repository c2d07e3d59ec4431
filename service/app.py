"""create_app(): the store opened and closed with the app, the routers, the error mapping."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .api import catalogue, contributions, health, problems, sessions, state, steps
from .config import Settings
from .engine import Engine
from .limits import BodyLimit
from .metrics import REQUEST_SECONDS
from .store import from_url

API_DESCRIPTION = """Gradient descent as a service: torch.optim-exact optimizers behind HTTP, state in Redis.

Vectors travel as JSON arrays or, with `Content-Type`/`Accept: application/octet-stream`,
as raw little-endian values of the session's dtype (no header). A binary step body is
`grads` (dim values) or `params` then `grads` (2*dim values). Errors are RFC 9457
problem details."""


class RequestTimer:
    """Request latency by method, route template and status (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = from_url(settings.store_url, prefix=settings.redis_prefix)
        app.state.engine = Engine(store, settings)
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(
        title="Descent", version="1.0.0", description=API_DESCRIPTION, lifespan=lifespan,
        openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
    )
    app.state.settings = settings
    problems.install(app)
    for module in (sessions, steps, state, contributions, catalogue, health):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=settings.body_limit)
    app.add_middleware(RequestTimer)
    return app
