"""The session's calls as sans-I/O flows, shared by `Session` and `AsyncSession`.

A flow is a generator that yields what to do next -- an HTTP `Call`, or a `Pause`
before a retry -- and is sent the `httpx.Response` back (or has the transport error
thrown into it). Retries, encodings and the step-recovery rule live here once; the two
session classes only perform the I/O (`_run`).

Retry rule. GET, PUT state, PATCH and DELETE are idempotent: they are retried with
exponential backoff on connection errors and 5xx. POST (create, step) is retried only
where that cannot apply it twice: when the connection never opened, on 503 (the server
says nothing changed), and, for a step sent with `If-Match: "<n>"`, after an ambiguous
failure (connection dropped after sending, 5xx): the client asks the server for its step
count; past `n` means the step landed (its parameters are fetched again for server-held
sessions), still `n` means it did not and it is sent again. `If-Match` also makes the
resend itself harmless: had the first attempt landed after all, it would get 412.
"""

from __future__ import annotations

import json
import random
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx
import numpy as np

from .errors import ResponseLost, raise_for_problem

OCTET = "application/octet-stream"
JSON = "application/json"
DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
Encoding = Literal["binary", "json"]

T = TypeVar("T")


@dataclass
class Call:
    """One HTTP request, relative to the session's base URL."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


@dataclass
class Pause:
    seconds: float


Flow = Generator["Call | Pause", Any, T]


@dataclass(frozen=True)
class Retry:
    """`attempts` tries in all; the k-th wait is backoff_s * 2**k (capped, jittered by 50-100%),
    or the server's Retry-After when it sends one."""

    attempts: int = 5
    backoff_s: float = 0.1
    max_backoff_s: float = 10.0

    def pause(self, attempt: int, response: httpx.Response | None = None) -> Pause:
        after = response.headers.get("retry-after") if response is not None else None
        if after is not None and after.isdigit():
            return Pause(min(float(after), self.max_backoff_s))
        return Pause(min(self.backoff_s * 2**attempt, self.max_backoff_s) * random.uniform(0.5, 1.0))


