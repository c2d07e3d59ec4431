"""Federated sessions over the engine: every change through its one compare-and-set.

`contribute` and `close_due` run `protocol` functions inside `Engine._change`, which
re-reads the session and retries when another request (in any worker) wrote first: a
round's aggregate is computed by whichever request completes it, and written exactly
once. `wait_for_version` is the long poll behind `GET /params?after=&wait=`: it reads
only the session's small meta record, every 10 to 100 ms, so it sees a step made by any
worker; on the way it closes a sync round whose timeout has passed, so a round with
enough contributions closes on time as long as someone is waiting for it (else at the
next contribution or `GET /federation`: there is no background timer to lose in a crash).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from ..engine import Engine, Loaded
from ..errors import NotFound
from ..metrics import FED_CONTRIBUTIONS, FED_ROUND_CONTRIBUTIONS, FED_ROUNDS, FED_STALENESS
from ..session import Meta
from . import protocol
from .protocol import Contribution, Outcome

MAX_WAIT_S = 60.0
_POLL_FIRST_S, _POLL_MAX_S = 0.01, 0.1


class Coordinator:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def contribute(self, sid: str, token: str | None, decode: Callable[[Meta], Contribution]) -> Outcome:
        """Count one contribution; `decode(meta)` reads the request once the dim and dtype are known."""
        decoded: list[Contribution] = []

        def apply(s: Loaded) -> Outcome:
            protocol.config_of(s.meta)  # a plain session: 409 before the body is even read
            if not decoded:
                decoded.append(decode(s.meta))
            return protocol.accept(s, decoded[0], time.time())

        outcome = await self.engine._change(sid, token, apply, write_if=lambda o: not o.replayed)
        mode = outcome.mode
        FED_CONTRIBUTIONS.labels(mode=mode, outcome="replayed" if outcome.replayed else "counted").inc()
        if not outcome.replayed:
            FED_STALENESS.labels(mode=mode).observe(outcome.staleness)
        if outcome.closed is not None and not outcome.replayed:
            self._count_round(mode, outcome.closed)
        return outcome

    async def close_due(self, sid: str, token: str | None) -> None:
        def apply(s: Loaded) -> dict[str, Any] | None:
            return protocol.close_if_due(s, time.time())

        entry = await self.engine._change(sid, token, apply, write_if=lambda e: e is not None)
        if entry is not None:
            self._count_round("sync", entry)

    async def status(self, sid: str, token: str | None) -> dict[str, Any]:
        s = await self.engine._load(sid, token)
        cfg = protocol.config_of(s.meta)
        if (due := protocol.due_at(cfg, s.federation)) is not None and time.time() >= due:  # type: ignore[arg-type]
            await self.close_due(sid, token)
            s = await self.engine._load(sid, token, touch=False)
        return protocol.status(s)

    async def wait_for_version(self, sid: str, token: str | None, after: int, wait_s: float) -> None:
        """Return once the session's version (step count) exceeds `after`, or after `wait_s` seconds."""
        loaded = await self.engine._load(sid, token)  # authorises; the polls below read meta alone
        if loaded.params is None:
            return  # client-held: nothing to wait for (the caller answers 422)
        meta = loaded.meta
        deadline = time.monotonic() + min(max(wait_s, 0.0), MAX_WAIT_S)
        delay = _POLL_FIRST_S
        while meta.step <= after:
            due = meta.extra.get(protocol.DUE_AT)
            if due is not None and time.time() >= due:
                await self.close_due(sid, token)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 1.5, _POLL_MAX_S)
            raw = await self.engine.store.load_meta(sid)
            if raw is None:
                raise NotFound(f"no session {sid!r} (unknown, deleted or expired)")
            meta = Meta.from_bytes(raw)

    @staticmethod
    def _count_round(mode: str, entry: dict[str, Any]) -> None:
        FED_ROUNDS.labels(mode=mode).inc()
        FED_ROUND_CONTRIBUTIONS.labels(mode=mode).observe(entry["contributions"])

