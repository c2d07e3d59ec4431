"""`RemoteOptimizer`: a `torch.optim.Optimizer` whose arithmetic and state live on a Descent server."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from .core import Encoding, Retry
from .session import DEFAULT_TIMEOUT_S, Session, http_client

# torch's switches between kernels that compute the same thing: meaningless remotely.
IMPLEMENTATION_FLAGS = ("foreach", "fused", "capturable", "differentiable")
NOT_HYPERPARAMETERS = ("params", "param_names", "initial_lr")
DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def _flatten(tensors: Iterable[torch.Tensor]) -> np.ndarray:
    return torch.cat([t.detach().reshape(-1) for t in tensors]).cpu().numpy()


def _plain(value: Any) -> Any:
    """A hyperparameter as the server's JSON shows it (tuples as lists, tensors as numbers)."""
    if isinstance(value, torch.Tensor):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


class RemoteOptimizer(torch.optim.Optimizer):
    """A drop-in for a `torch.optim` optimizer that steps on a Descent server.

        opt = RemoteOptimizer(model.parameters(), "adamw", url="http://127.0.0.1:8000", lr=1e-3)

    computes the same run as `torch.optim.AdamW(model.parameters(), lr=1e-3)` (the server
    replicates torch's CPU arithmetic; float32 agrees to within rounding of the square root).

    Mapping. Each param group becomes one server session over the group's parameters
    flattened and concatenated in order, so groups with their own hyperparameters (say,
    no weight decay on biases) are one session each. `step()` sends each group's
    flattened gradients (binary) and copies the new parameters back into the tensors.
    By default the server holds the parameters (`server_held=True`): only gradients travel
    up, and a step whose response is lost is recovered without applying it twice. If the
    local parameters were changed between steps (e.g. `model.load_state_dict`), the next
    step sends them along and the server adopts them. Creating a server-held session sends
    the initial parameters as JSON, so a group larger than the server's
    `DESCENT_MAX_JSON_DIM` needs `server_held=False` (parameters and gradients are then
    sent with every step; a lost step response then raises `ResponseLost`).

    Hyperparameters take torch's names and defaults (the server resolves the defaults and
    they are written into `param_groups`). Changing `group["lr"]` (by hand or with an
    `lr_scheduler`) is sent to the server (PATCH) before the next step. torch's kernel
    switches `foreach`, `fused`, `capturable`, `differentiable` are accepted when unset.

    Gradients that are None. torch skips a parameter whose `.grad` is None (its state and
    step count do not move). A group here has one step count, so: a group where every
    gradient is None is skipped, as torch would; a group where only some are None raises
    `RuntimeError`, because sending zeros instead is not the same for most optimizers
    (Adam's moments decay, weight decay still applies). Put such parameters in a group of
    their own, or leave them out.

    `state_dict()` / `load_state_dict()` use torch's format (per-parameter state under
    torch's names, `step` included), fetched from and pushed to the server's state
    endpoint: a state dict of the local torch optimizer of the same name loads here and
    vice versa. `self.state` stays empty between those calls; the server holds the state.
    Call `delete()` to remove the sessions from the server when done (they otherwise
    expire after the server's TTL).
    """

    def __init__(self, params: Any, optimizer: str, *, url: str, api_key: str | None = None,
                 server_held: bool = True, encoding: Encoding = "binary", timeout_s: float = DEFAULT_TIMEOUT_S,
                 retry: Retry | None = None, **hyperparameters: Any) -> None:
        self.name = optimizer
        self.url = url
        self.sessions: list[Session] = []
        self._options = {"api_key": api_key, "encoding": encoding, "retry": retry}
        self._server_held = server_held
        self._held: list[np.ndarray | None] = []  # per group: the parameters the server holds
        self._sent: list[dict[str, Any]] = []  # per group: the hyperparameters the server has
        self._client = http_client(url.rstrip("/"), timeout_s)
        try:
            super().__init__(params, dict(hyperparameters))
        except BaseException:
            self.delete()
            raise

    # -- groups <-> sessions ---------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        dtypes = {p.dtype for p in group["params"]}
        if len(dtypes) != 1 or next(iter(dtypes)) not in DTYPES:
            raise TypeError(f"a param group must be all float32 or all float64 tensors, got {sorted(map(str, dtypes))}")
        hyperparameters = {}
        for key, value in group.items():
            if key in NOT_HYPERPARAMETERS:
                continue
            if key in IMPLEMENTATION_FLAGS:
                if value:
                    raise ValueError(f"{key}={value!r} selects a torch kernel; it has no meaning for a remote optimizer")
                continue
            hyperparameters[key] = _plain(value)
        flat = _flatten(group["params"])
        session = Session.create(
            self.url, self.name, dim=flat.size, params=flat if self._server_held else None,
            dtype=DTYPES[next(iter(dtypes))], client=self._client, **self._options, **hyperparameters,
        )
        resolved = {k: v for k, v in session.optimizer.items() if k != "name"}
        group.update({k: tuple(v) if isinstance(v, list) else v for k, v in resolved.items()})
        self.sessions.append(session)
        self._sent.append(resolved)
        self._held.append(flat if self._server_held else None)

    def _sync_hyperparameters(self, index: int) -> None:
        group, sent = self.param_groups[index], self._sent[index]
        changes = {k: _plain(group[k]) for k in sent if _plain(group[k]) != sent[k]}
        if changes:
            self.sessions[index].patch(**changes)
            sent.update(changes)

    # -- stepping -------------------------------------------------------------------

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stepping = [index for index, group in enumerate(self.param_groups) if self._has_gradients(index, group)]
        for index in stepping:  # checked all first, so a refused step changes no group
            params = self.param_groups[index]["params"]
            self._sync_hyperparameters(index)
            flat = _flatten(params)
            held = self._held[index]
            send_params = held is None or not np.array_equal(flat, held)
            new = self.sessions[index].step(_flatten(p.grad for p in params), flat if send_params else None)
            self._write(params, new)
            if self._server_held:
                self._held[index] = new
        return loss

    @staticmethod
    def _has_gradients(index: int, group: dict[str, Any]) -> bool:
        """True if every parameter has a gradient, False if none has; else refuse (see the class docstring)."""
        params = group["params"]
        missing = [p.grad is None for p in params]
        if all(missing):
            return False
        if any(missing):
            raise RuntimeError(
                f"param group {index}: {sum(missing)} of {len(params)} parameters have no gradient. "
                "A group is one server session with one step count, and a zero gradient is not "
                "the same as no step; put parameters that may lack gradients in their own group"
            )
        if any(p.grad.is_sparse for p in params):
            raise RuntimeError("sparse gradients are not supported")
        return True

    @staticmethod
    @torch.no_grad()
    def _write(params: list[torch.Tensor], flat: np.ndarray) -> None:
        values = torch.from_numpy(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.copy_(values[offset:offset + n].reshape(p.shape))
            offset += n

    # -- state in torch's format ------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        try:
            for index, group in enumerate(self.param_groups):
                self._fetch_state(index, group["params"])
            return super().state_dict()
        finally:
            self.state.clear()

    def _fetch_state(self, index: int, params: list[torch.Tensor]) -> None:
        doc = self.sessions[index].state()
        if doc["step"] == 0 and not doc["state"]:
            return  # never stepped: torch has no state for these parameters either
        offset = 0
        for p in params:
            n = p.numel()
            entry: dict[str, Any] = {"step": torch.tensor(float(doc["step"]), dtype=torch.float32)}
            for name, value in doc["state"].items():
                if isinstance(value, np.ndarray):
                    entry[name] = torch.from_numpy(value[offset:offset + n].copy()).reshape(p.shape).to(p.device)
                else:
                    entry[name] = torch.tensor(value, dtype=torch.float64)
            self.state[p] = entry
            offset += n

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        try:
            for index, group in enumerate(self.param_groups):
                self._sync_hyperparameters(index)
                document = self._state_document(index, group["params"])
                self.sessions[index].load_state(document)
                if self._server_held:
                    self._held[index] = document["params"]
        finally:
            self.state.clear()

    def _state_document(self, index: int, params: list[torch.Tensor]) -> dict[str, Any]:
        """One group's per-parameter torch state as the session's flat state document."""
        entries = [self.state.get(p, {}) for p in params]
        steps = {int(e["step"]) for e in entries if "step" in e}
        if len(steps) > 1:
            raise ValueError(f"param group {index}: its parameters have different step counts {sorted(steps)}; "
                             "a group is one session with one step count")
        names = sorted({name for e in entries for name in e if name != "step"})
        state: dict[str, Any] = {}
        for name in names:
            if any(name not in e for e in entries):
                raise ValueError(f"param group {index}: {name!r} is in the state of some parameters only")
            values = [e[name] for e in entries]
            if isinstance(values[0], torch.Tensor) and values[0].dim() > 0:
                state[name] = _flatten(values)
            else:
                state[name] = float(values[0])
        document: dict[str, Any] = {"step": steps.pop() if steps else 0, "optimizer": {"name": self.name},
                                    "state": state}
        if self._server_held:
            document["params"] = _flatten(params)
        return document

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; the sessions stay on the server."""
        self._client.close()

    def delete(self) -> None:
        """Delete every group's session from the server, then close the connection."""
        try:
            for session in self.sessions:
                session.delete()
        finally:
            self.sessions.clear()
            self.close()
