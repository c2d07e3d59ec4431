"""Round bookkeeping: its bytes survive a round trip; the federation block's rules."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from service.federated.config import FederationConfig
from service.federated.rounds import MAX_HISTORY, MAX_RECEIPTS, RoundState, unwrap, wrap


def _full_state(dim: int) -> RoundState:
    rng = np.random.default_rng(0)
    s = RoundState(noise_seed=2**62 + 5, round=7, opened_at=1234.5)
    s.add(rng.normal(size=dim), 3.0, "a", 0, keep_vector=False)
    s.add(rng.normal(size=dim), 2.0, "b", 2, keep_vector=False)
    s.vectors = [rng.normal(size=dim) for _ in range(3)]
    s.past_params = {5: rng.normal(size=dim), 6: rng.normal(size=dim)}
    s.add_metrics({"loss": 0.5, "accuracy": 0.75, "num_examples": 10}, 3)
    s.remember("a", "key-1", {"digest": "d", "status": 202, "body": {"version": 7}})
    s.history = [{"round": 6, "version": 7, "loss": None}]
    return s


def test_round_state_bytes_round_trip() -> None:
    dim = 5
    s = _full_state(dim)
    back = RoundState.from_bytes(s.to_bytes(dim))
    assert back.noise_seed == s.noise_seed and back.round == 7 and back.opened_at == 1234.5
    assert back.clients == ["a", "b"] and back.staleness == [0, 2] and back.total_weight == 5.0
    assert np.array_equal(back.weighted_sum, s.weighted_sum)
    assert all(np.array_equal(x, y) for x, y in zip(back.vectors, s.vectors, strict=True))
    assert set(back.past_params) == {5, 6} and np.array_equal(back.past_params[6], s.past_params[6])
    assert back.metrics == s.metrics and back.history == s.history
    assert back.receipt("a", "key-1") == {"digest": "d", "status": 202, "body": {"version": 7}}
    back.weighted_sum += 1.0  # writable: the running sum is updated in place


def test_wrap_unwrap_and_plain_blobs_pass_through() -> None:
    s = _full_state(3)
    state_blob = b"DSNT-some-optimizer-state"
    inner, back = unwrap(wrap(state_blob, s, 3))
    assert bytes(inner) == state_blob and back is not None and back.clients == ["a", "b"]
    assert unwrap(state_blob) == (state_blob, None)


def test_close_records_history_and_resets_the_round() -> None:
    s = RoundState(noise_seed=1, opened_at=10.0)
    s.add(np.ones(2), 4.0, "a", 0, keep_vector=False)
    s.add_metrics({"loss": 1.0, "num_examples": 1}, 4)
    s.add(np.ones(2), 1.0, "b", 3, keep_vector=False)
    s.add_metrics({"loss": 4.0, "accuracy": 0.5, "num_examples": 3}, 1)
    entry = s.close(now=20.0, version=1)
    assert entry == {"round": 0, "version": 1, "contributions": 2, "num_examples": 5, "opened_at": 10.0,
                     "closed_at": 20.0, "mean_staleness": 1.5, "loss": (1.0 + 12.0) / 4, "accuracy": 0.5}
    assert s.round == 1 and s.received == 0 and s.weighted_sum is None and s.opened_at == 20.0
    for k in range(MAX_HISTORY + 5):
        s.close(now=30.0 + k, version=2 + k)
    assert len(s.history) == MAX_HISTORY and s.history[-1]["version"] == MAX_HISTORY + 6


def test_receipts_are_bounded_oldest_first() -> None:
    s = RoundState(noise_seed=1)
    for k in range(MAX_RECEIPTS + 3):
        s.remember("c", f"k{k}", {"n": k})
    assert len(s.receipts) == MAX_RECEIPTS
    assert s.receipt("c", "k0") is None and s.receipt("c", f"k{MAX_RECEIPTS + 2}") == {"n": MAX_RECEIPTS + 2}
    assert s.receipt("other", f"k{MAX_RECEIPTS + 2}") is None  # keys are per client


def test_config_defaults_and_resolution_is_idempotent() -> None:
    sync = FederationConfig.model_validate({"mode": "sync", "clients_per_round": 4})
    assert sync.min_clients == 4 and sync.needed == 4 and sync.staleness is None
    buffered = FederationConfig.model_validate({"mode": "buffered", "buffer_size": 3})
    assert buffered.max_staleness == 16 and buffered.staleness.function == "polynomial" and buffered.needed == 3
    for cfg in (sync, buffered, FederationConfig.model_validate(
            {"mode": "sync", "clients_per_round": 5, "min_clients": 3, "round_timeout_s": 2,
             "aggregation": {"rule": "krum", "byzantine": 0, "multi": 2}, "dp": {"clip_norm": 1}})):
        assert FederationConfig.model_validate(cfg.model_dump(mode="json")) == cfg


@pytest.mark.parametrize("block", [
    {"mode": "sync"},  # no clients_per_round
    {"mode": "buffered"},  # no buffer_size
    {"mode": "sync", "clients_per_round": 3, "buffer_size": 2},  # not a sync field
    {"mode": "async", "clients_per_round": 3},
    {"mode": "sync", "clients_per_round": 3, "max_staleness": 2},
    {"mode": "sync", "clients_per_round": 3, "min_clients": 2},  # without a timeout
    {"mode": "sync", "clients_per_round": 3, "min_clients": 4, "round_timeout_s": 1},
    {"mode": "async", "aggregation": {"rule": "median"}},
    {"mode": "sync", "clients_per_round": 4, "aggregation": {"rule": "krum", "byzantine": 1}},  # n < 2f + 3
    {"mode": "sync", "clients_per_round": 6, "min_clients": 4, "round_timeout_s": 1,
     "aggregation": {"rule": "krum", "byzantine": 1}},  # may close with 4 < 5
    {"mode": "sync", "clients_per_round": 5, "aggregation": {"rule": "krum", "byzantine": 1, "multi": 5}},
    {"mode": "sync", "clients_per_round": 3, "aggregation": {"rule": "mean", "trim_ratio": 0.2}},
    {"mode": "sync", "clients_per_round": 3, "aggregation": {"rule": "trimmed_mean", "trim_ratio": 0.5}},
    {"mode": "sync", "clients_per_round": 3, "aggregation": {"rule": "median"},
     "dp": {"clip_norm": 1, "noise_multiplier": 1}},
    {"mode": "sync", "clients_per_round": 3, "dp": {"noise_multiplier": 1}},  # no clip_norm
    {"mode": "buffered", "buffer_size": 2, "contribution": "params", "max_staleness": 65},
    {"mode": "buffered", "buffer_size": 2, "staleness": {"function": "exponential"}},
    {"mode": "gossip"}, {"mode": "sync", "clients_per_round": 0}, {"mode": "sync", "clients_per_round": 2, "x": 1},
])
def test_config_refuses(block: dict) -> None:
    with pytest.raises(ValidationError):
        FederationConfig.model_validate(block)
