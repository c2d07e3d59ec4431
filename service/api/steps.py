"""Optimizer steps and the held parameters, in JSON or raw bytes."""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Header, Query, Request, Response

from ..codec import JSON, OCTET, dtype_of, dump_json, parse_json, vector_from_json, vectors_from_binary, wants_binary
from ..errors import InvalidInput
from ..federated.coordinator import MAX_WAIT_S, Coordinator
from ..metrics import STEP_SECONDS, STEPS
from ..session import Meta
from ..schemas import ParamsResponse, StepRequest, StepResponse
from .deps import EngineDep, TokenDep, etag, media_type, parse_if_match
from .problems import responses

router = APIRouter(prefix="/v1/sessions", tags=["steps"])

BINARY = {"schema": {"type": "string", "format": "binary"}}
STEP_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {"schema": StepRequest.model_json_schema(), "example": {"grads": [0.5, -0.1, 0.2]}},
            OCTET: {
                **BINARY,
                "description": "raw little-endian values of the session dtype: grads (dim values), "
                "or params then grads (2*dim values)",
            },
        },
    }
}
ETAG_HEADER = {"ETag": {"description": 'the step count after this call, quoted: "<n>"', "schema": {"type": "string"}}}


def _vector_response(params: Any, step: int, binary: bool, extra: dict[str, Any]) -> Response:
    if binary:  # a view, not a copy: Starlette sends a contiguous memoryview as is
        return Response(memoryview(params), media_type=OCTET, headers=etag(step))
    return Response(dump_json({"params": params, "step": step, **extra}), media_type=JSON, headers=etag(step))


@router.post(
    "/{session_id}/step", operation_id="step_session", response_model=StepResponse,
    responses={200: {"content": {OCTET: BINARY}, "headers": ETAG_HEADER,
                     "description": "the new parameters (JSON, or raw bytes with Accept: application/octet-stream)"},
               **responses(401, 403, 404, 412, 413, 415, 422, 503)},
    openapi_extra=STEP_BODY, summary="Apply one optimizer step",
)
async def step_session(
    session_id: str, request: Request, engine: EngineDep, token: TokenDep,
    if_match: Annotated[str | None, Header(description='apply only if the step count is this, e.g. "3"')] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    started = time.perf_counter()
    expected = parse_if_match(if_match)
    media = media_type(request)
    body = await request.body()
    limit = engine.settings.max_json_dim
    data = parse_json(body) if media == JSON else None

    def decode(meta: Meta) -> tuple[np.ndarray, np.ndarray | None]:
        """The body's vectors; how to read them depends on the session's dim and dtype."""
        dtype, dim = dtype_of(meta.dtype), meta.dim
        if data is None:
            names = ("params", "grads") if len(body) == 2 * dim * dtype.itemsize else ("grads",)
            vectors = vectors_from_binary(body, dtype, dim, names)
            return vectors["grads"], vectors.get("params")
        if not isinstance(data, dict) or "grads" not in data:
            raise InvalidInput("grads", 'JSON body must be an object with "grads" (and "params" unless the server holds them)')
        unknown = sorted(set(data) - {"grads", "params"})
        if unknown:
            raise InvalidInput(unknown[0], f"unknown member(s): {', '.join(unknown)}")
        grads = vector_from_json(data["grads"], "grads", dim, dtype, limit)
        params = data.get("params")
        return grads, None if params is None else vector_from_json(params, "params", dim, dtype, limit)

    result = await engine.step(session_id, token, decode, expected)
    meta = result.meta
    if not result.skipped:
        STEPS.labels(optimizer=meta.optimizer).inc()
        STEP_SECONDS.labels(optimizer=meta.optimizer).observe(time.perf_counter() - started)
    binary = wants_binary(accept)
    if not binary and meta.dim > limit:
        binary = True  # too large for JSON: answer in bytes rather than fail after stepping
    response = _vector_response(result.params, result.step, binary, {"skipped": result.skipped})
    if result.skipped:
        response.headers["Descent-Skipped"] = "nonfinite"
    return response


@router.get(
    "/{session_id}/params", operation_id="get_params", response_model=ParamsResponse,
    responses={200: {"content": {OCTET: BINARY}, "headers": ETAG_HEADER,
                     "description": "the held parameters (JSON, or raw bytes with Accept: application/octet-stream)"},
               **responses(401, 403, 404, 422)},
    summary="Read the server-held parameters (long poll: after= and wait=)",
)
async def get_params(
    session_id: str, engine: EngineDep, token: TokenDep,
    after: Annotated[int | None, Query(ge=-1, description="answer once the version (step) exceeds this")] = None,
    wait: Annotated[float, Query(ge=0, description=f"with after: wait at most this many seconds "
                                                  f"(capped at {MAX_WAIT_S:g})")] = 30.0,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    if after is not None:  # polls the store, so a step made by any worker ends the wait
        await Coordinator(engine).wait_for_version(session_id, token, after, wait)
    meta, params = await engine.params(session_id, token)
    binary = wants_binary(accept) or meta.dim > engine.settings.max_json_dim
    federated = {"version": meta.step} if "federation" in meta.extra else {}
    return _vector_response(params, meta.step, binary, federated)

