"""The rules of a federated session, as pure functions on a loaded session.

`accept` counts one contribution (or refuses it, changing nothing) and closes the round
when it is complete; `close_if_due` closes a sync round whose timeout has passed. Both
only mutate the `Loaded` they are given; the coordinator writes it back with the
engine's compare-and-set, so a round's aggregate is computed and applied exactly once
however many workers race (the loser of the race re-reads and finds the round closed).

From contributions to the server optimizer's gradient, at a round's close:

    u_i   = update_i                          (gradient, delta)
          = update_i - x_{v_i}                (params: x_v the global params of version v_i)
    u_i   = clip(u_i, C)                      (dp)
    u_i   = s(tau_i) * u_i                    (buffered, async: staleness weight, tau_i = t - v_i)
    a     = rule(u_1..u_K)                    (mean weighted by num_examples, median, ...)
    a     = a + N(0, (z C / K)^2)             (dp noise, rule mean)
    g     = a                                 (gradient)
          = -a                                (delta, params: the pseudo-gradient)
    x     = optimizer step on (x, g)

The mean divides by the sum of num_examples, not by the staleness-weighted sum: as in
FedBuff, a stale buffer moves the model less. In async mode (buffer of one) the step is
x + lr * s(tau) * u with sgd: FedAsync's mixing, but with the delta against the client's
starting version (FedAsync mixes x_new with the current x).

So with contribution delta (or params), `sgd` lr 1 is FedAvg (McMahan et al. 2017),
`sgd` with momentum FedAvgM, and `adagrad`, `adam`, `yogi` are FedAdagrad, FedAdam and
FedYogi (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2), with
Reddi's names: eta = lr, tau = eps, beta1/beta2 = betas. Where they differ:
  - Reddi's tau is added to sqrt(v_t); torch's Adam adds eps to sqrt(v_t / (1 - beta2^t))
    and bias-corrects m, which Algorithm 2 does not: the first steps of our FedAdam are
    Algorithm 2's with m/(1-beta1^t) and v/(1-beta2^t). Yogi (optax's) does the same.
  - Algorithm 2 starts v at v_{-1} >= tau^2; torch's Adam starts at 0; our yogi starts
    both m and v at `initial_accumulator_value` (optax: 1e-6); adagrad's `sum` starts at
    `initial_accumulator_value` (Reddi's v_{-1}).
  - Algorithm 2's FedAdagrad also keeps momentum m_t; torch's Adagrad has none, so our
    FedAdagrad is Algorithm 2's with beta1 = 0 (exactly).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from .. import optim
from ..errors import Conflict, InvalidInput
from . import aggregate, privacy, staleness
from .config import FederationConfig
from .rounds import F64, RoundState

if TYPE_CHECKING:
    from ..engine import Loaded
    from ..session import Meta

CONFIG = "federation"  # meta.extra key: the resolved federation block
DUE_AT = "due_at"  # meta.extra key: when the open sync round may close by timeout (or null)


@dataclass
class Contribution:
    client_id: str
    version: int
    num_examples: int
    update: np.ndarray  # in the session's dtype, `dim` values
    metrics: dict[str, float] = field(default_factory=dict)
    key: str | None = None  # Idempotency-Key

    def digest(self) -> str:
        """Fingerprint of the request, so a reused Idempotency-Key with other content is caught."""
        h = hashlib.sha256(orjson.dumps([self.client_id, self.version, self.num_examples, self.metrics]))
        h.update(np.ascontiguousarray(self.update).data)
        return h.hexdigest()


@dataclass
class Outcome:
    status: int  # 200: this contribution made the server step; 202: counted, round still open
    body: dict[str, Any]  # version, round, received, needed
    params: np.ndarray | None = None  # the new global params (200)
    replayed: bool = False  # an Idempotency-Key retry answered from its receipt; nothing changed
    closed: dict[str, Any] | None = None  # the history entry of the round this closed
    staleness: int = 0
    mode: str = "sync"


def config_of(meta: "Meta") -> FederationConfig:
    raw = meta.extra.get(CONFIG)
    if raw is None:
        raise Conflict(f"session {meta.id!r} is not federated (create it with params and a federation block)")
    return _parse(orjson.dumps(raw))


@lru_cache(maxsize=256)
def _parse(raw: bytes) -> FederationConfig:
    return FederationConfig.model_validate_json(raw)


def start(meta: "Meta", config: FederationConfig, noise_seed: int, now: float) -> RoundState:
    """Make `meta` federated; the round state of a new session."""
    meta.extra[CONFIG] = config.model_dump(mode="json")
    meta.extra[DUE_AT] = None
    return RoundState(noise_seed=noise_seed, opened_at=now)


def accept(s: "Loaded", c: Contribution, now: float) -> Outcome:
    cfg = config_of(s.meta)
    fed = s.federation
    assert fed is not None and s.params is not None
    current = s.meta.step
    digest = c.digest() if c.key is not None else ""
    if c.key is not None and (receipt := fed.receipt(c.client_id, c.key)) is not None:
        if receipt["digest"] != digest:
            raise InvalidInput("Idempotency-Key",
                               "this Idempotency-Key was used by this client for another contribution")
        body = dict(receipt["body"])
        if receipt["status"] == 200:  # the params it stepped to, or newer ones if the session moved on
            body["version"] = current
        params = s.params.copy() if receipt["status"] == 200 else None
        return Outcome(receipt["status"], body, params, replayed=True, mode=cfg.mode)
    if c.version > current:
        raise InvalidInput("version", f"version {c.version} is ahead of the session's version {current}")
    tau = current - c.version
    refuse = {"version": current, "round": fed.round}
    if cfg.mode == "sync" and tau > 0:
        raise Conflict(f"the round for version {c.version} is closed; the session is at version {current}", **refuse)
    if cfg.max_staleness is not None and tau > cfg.max_staleness:
        raise Conflict(f"version {c.version} is {tau} versions old; max_staleness is {cfg.max_staleness}", **refuse)
    if c.client_id in fed.clients:
        raise Conflict(f"client {c.client_id!r} already contributed to round {fed.round}", **refuse)
    u = c.update.astype(F64)
    if cfg.contribution == "params":
        base = s.params if tau == 0 else fed.past_params.get(c.version)
        if base is None:
            raise Conflict(f"the global params of version {c.version} are no longer kept", **refuse)
        u = u - base.astype(F64)
    if cfg.dp is not None:
        u = privacy.clip(u, cfg.dp.clip_norm)
    if cfg.staleness is not None and tau > 0:
        u = staleness.weight(cfg.staleness, tau) * u
    uniform = cfg.dp is not None and cfg.dp.noise_multiplier > 0  # see privacy.py
    fed.add(u, 1.0 if uniform else float(c.num_examples), c.client_id, tau, keep_vector=cfg.aggregation.rule != "mean")
    fed.add_metrics(c.metrics, c.num_examples)
    body = {"version": current, "round": fed.round, "received": fed.received, "needed": cfg.needed}
    outcome = Outcome(202, body, staleness=tau, mode=cfg.mode)
    if _complete(cfg, fed, now):
        outcome.closed = _close(s, cfg, now)
        outcome.status, outcome.params = 200, s.params.copy()
        body["version"] = s.meta.step
    if c.key is not None:
        fed.remember(c.client_id, c.key, {"digest": digest, "status": outcome.status, "body": body})
    s.meta.extra[DUE_AT] = due_at(cfg, fed)
    return outcome


def close_if_due(s: "Loaded", now: float) -> dict[str, Any] | None:
    """Close the open sync round if its timeout has passed with min_clients; its history entry."""
    cfg = config_of(s.meta)
    fed = s.federation
    assert fed is not None
    due = due_at(cfg, fed)
    if due is None or now < due:
        return None
    entry = _close(s, cfg, now)
    s.meta.extra[DUE_AT] = due_at(cfg, fed)
    return entry


def due_at(cfg: FederationConfig, fed: RoundState) -> float | None:
    """When the open round may close without more contributions (sync with a timeout)."""
    if cfg.mode != "sync" or cfg.round_timeout_s is None or fed.received < (cfg.min_clients or 1):
        return None
    return fed.opened_at + cfg.round_timeout_s


def status(s: "Loaded") -> dict[str, Any]:
    cfg = config_of(s.meta)
    fed = s.federation
    assert fed is not None
    return {
        "version": s.meta.step, "round": fed.round, "received": fed.received, "needed": cfg.needed,
        "opened_at": fed.opened_at, "due_at": due_at(cfg, fed), "federation": s.meta.extra[CONFIG],
        "history": fed.history,
    }


def _complete(cfg: FederationConfig, fed: RoundState, now: float) -> bool:
    if fed.received >= cfg.needed:
        return True
    due = due_at(cfg, fed)
    return due is not None and now >= due


def _close(s: "Loaded", cfg: FederationConfig, now: float) -> dict[str, Any]:
    """Aggregate the round, step the server optimizer, open the next round."""
    fed = s.federation
    assert fed is not None and s.params is not None
    agg = _aggregate(cfg, fed, s.meta.dim)
    grad = (agg if cfg.contribution == "gradient" else -agg).astype(s.state_dtype)
    if cfg.contribution == "params":
        fed.past_params[s.meta.step] = s.params.copy()
    optim.apply(s.opt, s.meta.hyperparameters, s.params, grad, s.state)
    s.meta.step = s.state.step
    if cfg.contribution == "params":
        oldest = s.meta.step - (cfg.max_staleness or 0)
        fed.past_params = {v: p for v, p in fed.past_params.items() if v >= oldest}
    return fed.close(now, s.meta.step)


def _aggregate(cfg: FederationConfig, fed: RoundState, dim: int) -> np.ndarray:
    rule = cfg.aggregation
    if rule.rule == "mean":
        assert fed.weighted_sum is not None
        agg = aggregate.mean(fed.weighted_sum, fed.total_weight)
        if cfg.dp is not None and cfg.dp.noise_multiplier > 0:
            std = cfg.dp.noise_multiplier * cfg.dp.clip_norm / fed.received
            agg = agg + privacy.gaussian_noise(dim, std, fed.noise_seed, fed.round)
        return agg
    vectors = np.stack(fed.vectors)
    if rule.rule == "median":
        return aggregate.median(vectors)
    if rule.rule == "trimmed_mean":
        return aggregate.trimmed_mean(vectors, rule.trim_ratio)
    return aggregate.krum(vectors, rule.byzantine, rule.multi)
