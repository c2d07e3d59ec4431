"""Domain errors of the service. No HTTP here: api/problems.py maps each to a status."""

from __future__ import annotations


class DescentError(Exception):
    """Base class; `detail` is the human-readable explanation sent to the client."""

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthorized(DescentError):
    """No credentials, or credentials that are valid for nothing."""


class Forbidden(DescentError):
    """A valid token, but for another session."""


class NotFound(DescentError):
    """No such session (or it expired)."""


class PreconditionFailed(DescentError):
    """If-Match named a step count that is not the session's."""


class PayloadTooLarge(DescentError):
    """The request body exceeds the configured limit."""


class UnsupportedMediaType(DescentError):
    """A Content-Type the endpoint does not accept."""


class InvalidInput(DescentError):
    """Malformed body, wrong length, non-finite values, bad hyperparameters or state.

    `field` names the offending member (``grads``, ``optimizer.lr``, ``state.exp_avg``).
    """

    def __init__(self, field: str, detail: str, **extra: object) -> None:
        super().__init__(detail, **extra)
        self.field = field


class Conflict(DescentError):
    """The session's current state refuses the request: a federated contribution for a
    closed round, a client's second one in a round, one too stale; or a call that does not
    fit the session's kind (a contribution to a plain session, a plain step on a federated one)."""


class Busy(DescentError):
    """A step lost the compare-and-set race too many times; safe to retry."""