def _unsent(exc: httpx.TransportError) -> bool:
    """True when the request certainly never reached the server."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def request(call: Call, retry: Retry, idempotent: bool) -> Flow[httpx.Response]:
    """Send `call`, retrying as the module docstring says; raise typed errors for 4xx/5xx."""
    for attempt in range(retry.attempts):
        last = attempt == retry.attempts - 1
        try:
            response = yield call
        except httpx.TransportError as exc:
            if last or not (idempotent or _unsent(exc)):
                raise
            yield retry.pause(attempt)
            continue
        status = response.status_code
        if not last and (status == 503 or (idempotent and status >= 500)):
            yield retry.pause(attempt, response)
            continue
        raise_for_problem(response)
        return response
    raise AssertionError("unreachable")


def json_body(data: Any) -> bytes:
    """JSON with numpy vectors as lists (repr of each float: exact for float32 and float64)."""
    return json.dumps(data, default=_plain, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def step_of(response: httpx.Response) -> int | None:
    tag = response.headers.get("etag", "").removeprefix("W/").strip('"')
    return int(tag) if tag.isdigit() else None


class SessionCore:
    """What a session knows and the flows of its calls; no I/O here."""

    def __init__(self, url: str, encoding: Encoding = "binary", retry: Retry | None = None,
                 conditional_steps: bool = True) -> None:
        if encoding not in ("binary", "json"):
            raise ValueError(f"encoding must be 'binary' or 'json', not {encoding!r}")
        self.url = url.rstrip("/")
        self.encoding: Encoding = encoding
        self.retry = retry or Retry()
        self.conditional_steps = conditional_steps
        self.id = ""
        self.token = ""
        self.info: dict[str, Any] = {}
        self.step_count = 0
        self.skipped = False  # whether the last step was skipped (nonfinite: "skip")

    # -- what the session is ---------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self.info["dim"])

    @property
    def dtype(self) -> np.dtype:
        return DTYPES[self.info["dtype"]]

    @property
    def server_held(self) -> bool:
        return bool(self.info["server_held"])

    @property
    def optimizer(self) -> dict[str, Any]:
        """The optimizer name and every resolved hyperparameter, as the server last reported them."""
        return dict(self.info["optimizer"])

    def __repr__(self) -> str:
        name = self.info.get("optimizer", {}).get("name", "?")
        return f"<{type(self).__name__} {self.id} {name} dim={self.info.get('dim')} step={self.step_count}>"

    # -- building blocks ---------------------------------------------------------------

    def _path(self, suffix: str = "") -> str:
        return f"/v1/sessions/{self.id}{suffix}"

    def _auth(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def _accept(self) -> dict[str, str]:
        return {"Accept": OCTET if self.encoding == "binary" else JSON}

    def _vector(self, values: Any, name: str) -> np.ndarray:
        arr = np.ascontiguousarray(np.asarray(values, dtype=self.dtype).reshape(-1))
        if arr.size != self.dim:
            raise ValueError(f"{name} has {arr.size} values, the session's dim is {self.dim}")
        return arr

    def _params_from(self, response: httpx.Response) -> np.ndarray:
        """New parameters from a step/params response, binary or JSON (the server answers in
        bytes when a vector is too long for JSON, whatever was asked)."""
        if response.headers.get("content-type", "").startswith(OCTET):
            raw = np.frombuffer(response.content, dtype=self.dtype)
        else:
            body = response.json()
            self.skipped = bool(body.get("skipped", False))
            raw = np.asarray(body["params"], dtype=self.dtype)
        return raw.astype(self.dtype.newbyteorder("="), copy=True)

    def _remember(self, info: dict[str, Any]) -> dict[str, Any]:
        self.info = {k: v for k, v in info.items() if k != "token"}
        self.step_count = int(info["step"])
        return self.info

    # -- flows -------------------------------------------------------------------------

    def _create(self, body: dict[str, Any], api_key: str | None) -> Flow[dict[str, Any]]:
        headers = {"Content-Type": JSON}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        response = yield from request(Call("POST", "/v1/sessions", headers, json_body(body)), self.retry, False)
        created = response.json()
        self.id, self.token = created["id"], created["token"]
        return self._remember(created)

    def _describe(self) -> Flow[dict[str, Any]]:
        response = yield from request(Call("GET", self._path(), self._auth()), self.retry, True)
        return self._remember(response.json())

    def _params(self) -> Flow[np.ndarray]:
        response = yield from request(Call("GET", self._path("/params"), self._auth(self._accept())), self.retry, True)
        step = step_of(response)
        if step is not None:
            self.step_count = step
        return self._params_from(response)

    def _step(self, grads: Any, params: Any = None, if_match: int | None = None) -> Flow[np.ndarray]:
        g = self._vector(grads, "grads")
        p = None if params is None else self._vector(params, "params")
        if p is None and not self.server_held:
            raise ValueError("this session does not hold the parameters: pass params with the grads")
        expected = if_match if if_match is not None else (self.step_count if self.conditional_steps else None)
        headers = self._auth(self._accept())
        if expected is not None:
            headers["If-Match"] = f'"{expected}"'
        if self.encoding == "binary":
            headers["Content-Type"] = OCTET
            content = g.tobytes() if p is None else p.tobytes() + g.tobytes()
        else:
            headers["Content-Type"] = JSON
            content = json_body({"grads": g} if p is None else {"grads": g, "params": p})
        call = Call("POST", self._path("/step"), headers, content)

        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = yield call
            except httpx.TransportError as exc:
                if last:
                    raise
                if _unsent(exc):
                    yield self.retry.pause(attempt)
                    continue
                if expected is None:
                    raise  # sent without If-Match: no way to tell whether it was applied
            else:
                if response.status_code == 503 and not last:
                    yield self.retry.pause(attempt, response)  # Busy: the server applied nothing
                    continue
                if response.status_code < 500 or last or expected is None:
                    return self._stepped(response)
            # Ambiguous (dropped after sending, or 5xx): ask the server whether it landed.
            now = int((yield from self._describe())["step"])
            if now > expected:
                self.skipped = False
                if self.server_held:
                    return (yield from self._params())
                raise ResponseLost(
                    f"step {expected + 1} was applied on the server (now at step {now}) but its response "
                    "was lost; this session does not hold the parameters, so they cannot be fetched again",
                    now,
                )
            yield self.retry.pause(attempt)
        raise AssertionError("unreachable")

    def _stepped(self, response: httpx.Response) -> np.ndarray:
        raise_for_problem(response)
        self.skipped = response.headers.get("descent-skipped") is not None
        new = self._params_from(response)
        step = step_of(response)
        if step is not None:
            self.step_count = step
        return new

    def _state(self) -> Flow[dict[str, Any]]:
        response = yield from request(Call("GET", self._path("/state"), self._auth()), self.retry, True)
        return self._state_document(response)

    def _load_state(self, document: dict[str, Any]) -> Flow[dict[str, Any]]:
        call = Call("PUT", self._path("/state"), self._auth({"Content-Type": JSON}), json_body(document))
        response = yield from request(call, self.retry, True)
        return self._state_document(response)

    def _state_document(self, response: httpx.Response) -> dict[str, Any]:
        """The state document with vectors as numpy arrays of the session dtype."""
        doc = response.json()
        doc["state"] = {k: v if isinstance(v, (int, float)) else np.asarray(v, dtype=self.dtype.newbyteorder("="))
                        for k, v in doc["state"].items()}
        if doc.get("params") is not None:
            doc["params"] = np.asarray(doc["params"], dtype=self.dtype.newbyteorder("="))
        self.step_count = int(doc["step"])
        return doc

    def _patch(self, changes: dict[str, Any]) -> Flow[dict[str, Any]]:
        call = Call("PATCH", self._path(), self._auth({"Content-Type": JSON}), json_body({"optimizer": changes}))
        response = yield from request(call, self.retry, True)
        return self._remember(response.json())

    def _delete(self) -> Flow[None]:
        call = Call("DELETE", self._path(), self._auth())
        maybe_deleted = False  # an earlier attempt may have landed: then 404 means done
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = yield call
            except httpx.TransportError as exc:
                if last:
                    raise
                maybe_deleted = maybe_deleted or not _unsent(exc)
                yield self.retry.pause(attempt)
                continue
            if response.status_code >= 500 and not last:
                maybe_deleted = True
                yield self.retry.pause(attempt, response)
                continue
            if response.status_code == 404 and maybe_deleted:
                return None
            raise_for_problem(response)
            return None
        raise AssertionError("unreachable")
