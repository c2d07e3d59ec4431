"""Create, describe, patch and delete sessions."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Response, status

from ..errors import Unauthorized
from ..metrics import SESSIONS_CREATED, SESSIONS_DELETED
from ..schemas import SessionCreate, SessionCreated, SessionInfo, SessionPatch
from .deps import EngineDep, SettingsDep, TokenDep, etag, json_body
from .problems import responses

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


async def require_api_key(settings: SettingsDep, token: TokenDep) -> None:
    """With DESCENT_API_KEYS set, creating a session needs one (checked before the body is)."""
    if not settings.api_keys:
        return
    given = (token or "").encode()  # bytes: compare_digest refuses non-ASCII str (a 500 otherwise)
    if not token or not any(hmac.compare_digest(given, key.encode()) for key in settings.api_keys):
        raise Unauthorized("creating a session needs 'Authorization: Bearer <API key>'")


@router.post(
    "", operation_id="create_session", status_code=status.HTTP_201_CREATED, response_model=SessionCreated,
    response_model_exclude_none=True,  # plain sessions: no federation/version members
    responses=responses(401, 413, 415, 422), dependencies=[Depends(require_api_key), Depends(json_body)],
    summary="Create a session (server-held parameters when params is given)",
)
async def create_session(body: SessionCreate, engine: EngineDep) -> SessionCreated:
    meta, session_token = await engine.create(
        body.optimizer, body.dim, body.dtype, body.params, body.nonfinite, body.ttl_s, body.federation
    )
    SESSIONS_CREATED.labels(optimizer=meta.optimizer).inc()
    return SessionCreated(token=session_token, **meta.describe())


@router.get("/{session_id}", operation_id="get_session", response_model=SessionInfo, response_model_exclude_none=True,
            responses=responses(401, 403, 404), summary="Describe a session (no token, no vectors)")
async def get_session(session_id: str, engine: EngineDep, token: TokenDep, response: Response) -> SessionInfo:
    meta = await engine.describe(session_id, token)
    response.headers.update(etag(meta.step))
    return SessionInfo(**meta.describe())


@router.patch("/{session_id}", operation_id="update_session", response_model=SessionInfo,
              response_model_exclude_none=True,
              responses=responses(401, 403, 404, 413, 415, 422, 503), dependencies=[Depends(json_body)],
              summary="Change hyperparameters mid-run (the optimizer name cannot change)")
async def update_session(session_id: str, body: SessionPatch, engine: EngineDep, token: TokenDep) -> SessionInfo:
    meta = await engine.patch(session_id, token, body.optimizer)
    return SessionInfo(**meta.describe())


@router.delete("/{session_id}", operation_id="delete_session", status_code=status.HTTP_204_NO_CONTENT,
               responses=responses(401, 403, 404), summary="Delete a session and all its state")
async def delete_session(session_id: str, engine: EngineDep, token: TokenDep) -> Response:
    await engine.delete(session_id, token)
    SESSIONS_DELETED.inc()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
