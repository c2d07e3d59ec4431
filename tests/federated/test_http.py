"""Federated sessions over real HTTP (a uvicorn process on Redis): every mode, every
contribution kind, the 409s, idempotency, the long poll, and bad input changing nothing."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pytest

from ..conftest import create_session, http_client

OCTET = "application/octet-stream"


def fed_session(http: httpx.Client, params: list[float], optimizer: dict | None = None, dtype: str = "float64",
                **federation: object) -> tuple[str, dict[str, str], dict]:
    return create_session(http, optimizer=optimizer or {"name": "sgd", "lr": 1.0}, dtype=dtype, params=params,
                          federation=federation)


def contribute(http: httpx.Client, sid: str, auth: dict, client: str, version: int, update, num_examples: int = 1,
               key: str | None = None, **extra: object) -> httpx.Response:
    headers = {**auth, **({"Idempotency-Key": key} if key else {})}
    body = {"client_id": client, "version": version, "num_examples": num_examples, "update": list(update), **extra}
    return http.post(f"/v1/sessions/{sid}/contributions", headers=headers, json=body)


def status(http: httpx.Client, sid: str, auth: dict) -> dict:
    r = http.get(f"/v1/sessions/{sid}/federation", headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def params_of(http: httpx.Client, sid: str, auth: dict) -> np.ndarray:
    return np.array(http.get(f"/v1/sessions/{sid}/params", headers=auth).json()["params"])


# -- sync ---------------------------------------------------------------------------------


def test_sync_fedavg_weighted_mean_then_late_and_duplicate_409(http) -> None:
    x0 = np.array([1.0, -2.0, 0.5])
    sid, auth, created = fed_session(http, x0.tolist(), mode="sync", contribution="delta", clients_per_round=3)
    assert created["version"] == 0 and created["federation"]["clients_per_round"] == 3
    deltas = [np.array([1.0, 2.0, 3.0]), np.array([-4.0, 0.5, 0.0]), np.array([0.25, 0.25, -8.0])]
    counts = [10, 30, 60]
    r0 = contribute(http, sid, auth, "a", 0, deltas[0], counts[0])
    assert r0.status_code == 202 and r0.json() == {"version": 0, "round": 0, "received": 1, "needed": 3}
    assert r0.headers["etag"] == '"0"'
    dup = contribute(http, sid, auth, "a", 0, deltas[1], counts[1])
    assert dup.status_code == 409 and dup.json()["version"] == 0
    assert dup.headers["content-type"] == "application/problem+json"
    assert contribute(http, sid, auth, "b", 0, deltas[1], counts[1]).status_code == 202
    last = contribute(http, sid, auth, "c", 0, deltas[2], counts[2])
    # FedAvg: x + sum_i n_i d_i / sum_i n_i (sgd, lr 1: the pseudo-gradient is minus the mean delta).
    expected = x0 + sum(n * d for n, d in zip(counts, deltas)) / sum(counts)
    assert last.status_code == 200 and last.json()["version"] == 1 and last.json()["round"] == 0
    np.testing.assert_allclose(last.json()["params"], expected, rtol=1e-15)
    late = contribute(http, sid, auth, "d", 0, deltas[0])
    assert late.status_code == 409 and late.json()["version"] == 1 and late.json()["round"] == 1
    ahead = contribute(http, sid, auth, "d", 5, deltas[0])
    assert ahead.status_code == 422 and ahead.json()["field"] == "version"
    st = status(http, sid, auth)
    assert st["version"] == 1 and st["round"] == 1 and st["received"] == 0  # the refusals counted nothing
    assert [h["contributions"] for h in st["history"]] == [3] and st["history"][0]["num_examples"] == 100
    held = http.get(f"/v1/sessions/{sid}/params", headers=auth).json()
    assert held["version"] == 1 and held["step"] == 1
    np.testing.assert_allclose(held["params"], expected, rtol=1e-15)
    assert http.get(f"/v1/sessions/{sid}", headers=auth).json()["version"] == 1


def test_sync_params_contribution_and_gradient_contribution(http) -> None:
    x0 = np.array([0.5, 1.5])
    sid, auth, _ = fed_session(http, x0.tolist(), mode="sync", contribution="params", clients_per_round=2)
    new = [np.array([1.0, 1.0]), np.array([0.0, 3.0])]
    contribute(http, sid, auth, "a", 0, new[0], 1)
    r = contribute(http, sid, auth, "b", 0, new[1], 3)
    expected = x0 + (1 * (new[0] - x0) + 3 * (new[1] - x0)) / 4
    np.testing.assert_allclose(r.json()["params"], expected, rtol=1e-15)

    # gradient: the server optimizer (here torch-exact Adam) gets the weighted mean gradient.
    import torch

    sid, auth, _ = fed_session(http, x0.tolist(), {"name": "adam", "lr": 0.1}, mode="sync",
                               contribution="gradient", clients_per_round=2)
    tparam = torch.tensor(x0, requires_grad=True)
    topt = torch.optim.Adam([tparam], lr=0.1)
    rng = np.random.default_rng(5)
    for v in range(5):
        g = rng.normal(size=(2, 2))
        contribute(http, sid, auth, "a", v, g[0], 2)
        r = contribute(http, sid, auth, "b", v, g[1], 6)
        tparam.grad = torch.from_numpy((2 * g[0] + 6 * g[1]) / 8)
        topt.step()
        assert r.json()["version"] == v + 1
        np.testing.assert_allclose(r.json()["params"], tparam.detach().numpy(), rtol=1e-12)


def test_binary_contribution_and_binary_answer_float32(http) -> None:
    sid, auth, _ = fed_session(http, [0.0, 0.0, 0.0, 0.0], dtype="float32", mode="sync", clients_per_round=2)
    d = np.array([1.5, -2.0, 0.25, 4.0], np.float32)
    h = {**auth, "Content-Type": OCTET}
    r = http.post(f"/v1/sessions/{sid}/contributions", params={"client_id": "a", "version": 0, "num_examples": 1},
                  headers=h, content=d.tobytes())
    assert r.status_code == 202, r.text
    short = http.post(f"/v1/sessions/{sid}/contributions", params={"client_id": "b", "version": 0},
                      headers=h, content=d.tobytes()[:-4])
    assert short.status_code == 422
    nan = d.copy()
    nan[2] = np.nan
    bad = http.post(f"/v1/sessions/{sid}/contributions", params={"client_id": "b", "version": 0}, headers=h,
                    content=nan.tobytes())
    assert bad.status_code == 422 and bad.json()["field"] == "update"
    no_id = http.post(f"/v1/sessions/{sid}/contributions", params={"version": 0}, headers=h, content=d.tobytes())
    assert no_id.status_code == 422 and no_id.json()["field"] == "client_id"
    r = http.post(f"/v1/sessions/{sid}/contributions", params={"client_id": "b", "version": 0, "num_examples": 3},
                  headers={**h, "Accept": OCTET}, content=(3 * d).tobytes())
    assert r.status_code == 200 and r.headers["content-type"] == OCTET and r.headers["etag"] == '"1"'
    assert np.array_equal(np.frombuffer(r.content, np.float32), (1 * d + 3 * (3 * d)) / 4)


# -- idempotency ----------------------------------------------------------------------------


def test_idempotency_key_counts_once_and_answers_the_same(http) -> None:
    sid, auth, _ = fed_session(http, [0.0, 0.0], mode="sync", clients_per_round=2)
    first = contribute(http, sid, auth, "a", 0, [2.0, 4.0], key="a-0")
    again = contribute(http, sid, auth, "a", 0, [2.0, 4.0], key="a-0")
    assert first.status_code == again.status_code == 202
    assert again.json() == {**first.json(), "replayed": True} and again.headers["idempotency-replayed"] == "true"
    assert status(http, sid, auth)["received"] == 1
    other = contribute(http, sid, auth, "a", 0, [9.0, 9.0], key="a-0")  # same key, other content
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    closing = contribute(http, sid, auth, "b", 0, [0.0, 2.0], key="b-0")
    assert closing.status_code == 200 and closing.json()["params"] == [1.0, 3.0]
    retry = contribute(http, sid, auth, "b", 0, [0.0, 2.0], key="b-0")  # the response was lost: same answer
    assert retry.status_code == 200 and retry.json() == {**closing.json(), "replayed": True}
    retry_a = contribute(http, sid, auth, "a", 0, [2.0, 4.0], key="a-0")  # round closed since: still its receipt
    assert retry_a.status_code == 202 and retry_a.json()["round"] == 0
    st = status(http, sid, auth)
    assert st["version"] == 1 and st["received"] == 0 and st["history"][0]["contributions"] == 2
    assert contribute(http, sid, auth, "a", 0, [2.0, 4.0], key="bad key").status_code == 422  # a space


# -- buffered and async ----------------------------------------------------------------------


def test_buffered_params_mode_weighs_staleness_and_keeps_past_params(http) -> None:
    """FedBuff: a step every 2 contributions, whatever their version; a params contribution
    is diffed against the global params of its own version; weight (tau + 1)^-0.5."""
    x0 = np.array([1.0, 2.0])
    sid, auth, created = fed_session(http, x0.tolist(), mode="buffered", contribution="params", buffer_size=2,
                                     max_staleness=2, staleness={"function": "polynomial", "a": 0.5})
    assert created["federation"]["staleness"] == {"function": "polynomial", "a": 0.5, "b": 4}
    p = {0: x0}
    a0, b0 = x0 + [1.0, 0.0], x0 + [0.0, 3.0]
    assert contribute(http, sid, auth, "a", 0, a0).status_code == 202
    r = contribute(http, sid, auth, "b", 0, b0)
    p[1] = x0 + ((a0 - x0) + (b0 - x0)) / 2
    np.testing.assert_allclose(r.json()["params"], p[1], rtol=1e-15)
    # Version 1 is current; a client still on version 0 (tau 1) and one on version 1.
    c0 = x0 + [4.0, 4.0]
    d1 = p[1] + [2.0, -2.0]
    assert contribute(http, sid, auth, "c", 0, c0).json() == {"version": 1, "round": 1, "received": 1, "needed": 2}
    r = contribute(http, sid, auth, "d", 1, d1)
    p[2] = p[1] + ((c0 - p[0]) * 2 ** -0.5 + (d1 - p[1])) / 2
    np.testing.assert_allclose(r.json()["params"], p[2], rtol=1e-14)
    e0 = x0 + [8.0, 0.0]  # tau 2 = max_staleness: still accepted, diffed against version 0's params
    assert contribute(http, sid, auth, "e", 0, e0).status_code == 202
    f2 = p[2] + [0.0, 1.0]
    r = contribute(http, sid, auth, "f", 2, f2)
    p[3] = p[2] + ((e0 - p[0]) * 3 ** -0.5 + (f2 - p[2])) / 2
    np.testing.assert_allclose(r.json()["params"], p[3], rtol=1e-14)
    stale = contribute(http, sid, auth, "g", 0, x0)  # tau 3 > max_staleness 2
    assert stale.status_code == 409 and stale.json()["version"] == 3
    st = status(http, sid, auth)
    assert [h["mean_staleness"] for h in st["history"]] == [0.0, 0.5, 1.0] and st["received"] == 0


def test_async_every_contribution_steps_with_hinge_weights(http) -> None:
    x0 = np.zeros(2)
    sid, auth, _ = fed_session(http, x0.tolist(), {"name": "sgd", "lr": 0.5}, mode="async", contribution="delta",
                               max_staleness=5, staleness={"function": "hinge", "a": 2.0, "b": 1})
    x = x0.copy()
    for k, (version, delta) in enumerate([(0, [1.0, 0.0]), (0, [0.0, 1.0]), (0, [2.0, 2.0]), (1, [4.0, 0.0])]):
        tau = k - version
        s = 1.0 if tau <= 1 else 1.0 / (2.0 * (tau - 1) + 1.0)
        x = x + 0.5 * s * np.array(delta)
        r = contribute(http, sid, auth, f"c{k}", version, delta)
        assert r.status_code == 200 and r.json()["version"] == k + 1
        np.testing.assert_allclose(r.json()["params"], x, rtol=1e-15)
    assert contribute(http, sid, auth, "z", 4, [1.0, 1.0]).json()["version"] == 5
    assert contribute(http, sid, auth, "y", 0, [0.0, 0.0]).status_code == 200  # tau 5 = max_staleness
    too_old = contribute(http, sid, auth, "w", 0, [0.0, 0.0])  # tau 6
    assert too_old.status_code == 409 and too_old.json()["version"] == 6


# -- robust rules and DP -----------------------------------------------------------------------


OUTLIER_ROUND = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [10.0, 10.0]]


@pytest.mark.parametrize(("aggregation", "expected"), [
    ({"rule": "median"}, [1.0, 1.0]),
    ({"rule": "trimmed_mean", "trim_ratio": 0.2}, [(0 + 1 + 1) / 3, (0 + 1 + 2) / 3]),
    ({"rule": "krum", "byzantine": 1}, [1.0, 0.0]),
    ({"rule": "krum", "byzantine": 1, "multi": 2}, [0.5, 0.0]),
])
def test_robust_rules_resist_a_byzantine_client(http, aggregation: dict, expected: list[float]) -> None:
    sid, auth, _ = fed_session(http, [0.0, 0.0], mode="sync", clients_per_round=5, aggregation=aggregation)
    for c, u in enumerate(OUTLIER_ROUND):
        r = contribute(http, sid, auth, f"c{c}", 0, u, num_examples=1000 if c == 4 else 1)  # weights ignored
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["params"], expected, rtol=1e-15)


def test_dp_clips_and_adds_reproducible_seeded_noise(http) -> None:
    dim, clip, z, seed = 64, 1.0, 0.5, 1234
    rng = np.random.default_rng(9)
    deltas = [rng.normal(size=dim) * 3, rng.normal(size=dim) * 0.01]  # one clipped, one not
    dp = {"clip_norm": clip, "noise_multiplier": z, "seed": seed}

    def run(dp_block: dict) -> list[np.ndarray]:
        sid, auth, _ = fed_session(http, [0.0] * dim, mode="sync", clients_per_round=2, dp=dp_block)
        out = []
        for v in range(2):
            contribute(http, sid, auth, "a", v, deltas[0], 5)
            out.append(np.array(contribute(http, sid, auth, "b", v, deltas[1], 1).json()["params"]))
        return out

    first, again = run(dp), run(dp)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # same seed: the same run
    clipped = [d * min(1.0, clip / np.linalg.norm(d)) for d in deltas]
    mean = (clipped[0] + clipped[1]) / 2  # with noise, every contribution weighs the same
    noise = [np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, r]))).normal(0, z * clip / 2, dim)
             for r in range(2)]
    np.testing.assert_allclose(first[0], mean + noise[0], rtol=1e-12)
    np.testing.assert_allclose(first[1], first[0] + mean + noise[1], rtol=1e-12)
    other = run({**dp, "seed": seed + 1})
    assert not np.allclose(other[0], first[0])
    unseeded = run({"clip_norm": clip, "noise_multiplier": z})
    assert not np.allclose(unseeded[0], first[0])


# -- timeouts and the long poll ------------------------------------------------------------------


def test_round_timeout_closes_with_min_clients_for_a_waiting_client(http) -> None:
    sid, auth, _ = fed_session(http, [0.0], mode="sync", clients_per_round=3, min_clients=2, round_timeout_s=0.6)
    contribute(http, sid, auth, "a", 0, [1.0])
    assert status(http, sid, auth)["due_at"] is None  # fewer than min_clients: no early close
    contribute(http, sid, auth, "b", 0, [3.0])
    started = time.monotonic()
    r = http.get(f"/v1/sessions/{sid}/params", params={"after": 0, "wait": 10}, headers=auth)
    waited = time.monotonic() - started
    assert r.json() == {"params": [2.0], "step": 1, "version": 1}
    assert waited < 5
    st = status(http, sid, auth)
    closed = st["history"][0]
    assert closed["contributions"] == 2 and closed["closed_at"] - closed["opened_at"] >= 0.6
    # A contribution arriving after the deadline, when it makes min_clients, closes at once.
    contribute(http, sid, auth, "a", 1, [1.0])
    time.sleep(0.7)
    r = contribute(http, sid, auth, "b", 1, [1.0])
    assert r.status_code == 200 and r.json()["params"] == [3.0]


def test_long_poll_wakes_on_a_step_and_times_out_without_one(http) -> None:
    sid, auth, _ = fed_session(http, [0.0], mode="sync", clients_per_round=1)
    started = time.monotonic()
    r = http.get(f"/v1/sessions/{sid}/params", params={"after": 0, "wait": 0.4}, headers=auth)
    assert r.json()["version"] == 0 and 0.35 < time.monotonic() - started < 3
    assert http.get(f"/v1/sessions/{sid}/params", params={"after": -1, "wait": 10}, headers=auth).json()["version"] == 0

    def later() -> None:
        time.sleep(0.3)
        with http_client(str(http.base_url), timeout=30) as other:
            contribute(other, sid, auth, "a", 0, [5.0])

    thread = threading.Thread(target=later)
    started = time.monotonic()
    thread.start()
    r = http.get(f"/v1/sessions/{sid}/params", params={"after": 0, "wait": 20}, headers=auth)
    thread.join()
    assert r.json() == {"params": [5.0], "step": 1, "version": 1} and time.monotonic() - started < 5


# -- history, metrics, bad input -------------------------------------------------------------------


def test_reported_metrics_make_the_history_and_prometheus_counts(http) -> None:
    sid, auth, _ = fed_session(http, [0.0], mode="sync", clients_per_round=2)
    contribute(http, sid, auth, "a", 0, [1.0], 10, metrics={"loss": 2.0, "accuracy": 0.5})
    contribute(http, sid, auth, "b", 0, [1.0], 30, metrics={"loss": 1.0, "accuracy": 0.9, "num_examples": 10})
    entry = status(http, sid, auth)["history"][0]
    assert entry["loss"] == pytest.approx((10 * 2.0 + 10 * 1.0) / 20)
    assert entry["accuracy"] == pytest.approx((10 * 0.5 + 10 * 0.9) / 20) and entry["num_examples"] == 40
    text = http.get("/metrics").text
    assert 'descent_federated_rounds_total{mode="sync"}' in text
    assert 'descent_federated_contributions_total{mode="sync",outcome="counted"}' in text
    assert sid not in text  # no per-session series


def test_bad_input_is_refused_and_changes_nothing(http) -> None:
    sid, auth, _ = fed_session(http, [0.0, 0.0], mode="sync", clients_per_round=2)
    contribute(http, sid, auth, "ok", 0, [1.0, 1.0])
    url = f"/v1/sessions/{sid}/contributions"
    bad = [
        ({"client_id": "a", "version": 0, "update": [1.0]}, "update"),  # wrong length
        ({"client_id": "a", "version": 0, "update": [1.0, "x"]}, "update"),
        ({"client_id": "a", "version": 0, "update": [1.0, 12345.5]}, "body"),  # sent as 1e400: Inf is not JSON
        ({"client_id": "a b", "version": 0, "update": [1.0, 1.0]}, "client_id"),
        ({"client_id": "", "version": 0, "update": [1.0, 1.0]}, "client_id"),
        ({"client_id": 7, "version": 0, "update": [1.0, 1.0]}, "client_id"),
        ({"client_id": "a", "update": [1.0, 1.0]}, "version"),
        ({"client_id": "a", "version": -1, "update": [1.0, 1.0]}, "version"),
        ({"client_id": "a", "version": True, "update": [1.0, 1.0]}, "version"),
        ({"client_id": "a", "version": 0, "num_examples": 0, "update": [1.0, 1.0]}, "num_examples"),
        ({"client_id": "a", "version": 0, "num_examples": 1.5, "update": [1.0, 1.0]}, "num_examples"),
        ({"client_id": "a", "version": 0, "update": [1.0, 1.0], "extra": 1}, "extra"),
        ({"client_id": "a", "version": 0, "update": [1.0, 1.0], "metrics": {"loss": "high"}}, "metrics.loss"),
        ({"client_id": "a", "version": 0, "update": [1.0, 1.0], "metrics": {"f1": 1}}, "metrics"),
        ({"client_id": "a", "version": 0}, "update"),
    ]
    for body, field in bad:
        content = httpx.Request("POST", "/", json=body).content.replace(b"12345.5", b"1e400")
        r = http.post(url, headers={**auth, "Content-Type": "application/json"}, content=content)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field, (body, r.json())
    assert http.post(url, headers={**auth, "Content-Type": "text/plain"}, content=b"x").status_code == 415
    assert http.post(url, json={"client_id": "a", "version": 0, "update": [1.0, 1.0]}).status_code == 401
    st = status(http, sid, auth)
    assert st["received"] == 1 and st["version"] == 0
    # A plain session takes no contributions; a federated one takes no plain steps.
    plain, plain_auth, _ = create_session(http, optimizer={"name": "sgd"}, params=[0.0, 0.0])
    r = contribute(http, plain, plain_auth, "a", 0, [1.0, 1.0])
    assert r.status_code == 409 and "not federated" in r.json()["detail"]
    assert http.get(f"/v1/sessions/{plain}/federation", headers=plain_auth).status_code == 409
    step = http.post(f"/v1/sessions/{sid}/step", headers=auth, json={"grads": [1.0, 1.0]})
    assert step.status_code == 409 and status(http, sid, auth)["version"] == 0


@pytest.mark.parametrize("federation", [
    {"mode": "sync"}, {"mode": "buffered", "buffer_size": 2, "clients_per_round": 2},
    {"mode": "async", "aggregation": {"rule": "krum"}},
    {"mode": "sync", "clients_per_round": 3, "aggregation": {"rule": "krum", "byzantine": 1}},
    {"mode": "sync", "clients_per_round": 2, "dp": {"clip_norm": 0}},
])
def test_bad_federation_blocks_are_422(http, federation: dict) -> None:
    r = http.post("/v1/sessions", json={"optimizer": {"name": "sgd"}, "params": [0.0], "federation": federation})
    assert r.status_code == 422, r.text


def test_federation_needs_server_held_params(http) -> None:
    r = http.post("/v1/sessions", json={"optimizer": {"name": "sgd"}, "dim": 2,
                                         "federation": {"mode": "sync", "clients_per_round": 2}})
    assert r.status_code == 422 and r.json()["field"] == "federation"
