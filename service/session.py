"""A session's description (the store's `meta`) and its bearer token.

Tokens are ``<session id>.<43 characters of 256 random bits>``. Only a SHA-256 of the
token is stored, and it is compared in constant time. The id prefix lets the server
tell "a valid token for another session" (403) from "no valid token" (401) with one
extra lookup on the error path only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Nonfinite = Literal["reject", "skip"]


def new_id() -> str:
    return secrets.token_urlsafe(16)


def new_token(sid: str) -> str:
    return f"{sid}.{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_session(token: str) -> str:
    """The session id a token claims to belong to ('' if it has none)."""
    return token.split(".", 1)[0] if "." in token else ""


@dataclass
class Meta:
    """Everything about a session except its vectors."""

    id: str
    token_sha256: str
    optimizer: str
    hyperparameters: dict[str, Any]
    dim: int
    dtype: str
    server_held: bool
    nonfinite: Nonfinite
    ttl_s: int
    created_at: float
    step: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def token_matches(self, token: str) -> bool:
        return hmac.compare_digest(self.token_sha256, token_hash(token))

    def to_bytes(self) -> bytes:
        return orjson.dumps(self)  # orjson writes dataclasses natively, without asdict's deep copy

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Meta":
        data = orjson.loads(raw)
        hp = data["hyperparameters"]
        # JSON has no tuples; pairs (betas, etas, ...) are tuples in the engine.
        data["hyperparameters"] = {k: tuple(v) if isinstance(v, list) else v for k, v in hp.items()}
        return cls(**data)

    def describe(self) -> dict[str, Any]:
        """The public description: no token hash, no vectors."""
        described = {
            "id": self.id,
            "optimizer": {"name": self.optimizer, **{k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in self.hyperparameters.items()}},
            "dim": self.dim,
            "dtype": self.dtype,
            "step": self.step,
            "server_held": self.server_held,
            "nonfinite": self.nonfinite,
            "ttl_s": self.ttl_s,
            "created_at": self.created_at,
        }
        if "federation" in self.extra:  # a federated session: its config, and version = server steps
            described.update(federation=self.extra["federation"], version=self.step)
        return described
