"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from ..metrics import exposition
from .deps import EngineDep
from .problems import problem, responses

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", responses=responses(503), summary="The store is reachable")
async def readyz(engine: EngineDep) -> Response:
    try:
        ok = await engine.store.ping()
    except Exception:  # any failure to reach the store means "not ready", never a 500
        ok = False
    if not ok:
        return problem(503, "store-unavailable", "Store unavailable", "the session store does not answer")
    return Response(b'{"status":"ready"}', media_type="application/json")


@router.get("/metrics", operation_id="metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)
