"""Federated sessions: clients' contributions and the federation's status."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from ..codec import (JSON, OCTET, dtype_of, dump_json, parse_json, require_finite, vector_from_json,
                     vectors_from_binary, wants_binary)
from ..errors import InvalidInput
from ..federated.coordinator import Coordinator
from ..federated.protocol import Contribution
from ..schemas import ContributionAccepted, ContributionApplied, ContributionRequest, FederationStatus
from ..session import Meta
from .deps import EngineDep, TokenDep, etag, media_type
from .problems import responses

router = APIRouter(prefix="/v1/sessions", tags=["federated"])

CLIENT_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, like Stripe's and the IETF draft's keys
MAX_EXAMPLES = 2**53 - 1
BINARY = {"schema": {"type": "string", "format": "binary"}}


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its nested models (`$defs`) written in where they are referenced: inside an
    OpenAPI document a `#/$defs/...` reference resolves against the document's root, which has none."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


BODY = {"requestBody": {"required": True, "content": {
    JSON: {"schema": inline_defs(ContributionRequest.model_json_schema()),
           "example": {"client_id": "c1", "version": 0, "num_examples": 120, "update": [0.01, -0.02, 0.0]}},
    OCTET: {**BINARY, "description": "the update's raw little-endian values of the session dtype (dim values); "
                                     "client_id, version and num_examples as query parameters"},
}}}


def _integer(value: Any, field: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_EXAMPLES:
        raise InvalidInput(field, f"{field} must be an integer >= {least}")
    return value


def _metrics(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - {"loss", "accuracy", "num_examples"}:
        raise InvalidInput("metrics", 'metrics must be an object with "loss", "accuracy" and "num_examples", '
                                      "each optional")
    out: dict[str, float] = {}
    for name, x in value.items():
        if x is None:
            continue
        if name == "num_examples":
            out[name] = _integer(x, "metrics.num_examples", 1)
        elif isinstance(x, bool) or not isinstance(x, (int, float)) or x != x or abs(x) == float("inf"):
            raise InvalidInput(f"metrics.{name}", f"metrics.{name} must be a finite number")
        else:
            out[name] = float(x)
    return out


@router.post(
    "/{session_id}/contributions", operation_id="contribute", status_code=202,
    response_model=ContributionAccepted, response_model_exclude_none=True,
    responses={
        200: {"model": ContributionApplied, "description": "this contribution closed the round: the new params "
              "(JSON, or raw bytes with Accept: application/octet-stream)", "content": {OCTET: BINARY}},
        **responses(401, 403, 404, 409, 413, 415, 422, 503),
    },
    openapi_extra=BODY, summary="Contribute to a federated session's round",
)
async def contribute(
    session_id: str, request: Request, engine: EngineDep, token: TokenDep,
    client_id: Annotated[str | None, Query(description="binary body: the client's id")] = None,
    version: Annotated[int | None, Query(ge=0, description="binary body: the version the client started from")] = None,
    num_examples: Annotated[int | None, Query(ge=1, description="binary body: the contribution's weight")] = None,
    idempotency_key: Annotated[str | None, Header(description="a retry with the same key counts once")] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    media = media_type(request)
    body = await request.body()
    if idempotency_key is not None and not KEY.fullmatch(idempotency_key):
        raise InvalidInput("Idempotency-Key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
    if media == JSON:
        data = parse_json(body)
        if not isinstance(data, dict) or "update" not in data:
            raise InvalidInput("update", 'JSON body must be an object with "client_id", "version" and "update"')
        unknown = sorted(set(data) - set(ContributionRequest.model_fields))
        if unknown:
            raise InvalidInput(unknown[0], f"unknown member(s): {', '.join(unknown)}")
        client, ver, examples = data.get("client_id"), data.get("version"), data.get("num_examples", 1)
        metrics = _metrics(data.get("metrics"))
    else:
        data, client, ver, examples, metrics = None, client_id, version, num_examples or 1, {}
    if not isinstance(client, str) or not CLIENT_ID.fullmatch(client):
        raise InvalidInput("client_id", "client_id must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -")
    ver = _integer(ver, "version", 0)
    examples = _integer(examples, "num_examples", 1)

    def decode(meta: Meta) -> Contribution:
        dtype, dim = dtype_of(meta.dtype), meta.dim
        if data is None:
            update = vectors_from_binary(body, dtype, dim, ("update",))["update"]
        else:
            update = vector_from_json(data["update"], "update", dim, dtype, engine.settings.max_json_dim)
        require_finite(update, "update")  # federated sessions always refuse NaN/Inf: one would poison a round
        return Contribution(client, ver, examples, update, metrics, idempotency_key)

    outcome = await Coordinator(engine).contribute(session_id, token, decode)
    headers = etag(outcome.body["version"])
    if outcome.replayed:
        headers["Idempotency-Replayed"] = "true"
    if outcome.status == 202:
        return Response(dump_json(outcome.body | ({"replayed": True} if outcome.replayed else {})),
                        status_code=202, media_type=JSON, headers=headers)
    if wants_binary(accept) or outcome.params.size > engine.settings.max_json_dim:  # type: ignore[union-attr]
        return Response(outcome.params.tobytes(), media_type=OCTET, headers=headers)  # type: ignore[union-attr]
    answer = {**outcome.body, "params": outcome.params} | ({"replayed": True} if outcome.replayed else {})
    return Response(dump_json(answer), media_type=JSON, headers=headers)


@router.get("/{session_id}/federation", operation_id="get_federation", response_model=FederationStatus,
            responses=responses(401, 403, 404, 409, 503),
            summary="A federated session's open round, configuration and recent rounds' metrics")
async def get_federation(session_id: str, engine: EngineDep, token: TokenDep) -> Response:
    status = await Coordinator(engine).status(session_id, token)
    return Response(dump_json(status), media_type=JSON, headers=etag(status["version"]))
