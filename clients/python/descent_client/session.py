"""`Session` and `AsyncSession`: the I/O around `core.SessionCore`'s flows.

Each session object owns one `httpx` client (so its calls reuse one keep-alive
connection) unless it is handed a client to share. Leaving a `with` block closes the
connection; it does not delete the session on the server (call `delete()` for that).
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Self

import httpx
import numpy as np

from .core import Encoding, Flow, Pause, Retry, SessionCore, T

DEFAULT_TIMEOUT_S = 60.0


def _creation_body(optimizer: str, dim: int | None, params: Any, dtype: str, nonfinite: str | None,
                   ttl_s: int | None, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"optimizer": {"name": optimizer, **hyperparameters}, "dtype": dtype}
    if dim is not None:
        body["dim"] = dim
    if params is not None:
        body["params"] = np.asarray(params, dtype=np.float64).reshape(-1)
    if nonfinite is not None:
        body["nonfinite"] = nonfinite
    if ttl_s is not None:
        body["ttl_s"] = ttl_s
    return body


def _timeout(timeout_s: float) -> httpx.Timeout:
    return httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))


# httpx sends a request's headers and body in separate writes; without TCP_NODELAY,
# Nagle's algorithm holds the body until the server's delayed ACK (~40 ms per call).
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def http_client(url: str, timeout_s: float) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=_timeout(timeout_s), transport=httpx.HTTPTransport(socket_options=NODELAY))


def async_http_client(url: str, timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=_timeout(timeout_s),
                             transport=httpx.AsyncHTTPTransport(socket_options=NODELAY))


class Session(SessionCore):
    """One optimizer session on a Descent server.

    >>> s = Session.create("http://127.0.0.1:8000", "adam", params=[0.5, -1.0], lr=0.01)
    >>> new_params = s.step([0.1, -0.2])        # numpy array; s.step_count == 1
    """

    def __init__(self, url: str, *, encoding: Encoding = "binary", timeout_s: float = DEFAULT_TIMEOUT_S,
                 retry: Retry | None = None, conditional_steps: bool = True,
                 client: httpx.Client | None = None) -> None:
        super().__init__(url, encoding, retry, conditional_steps)
        self._owns_client = client is None
        self._client = client or http_client(self.url, timeout_s)

    @classmethod
    def create(cls, url: str, optimizer: str = "adam", *, dim: int | None = None, params: Any = None,
               dtype: str = "float32", api_key: str | None = None, nonfinite: str | None = None,
               ttl_s: int | None = None, encoding: Encoding = "binary", timeout_s: float = DEFAULT_TIMEOUT_S,
               retry: Retry | None = None, conditional_steps: bool = True, client: httpx.Client | None = None,
               **hyperparameters: Any) -> Self:
        """Create a session. With `params` the server holds the parameters; else give `dim`
        and send the parameters with every step. Hyperparameters take torch.optim's names."""
        self = cls(url, encoding=encoding, timeout_s=timeout_s, retry=retry,
                   conditional_steps=conditional_steps, client=client)
        body = _creation_body(optimizer, dim, params, dtype, nonfinite, ttl_s, hyperparameters)
        try:
            self._run(self._create(body, api_key))
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def attach(cls, url: str, id: str, token: str, **options: Any) -> Self:
        """An existing session, by id and token (reads its description)."""
        self = cls(url, **options)
        self.id, self.token = id, token
        try:
            self.describe()
        except BaseException:
            self.close()
            raise
        return self

    def _run(self, flow: Flow[T]) -> T:
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                action = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            if isinstance(action, Pause):
                time.sleep(action.seconds)
                continue
            try:
                reply = self._client.request(action.method, action.path, headers=action.headers,
                                             content=action.content)
            except httpx.TransportError as exc:
                error = exc

    def step(self, grads: Any, params: Any = None, if_match: int | None = None) -> np.ndarray:
        """One optimizer step; returns the new parameters. `params` is required unless the
        server holds them (then it replaces them). `if_match` defaults to the step count
        this object last saw (see `conditional_steps`)."""
        return self._run(self._step(grads, params, if_match))

    def params(self) -> np.ndarray:
        """The server-held parameters."""
        return self._run(self._params())

    def describe(self) -> dict[str, Any]:
        """The session's description (optimizer with resolved hyperparameters, dim, dtype, step...)."""
        return self._run(self._describe())

    def state(self) -> dict[str, Any]:
        """The whole optimizer state: {"step", "optimizer", "state": {name: array | float}, "params"?}."""
        return self._run(self._state())

    def load_state(self, document: dict[str, Any]) -> dict[str, Any]:
        """Replace the optimizer state (same shape as `state()` returns, or a torch state converted to it)."""
        return self._run(self._load_state(document))

    def patch(self, **hyperparameters: Any) -> dict[str, Any]:
        """Change hyperparameters mid-run, e.g. `patch(lr=1e-4)`; returns the description."""
        return self._run(self._patch(hyperparameters))

    def delete(self) -> None:
        """Delete the session and all its state on the server."""
        self._run(self._delete())

    def close(self) -> None:
        """Close the connection (the session stays on the server)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSession(SessionCore):
    """`Session` for asyncio: the same methods, awaited."""

    def __init__(self, url: str, *, encoding: Encoding = "binary", timeout_s: float = DEFAULT_TIMEOUT_S,
                 retry: Retry | None = None, conditional_steps: bool = True,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(url, encoding, retry, conditional_steps)
        self._owns_client = client is None
        self._client = client or async_http_client(self.url, timeout_s)

    @classmethod
    async def create(cls, url: str, optimizer: str = "adam", *, dim: int | None = None, params: Any = None,
                     dtype: str = "float32", api_key: str | None = None, nonfinite: str | None = None,
                     ttl_s: int | None = None, encoding: Encoding = "binary", timeout_s: float = DEFAULT_TIMEOUT_S,
                     retry: Retry | None = None, conditional_steps: bool = True,
                     client: httpx.AsyncClient | None = None, **hyperparameters: Any) -> Self:
        self = cls(url, encoding=encoding, timeout_s=timeout_s, retry=retry,
                   conditional_steps=conditional_steps, client=client)
        body = _creation_body(optimizer, dim, params, dtype, nonfinite, ttl_s, hyperparameters)
        try:
            await self._run(self._create(body, api_key))
        except BaseException:
            await self.aclose()
            raise
        return self

    @classmethod
    async def attach(cls, url: str, id: str, token: str, **options: Any) -> Self:
        self = cls(url, **options)
        self.id, self.token = id, token
        try:
            await self.describe()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _run(self, flow: Flow[T]) -> T:
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                action = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            if isinstance(action, Pause):
                await asyncio.sleep(action.seconds)
                continue
            try:
                reply = await self._client.request(action.method, action.path, headers=action.headers,
                                                   content=action.content)
            except httpx.TransportError as exc:
                error = exc

    async def step(self, grads: Any, params: Any = None, if_match: int | None = None) -> np.ndarray:
        return await self._run(self._step(grads, params, if_match))

    async def params(self) -> np.ndarray:
        return await self._run(self._params())

    async def describe(self) -> dict[str, Any]:
        return await self._run(self._describe())

    async def state(self) -> dict[str, Any]:
        return await self._run(self._state())

    async def load_state(self, document: dict[str, Any]) -> dict[str, Any]:
        return await self._run(self._load_state(document))

    async def patch(self, **hyperparameters: Any) -> dict[str, Any]:
        return await self._run(self._patch(hyperparameters))

    async def delete(self) -> None:
        await self._run(self._delete())

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
