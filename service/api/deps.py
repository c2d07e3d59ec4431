"""Typed dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..codec import JSON, OCTET
from ..config import Settings
from ..engine import Engine
from ..errors import InvalidInput, UnsupportedMediaType

_bearer = HTTPBearer(auto_error=False, description="the session token (or, for creation, an API key)")


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a
# worker thread, which costs more than these one-liners themselves (~0.3 ms a request).


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str | None:
    return credentials.credentials if credentials else None


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TokenDep = Annotated[str | None, Depends(get_token)]


def media_type(request: Request, allowed: tuple[str, ...] = (JSON, OCTET)) -> str:
    """The request's media type, if the endpoint accepts it; else 415."""
    raw = request.headers.get("content-type", "")
    media = raw.split(";", 1)[0].strip().lower()
    if media not in allowed:
        shown = raw or "none"
        raise UnsupportedMediaType(f"Content-Type {shown!r} is not accepted here; use {' or '.join(allowed)}")
    return media


async def json_body(request: Request) -> None:
    """415 unless the body is declared JSON: FastAPI would read any other body as raw bytes
    and answer 422. Runs before FastAPI validates the body (dependencies come first)."""
    media_type(request, (JSON,))


def parse_if_match(value: str | None) -> int | None:
    """If-Match: "<step>" (weak W/ form and bare numbers accepted) -> the step count."""
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidInput("If-Match", f'If-Match must be a step count in quotes, like "3"; got {value!r}')
    return int(text)


def etag(step: int) -> dict[str, str]:
    return {"ETag": f'"{step}"'}
