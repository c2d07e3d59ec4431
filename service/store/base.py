"""The store: sessions as opaque bytes, changed only by compare-and-set.

The store knows nothing of optimizers. A session is a `Record`: a small `meta`
document (JSON bytes: optimizer, dim, dtype, token hash, ...) and a large `blob`
(state bytes, parameters included), plus a `revision` that every successful write
increments. Every state change goes through one primitive, `replace`: write only if
the revision is still the one read. Keys expire after `ttl_s` seconds of disuse;
`load` and `replace` refresh the expiry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    revision: int
    meta: bytes
    blob: bytes


class Store(ABC):
    @abstractmethod
    async def create(self, sid: str, meta: bytes, blob: bytes, ttl_s: int) -> bool:
        """Store a new session at revision 1; False (and nothing written) if `sid` exists."""

    @abstractmethod
    async def load(self, sid: str, ttl_s: int | None = None) -> Record | None:
        """The session, or None if unknown or expired; refreshes the expiry to `ttl_s` when given."""

    @abstractmethod
    async def replace(self, sid: str, revision: int, meta: bytes, blob: bytes, ttl_s: int) -> bool:
        """Compare-and-set: write iff the stored revision is `revision` (it becomes revision + 1).

        False when the session changed since it was read, or no longer exists.
        """

    async def load_meta(self, sid: str) -> bytes | None:
        """The session's meta alone (for cheap polling), or None; no expiry refresh.

        Backends that keep meta apart from the blob override this to skip the blob."""
        record = await self.load(sid)
        return None if record is None else record.meta

    @abstractmethod
    async def touch(self, sid: str, ttl_s: int) -> bool:
        """Reset the session's expiry to `ttl_s` from now; False if it does not exist."""

    @abstractmethod
    async def delete(self, sid: str) -> bool:
        """Remove the session and everything stored under it; False if it did not exist."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the backing store answers."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
