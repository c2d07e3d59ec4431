"""Sessions: load -> update -> compare-and-set save. Knows no HTTP.

Every change to a session (step, state import, hyperparameter patch) goes through
`_change`, which reads the record, applies a pure-ish function, and writes back with
the store's compare-and-set, retrying a bounded number of times when another request
(in this process or another) got there first. Within one process, changes to one
session also queue on an asyncio lock, so retries only happen across processes.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from . import optim
from .codec import require_finite, vector_from_json
from .config import Settings
from .errors import Busy, Conflict, DescentError, Forbidden, InvalidInput, NotFound, PreconditionFailed, Unauthorized
from .federated import protocol
from .federated.config import FederationConfig
from .federated.rounds import RoundState, unwrap, wrap
from .optim import state as state_codec
from .session import Meta, Nonfinite, new_id, new_token, token_hash, token_session
from .store.base import Record, Store

PARAMS = "params"  # name of the held parameters inside the stored blob
T = TypeVar("T")
# Sessions this process wrote last are kept decoded, up to this many bytes of vectors:
# the next change tries its compare-and-set on them directly and skips a read of the
# whole blob. Correctness still rests on the compare-and-set alone: when another process
# wrote in between, the write fails and the change is redone from a fresh read.
RECENT_BYTES = 256 * 2**20


@dataclass
class Loaded:
    """A session as read from the store, decoded."""

    record: Record
    meta: Meta
    state: optim.State
    params: np.ndarray | None
    federation: RoundState | None = None  # federated sessions only

    @property
    def opt(self) -> optim.Optimizer:
        return optim.get(self.meta.optimizer)

    @property
    def state_dtype(self) -> np.dtype:
        return state_codec.DTYPES[self.meta.dtype]


def pack(state: optim.State, params: np.ndarray | None, dtype: np.dtype, dim: int,
         federation: RoundState | None = None) -> bytes:
    vectors = dict(state.vectors)
    if params is not None:
        vectors[PARAMS] = params
    blob = state_codec.to_bytes(optim.State(state.step, vectors, state.scalars), dtype, dim)
    return blob if federation is None else wrap(blob, federation, dim)


def unpack(blob: bytes) -> tuple[optim.State, np.ndarray | None, RoundState | None]:
    state_blob, federation = unwrap(blob)
    state, _, _ = state_codec.from_bytes(state_blob)
    params = state.vectors.pop(PARAMS, None)
    return state, params, federation


@dataclass
class StepResult:
    params: np.ndarray
    step: int
    skipped: bool
    meta: Meta


Decoder = Callable[[Meta], tuple[np.ndarray, "np.ndarray | None"]]


class Engine:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._recent: OrderedDict[str, Loaded] = OrderedDict()
        self._recent_bytes = 0

    # -- reading -----------------------------------------------------------------

    async def _load(self, sid: str, token: str | None, touch: bool = True) -> Loaded:
        """Read and authorise; `touch` restarts the session's idle TTL (writes do that anyway)."""
        record = await self.store.load(sid)
        if record is None:
            raise NotFound(f"no session {sid!r} (unknown, deleted or expired)")
        meta = Meta.from_bytes(record.meta)
        await self._authorize(meta, token)
        if touch:
            await self.store.touch(sid, meta.ttl_s)
        state, params, federation = unpack(record.blob)
        # The decoded state owns a copy of the vectors: drop the blob, so a large step
        # does not hold both until it returns.
        record = Record(record.revision, record.meta, b"")
        return Loaded(record, meta, state, params, federation)

    async def _authorize(self, meta: Meta, token: str | None) -> None:
        if not token:
            raise Unauthorized("this call needs 'Authorization: Bearer <session token>'")
        if meta.token_matches(token):
            return
        other = token_session(token)
        if other and other != meta.id:
            record = await self.store.load(other)
            if record is not None and Meta.from_bytes(record.meta).token_matches(token):
                raise Forbidden(f"this token belongs to another session, not to {meta.id!r}")
        raise Unauthorized("invalid session token")

    async def describe(self, sid: str, token: str | None) -> Meta:
        return (await self._load(sid, token)).meta

    async def params(self, sid: str, token: str | None) -> tuple[Meta, np.ndarray]:
        loaded = await self._load(sid, token)
        if loaded.params is None:
            raise InvalidInput("params", "this session does not hold parameters (the client sends them with each step)")
        return loaded.meta, loaded.params

    async def export_state(self, sid: str, token: str | None) -> Loaded:
        return await self._load(sid, token)

    # -- creating and deleting -----------------------------------------------------

    async def create(
        self,
        optimizer: dict[str, Any],
        dim: int | None,
        dtype: str,
        params: Any,
        nonfinite: Nonfinite,
        ttl_s: int | None,
        federation: FederationConfig | None = None,
    ) -> tuple[Meta, str]:
        opt = self._optimizer(optimizer)
        hp = self._resolve(opt, optimizer)
        np_dtype = state_codec.DTYPES[dtype]
        held = None
        if params is not None:
            n = len(params) if isinstance(params, list) else -1
            if dim is not None and n != dim:
                raise InvalidInput("params", f"params has {n} values but dim is {dim}")
            dim = n
            self._check_dim(dim)
            held = vector_from_json(params, "params", dim, np_dtype, self.settings.max_json_dim)
            require_finite(held, "params")
        if dim is None:
            raise InvalidInput("dim", "give dim, or params (server-held mode)")
        if federation is not None and held is None:
            raise InvalidInput("federation", "a federated session needs params: the server holds the global model")
        self._check_dim(dim)
        ttl = self.settings.session_ttl_s if ttl_s is None else ttl_s
        if ttl > self.settings.max_session_ttl_s:
            raise InvalidInput("ttl_s", f"ttl_s may be at most {self.settings.max_session_ttl_s}")
        sid = new_id()
        token = new_token(sid)
        meta = Meta(
            id=sid, token_sha256=token_hash(token), optimizer=opt.name, hyperparameters=hp,
            dim=dim, dtype=dtype, server_held=held is not None, nonfinite=nonfinite,
            ttl_s=ttl, created_at=time.time(),
        )
        rounds = None
        if federation is not None:
            seed = federation.dp.seed if federation.dp and federation.dp.seed is not None else secrets.randbits(63)
            rounds = protocol.start(meta, federation, seed, meta.created_at)
        state = opt.init(dim, np_dtype, hp)
        blob = await self._offload(dim, pack, state, held, np_dtype, dim, rounds)
        if not await self.store.create(sid, meta.to_bytes(), blob, ttl):
            raise Busy("session id collision; retry")  # 128 random bits: practically never
        return meta, token

    async def delete(self, sid: str, token: str | None) -> None:
        await self._load(sid, token, touch=False)
        self._take(sid)
        await self.store.delete(sid)

    # -- changing --------------------------------------------------------------------

    async def step(
        self,
        sid: str,
        token: str | None,
        decode: Decoder,
        if_match: int | None,
    ) -> StepResult:
        """One step. `decode(meta)` turns the request body into (grads, params or None)
        once the session's dim and dtype are known; it runs once, however many retries."""
        decoded: list[tuple[np.ndarray, np.ndarray | None]] = []

        def apply(s: Loaded) -> StepResult:
            if protocol.CONFIG in s.meta.extra:
                raise Conflict("this session is federated: send contributions to /contributions, not steps")
            if not decoded:
                decoded.append(decode(s.meta))
            grads, params = decoded[0]
            self._check_length(grads, "grads", s.meta.dim)
            if params is not None:
                self._check_length(params, "params", s.meta.dim)
            elif s.params is None:
                raise InvalidInput("params", "this session does not hold parameters: send params with grads")
            if params is not None:
                require_finite(params, "params")  # always: "skip" is for gradients, as in torch's GradScaler
            current = s.params if params is None else params.astype(s.state_dtype, copy=True)
            if not np.isfinite(grads).all():
                if s.meta.nonfinite == "reject":
                    require_finite(grads, "grads")
                kept = current if s.params is None else s.params  # a skipped step changes no held params
                return StepResult(kept.copy(), s.meta.step, True, s.meta)
            optim.apply(s.opt, s.meta.hyperparameters, current, grads, s.state)
            s.meta.step = s.state.step
            if s.meta.server_held:
                s.params = current
                # The engine keeps s.params for the next step; the response gets its own copy.
                return StepResult(current.copy(), s.state.step, False, s.meta)
            return StepResult(current, s.state.step, False, s.meta)

        return await self._change(sid, token, apply, if_match=if_match, write_if=lambda r: not r.skipped)

    async def import_state(
        self, sid: str, token: str | None, step: int, state: dict[str, Any], params: Any, name: Any = None
    ) -> Loaded:
        def apply(s: Loaded) -> Loaded:
            if name is not None and name != s.meta.optimizer:
                raise InvalidInput("optimizer.name", f"state is for {name!r}, this session runs {s.meta.optimizer!r}")
            opt = s.opt
            try:
                new_state = state_codec.from_json(state, step, s.state_dtype, s.meta.dim, opt.vectors, opt.scalars)
            except optim.StateError as exc:
                raise InvalidInput(exc.field, exc.message) from None
            fresh = opt.init(s.meta.dim, s.state_dtype, s.meta.hyperparameters)
            missing = set(fresh.vectors) - set(new_state.vectors)
            if missing and step > 0:
                raise InvalidInput("state", f"state is missing {', '.join(sorted(missing))}")
            for vector in missing:
                new_state.vectors[vector] = fresh.vectors[vector]
            for scalar, value in fresh.scalars.items():
                new_state.scalars.setdefault(scalar, value)
            if s.meta.server_held:
                if params is None:
                    raise InvalidInput("params", "this session holds parameters: the state must include params")
                s.params = vector_from_json(params, "params", s.meta.dim, s.state_dtype, self.settings.max_json_dim)
                require_finite(s.params, "params")
            elif params is not None:
                raise InvalidInput("params", "this session does not hold parameters: leave params out")
            s.state = new_state
            s.meta.step = step
            return s

        return await self._change(sid, token, apply)

    async def patch(self, sid: str, token: str | None, changes: dict[str, Any]) -> Meta:
        def apply(s: Loaded) -> Meta:
            if "name" in changes and changes["name"] != s.meta.optimizer:
                raise InvalidInput("optimizer.name", "the optimizer of a session cannot change")
            hp = self._resolve(s.opt, changes, base=s.meta.hyperparameters)
            fresh = s.opt.init(s.meta.dim, s.state_dtype, hp)
            for name, vector in fresh.vectors.items():  # e.g. amsgrad switched on mid-run
                s.state.vectors.setdefault(name, vector)
            s.meta.hyperparameters = hp
            return s.meta

        return await self._change(sid, token, apply)

    # -- the one primitive -------------------------------------------------------------

    async def _change(
        self,
        sid: str,
        token: str | None,
        fn: Callable[[Loaded], T],
        if_match: int | None = None,
        write_if: Callable[[T], bool] = lambda _: True,
    ) -> T:
        lock = self._locks.get(sid)
        if lock is None:
            lock = self._locks[sid] = asyncio.Lock()
        async with lock:
            for attempt in range(self.settings.step_retries):
                s = self._take(sid) if attempt == 0 else None
                recent = s is not None
                try:
                    if s is None:
                        s = await self._load(sid, token, touch=False)
                    else:
                        await self._authorize(s.meta, token)
                    if if_match is not None and s.meta.step != if_match:
                        raise PreconditionFailed(
                            f"If-Match expected step {if_match}, the session is at step {s.meta.step}",
                            step=s.meta.step,
                        )
                    result = await self._offload(s.meta.dim, fn, s)
                except DescentError:
                    if recent:  # perhaps only because another process changed the session: read it
                        continue
                    raise
                if not write_if(result):
                    await self.store.touch(sid, s.meta.ttl_s)
                    self._remember(sid, s, s.record.revision)
                    return result
                blob = await self._offload(s.meta.dim, pack, s.state, s.params, s.state_dtype, s.meta.dim,
                                           s.federation)
                if await self.store.replace(sid, s.record.revision, s.meta.to_bytes(), blob, s.meta.ttl_s):
                    self._remember(sid, s, s.record.revision + 1)
                    return result
                await asyncio.sleep(0)
        raise Busy(f"session {sid!r} is too busy: {self.settings.step_retries} attempts lost the race; retry")

    def _remember(self, sid: str, s: Loaded, revision: int) -> None:
        """Keep `s`, now stored at `revision`, for this process's next change of `sid`."""
        if s.federation is not None:
            return  # round bookkeeping is always read fresh
        size = _nbytes(s)
        if size > RECENT_BYTES // 4:
            return
        s.record = Record(revision, b"", b"")
        self._recent[sid] = s
        self._recent_bytes += size
        while self._recent_bytes > RECENT_BYTES:
            self._take(next(iter(self._recent)))

    def _take(self, sid: str) -> Loaded | None:
        s = self._recent.pop(sid, None)
        if s is not None:
            self._recent_bytes -= _nbytes(s)
        return s

    # -- helpers -----------------------------------------------------------------------

    async def _offload(self, dim: int, fn: Callable[..., T], *args: Any) -> T:
        """Run numpy work inline for small vectors; in a worker thread for large ones,
        so that a long step does not stall every other request on the event loop."""
        if dim >= self.settings.offload_min_dim:
            return await run_in_threadpool(fn, *args)
        return fn(*args)

    @staticmethod
    def _optimizer(block: dict[str, Any]) -> optim.Optimizer:
        if "name" not in block:
            raise InvalidInput("optimizer.name", "optimizer.name is required")
        try:
            return optim.get(block["name"])
        except optim.HyperparameterError as exc:
            raise InvalidInput("optimizer.name", exc.message) from None

    @staticmethod
    def _resolve(opt: optim.Optimizer, given: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return opt.resolve(given, base)
        except optim.HyperparameterError as exc:
            raise InvalidInput(f"optimizer.{exc.field}", exc.message) from None

    def _check_dim(self, dim: int) -> None:
        if dim < 1 or dim > self.settings.max_dim:
            raise InvalidInput("dim", f"dim must be between 1 and {self.settings.max_dim}, got {dim}")

    @staticmethod
    def _check_length(arr: np.ndarray, field: str, dim: int) -> None:
        if arr.shape != (dim,):
            raise InvalidInput(field, f"{field} has {arr.size} values, expected {dim}")


def _nbytes(s: Loaded) -> int:
    return sum(v.nbytes for v in s.state.vectors.values()) + (0 if s.params is None else s.params.nbytes)
