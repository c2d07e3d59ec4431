"""Export and import a session's whole optimizer state (checkpoint, move, resume from torch)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ..codec import JSON, dump_json, parse_json
from ..engine import Loaded
from ..errors import InvalidInput
from ..optim import state as state_codec
from ..schemas import MAX_STEP, StateDocument
from .deps import EngineDep, TokenDep, etag, media_type
from .problems import responses

router = APIRouter(prefix="/v1/sessions", tags=["state"])


def _document(s: Loaded) -> Response:
    doc: dict[str, Any] = {
        "step": s.meta.step,
        "optimizer": s.meta.describe()["optimizer"],
        "state": state_codec.to_json(s.state),
    }
    if s.params is not None:
        doc["params"] = s.params
    return Response(dump_json(doc), media_type=JSON, headers=etag(s.meta.step))


@router.get("/{session_id}/state", operation_id="export_state", response_model=StateDocument,
            responses=responses(401, 403, 404), summary="Export the optimizer state (and held parameters)")
async def export_state(session_id: str, engine: EngineDep, token: TokenDep) -> Response:
    return _document(await engine.export_state(session_id, token))


@router.put(
    "/{session_id}/state", operation_id="import_state", response_model=StateDocument,
    responses=responses(401, 403, 404, 413, 415, 422, 503),
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {
        "schema": StateDocument.model_json_schema(),
        "example": {"step": 1, "state": {"exp_avg": [0.1, 0.2, 0.3], "exp_avg_sq": [0.01, 0.04, 0.09]}},
    }}}},
    summary="Replace the optimizer state (e.g. from a torch state_dict)",
)
async def import_state(session_id: str, request: Request, engine: EngineDep, token: TokenDep) -> Response:
    media_type(request, (JSON,))
    data = parse_json(await request.body())
    if not isinstance(data, dict):
        raise InvalidInput("body", "body must be a JSON object with step and state")
    unknown = sorted(set(data) - {"step", "optimizer", "state", "params"})
    if unknown:
        raise InvalidInput(unknown[0], f"unknown member(s): {', '.join(unknown)}")
    step = data.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise InvalidInput("step", f"step must be an integer from 0 to {MAX_STEP}")
    if not isinstance(data.get("state"), dict):
        raise InvalidInput("state", "state must be an object mapping state names to vectors or numbers")
    optimizer = data.get("optimizer", {})
    if not isinstance(optimizer, dict):
        raise InvalidInput("optimizer", "optimizer must be an object")
    loaded = await engine.import_state(session_id, token, step, data["state"], data.get("params"),
                                       optimizer.get("name"))
    return _document(loaded)
