"""Every error as RFC 9457 problem details, mapped in this one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .. import errors
from ..codec import dump_json
from ..metrics import ERRORS
from ..schemas import Problem

PROBLEM = "application/problem+json"
log = logging.getLogger("descent")

# status, slug, title per domain error
STATUS: dict[type[errors.DescentError], tuple[int, str, str]] = {
    errors.Unauthorized: (401, "unauthorized", "Missing or invalid credentials"),
    errors.Forbidden: (403, "forbidden", "Token is for another session"),
    errors.NotFound: (404, "not-found", "No such session"),
    errors.Conflict: (409, "conflict", "Conflict with the session's current state"),
    errors.PreconditionFailed: (412, "precondition-failed", "If-Match does not match the step count"),
    errors.PayloadTooLarge: (413, "payload-too-large", "Request body too large"),
    errors.UnsupportedMediaType: (415, "unsupported-media-type", "Unsupported media type"),
    errors.InvalidInput: (422, "invalid-input", "Invalid input"),
    errors.Busy: (503, "busy", "Session busy, retry"),
}


def problem(status: int, slug: str, title: str, detail: str, request: Request | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
    body.update({k: v for k, v in extra.items() if v is not None})
    ERRORS.labels(type=slug).inc()
    return Response(dump_json(body), status_code=status, media_type=PROBLEM, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses."""
    titles = {s: t for s, _, t in STATUS.values()} | {500: "Internal error (a bug)"}
    return {s: {"model": Problem, "description": titles[s], "content": {PROBLEM: {}}} for s in statuses}


def document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAPI document so every error response is problem+json with the Problem
    schema: FastAPI files a `model` under application/json, and adds its own 422
    (HTTPValidationError), a shape this service never sends. Idempotent, in place."""
    ref = {"$ref": "#/components/schemas/Problem"}
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if code[0] in "45":
                    response["content"] = {PROBLEM: {"schema": ref}}
                    if code == "422":
                        response["description"] = STATUS[errors.InvalidInput][2]
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def install(app: FastAPI) -> None:
    generate = app.openapi
    app.openapi = lambda: document_problems(generate())  # type: ignore[method-assign]

    @app.exception_handler(errors.DescentError)
    async def domain(request: Request, exc: errors.DescentError) -> Response:
        status, slug, title = STATUS[type(exc)]
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if status == 503:
            headers["Retry-After"] = "1"
        field = getattr(exc, "field", None)
        return problem(status, slug, title, exc.detail, request, headers, field=field, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> Response:
        errs = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        first = errs[0] if errs else {"loc": [], "msg": "invalid request", "type": ""}
        if first["type"] == "json_invalid":  # loc is ("body", character offset), not a member
            reason = exc.errors()[0].get("ctx", {}).get("error", first["msg"])
            field, detail = "body", f"body is not valid JSON: {reason} at character {first['loc'][-1]}"
        else:
            field = ".".join(str(p) for p in first["loc"][1:]) or None
            detail = f"{field}: {first['msg']}" if field else first["msg"]
        return problem(422, "invalid-input", "Invalid input", detail, request, field=field, errors=errs)

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> Response:
        if isinstance(exc.__cause__, errors.DescentError):  # FastAPI wraps errors raised while reading a body
            return await domain(request, exc.__cause__)
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):  # a body FastAPI could not decode
            return await domain(request, errors.InvalidInput("body", f"body is not valid JSON: {exc.__cause__}"))
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, f"http-{exc.status_code}")
        return problem(exc.status_code, slug, str(exc.detail), str(exc.detail), request, exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up mid-body: nobody reads this answer, and it is no server bug.
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal", "Internal error", "an unexpected error occurred; it has been logged", request)
