"""Typed exceptions carrying the server's RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

import httpx


class DescentError(Exception):
    """Base class. `problem` is the server's problem-details object (empty for client-side errors)."""

    def __init__(self, detail: str, problem: dict[str, Any] | None = None, status: int | None = None) -> None:
        self.problem: dict[str, Any] = problem or {}
        self.status: int | None = status if status is not None else self.problem.get("status")
        self.detail: str = detail
        self.title: str | None = self.problem.get("title")
        self.type: str | None = self.problem.get("type")
        self.field: str | None = self.problem.get("field")
        prefix = " ".join(str(part) for part in (self.status, self.title) if part)
        super().__init__(f"{prefix}: {detail}" if prefix else detail)


class Unauthorized(DescentError):
    """401: no credentials, or a token/API key that is valid for nothing."""


class Forbidden(DescentError):
    """403: a valid token, but for another session."""


class NotFound(DescentError):
    """404: no such session (unknown, deleted or expired)."""


class PreconditionFailed(DescentError):
    """412: `If-Match` named a step count that is not the session's (`problem["step"]` is)."""


class PayloadTooLarge(DescentError):
    """413: the request body exceeds the server's limit."""


class UnsupportedMediaType(DescentError):
    """415: a Content-Type the endpoint does not accept."""


class InvalidInput(DescentError):
    """422: malformed body, wrong length, bad hyperparameter or state, NaN/Inf; `field` names the culprit."""


class Busy(DescentError):
    """503: the session stayed contended (or the store unreachable) through the retries; nothing changed."""


class ServerError(DescentError):
    """Any other 5xx."""


class ResponseLost(DescentError):
    """A step was applied on the server but its response was lost, and the session does not
    hold the parameters, so the new ones cannot be fetched again. `step` is the server's count."""

    def __init__(self, detail: str, step: int) -> None:
        super().__init__(detail)
        self.step = step


BY_STATUS: dict[int, type[DescentError]] = {
    401: Unauthorized, 403: Forbidden, 404: NotFound, 412: PreconditionFailed,
    413: PayloadTooLarge, 415: UnsupportedMediaType, 422: InvalidInput, 503: Busy,
}


def raise_for_problem(response: httpx.Response) -> None:
    """Raise the typed exception for an error response; return quietly for 1xx-3xx."""
    status = response.status_code
    if status < 400:
        return
    problem: dict[str, Any] = {}
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
            problem = body if isinstance(body, dict) else {}
        except ValueError:
            pass
    problem.setdefault("status", status)
    problem.setdefault("title", response.reason_phrase)
    detail = str(problem.get("detail") or response.text[:500] or response.reason_phrase)
    cls = BY_STATUS.get(status) or (ServerError if status >= 500 else DescentError)
    raise cls(detail, problem, status)
