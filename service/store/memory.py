"""The embedded store: sessions in a dict of this process, for one-worker deployments and tests.

Each method runs to completion without awaiting, so on one event loop every operation
is atomic and `replace` is a true compare-and-set. A lock makes that hold across
threads too (each with its own loop), at the cost of one uncontended acquire.

Expiry follows a monotonic clock: an entry past its deadline counts as absent and is
dropped when touched; `create` also sweeps the whole dict whenever it has doubled since
the last sweep, so sessions nobody touches again cannot pile up.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from service.store.base import Record, Store

_MIN_SWEEP = 64


@dataclass(slots=True)
class _Entry:
    record: Record
    deadline: float  # time.monotonic() after which the session is gone


class MemoryStore(Store):
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._sweep_at = _MIN_SWEEP

    def _live(self, sid: str, now: float) -> _Entry | None:
        """The entry for `sid` unless missing or expired (an expired one is dropped)."""
        entry = self._entries.get(sid)
        if entry is not None and entry.deadline <= now:
            del self._entries[sid]
            return None
        return entry

    def _sweep(self, now: float) -> None:
        self._entries = {sid: e for sid, e in self._entries.items() if e.deadline > now}
        self._sweep_at = max(2 * len(self._entries), _MIN_SWEEP)

    async def create(self, sid: str, meta: bytes, blob: bytes, ttl_s: int) -> bool:
        _check_ttl(ttl_s)
        now = time.monotonic()
        with self._lock:
            if self._live(sid, now) is not None:
                return False
            if len(self._entries) >= self._sweep_at:
                self._sweep(now)
            # bytes() keeps bytes as they are and freezes a bytearray or memoryview.
            self._entries[sid] = _Entry(Record(1, bytes(meta), bytes(blob)), now + ttl_s)
            return True

    async def load(self, sid: str, ttl_s: int | None = None) -> Record | None:
        if ttl_s is not None:
            _check_ttl(ttl_s)
        now = time.monotonic()
        with self._lock:
            entry = self._live(sid, now)
            if entry is None:
                return None
            if ttl_s is not None:
                entry.deadline = now + ttl_s
            return entry.record

    async def replace(self, sid: str, revision: int, meta: bytes, blob: bytes, ttl_s: int) -> bool:
        _check_ttl(ttl_s)
        now = time.monotonic()
        with self._lock:
            entry = self._live(sid, now)
            if entry is None or entry.record.revision != revision:
                return False
            entry.record = Record(revision + 1, bytes(meta), bytes(blob))
            entry.deadline = now + ttl_s
            return True

    async def touch(self, sid: str, ttl_s: int) -> bool:
        _check_ttl(ttl_s)
        now = time.monotonic()
        with self._lock:
            entry = self._live(sid, now)
            if entry is None:
                return False
            entry.deadline = now + ttl_s
            return True

    async def delete(self, sid: str) -> bool:
        with self._lock:
            if self._live(sid, time.monotonic()) is None:
                return False
            del self._entries[sid]
            return True

    async def ping(self) -> bool:
        return True


def _check_ttl(ttl_s: float) -> None:
    # Redis refuses a zero or negative expiry; refuse it here too so both backends agree.
    if not ttl_s > 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
