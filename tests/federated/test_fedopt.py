"""FedAvgM, FedAdagrad, FedAdam and FedYogi through HTTP (sync rounds, delta contributions),
against the server update of Reddi et al. 2021, "Adaptive Federated Optimization",
Algorithm 2, written out below. Reddi's names map to ours as eta = lr, tau = eps,
beta1/beta2 = betas; the differences that the mapping keeps are switches of
`algorithm2`, each named where it is used (see service/federated/protocol.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ..conftest import create_session

DIM, CLIENTS, ROUNDS = 6, 3, 25


def algorithm2(x0: np.ndarray, rounds: np.ndarray, kind: str, eta: float, tau: float, beta1: float, beta2: float,
               v0: float, m0: float = 0.0, bias_correction: bool = False) -> list[np.ndarray]:
    """Server side of Algorithm 2, one entry per round:

        Delta_t = (1/|S|) sum_i Delta_i^t
        m_t     = beta1 m_{t-1} + (1 - beta1) Delta_t
        v_t     = v_{t-1} + Delta_t^2                                   (FedAdagrad)
        v_t     = v_{t-1} - (1 - beta2) Delta_t^2 sign(v_{t-1} - Delta_t^2)  (FedYogi)
        v_t     = beta2 v_{t-1} + (1 - beta2) Delta_t^2                 (FedAdam)
        x_{t+1} = x_t + eta m_t / (sqrt(v_t) + tau)

    `bias_correction` divides m_t by 1 - beta1^t and v_t by 1 - beta2^t inside the update
    (Adam's correction, which torch's Adam and optax's Yogi apply and Algorithm 2 does not)."""
    x, m, v = x0.copy(), np.full_like(x0, m0), np.full_like(x0, v0)
    out = []
    for t, deltas in enumerate(rounds, start=1):
        delta = deltas.mean(axis=0)
        m = beta1 * m + (1 - beta1) * delta
        if kind == "adagrad":
            v = v + delta**2
        elif kind == "yogi":
            v = v - (1 - beta2) * delta**2 * np.sign(v - delta**2)
        else:
            v = beta2 * v + (1 - beta2) * delta**2
        mh, vh = (m / (1 - beta1**t), v / (1 - beta2**t)) if bias_correction else (m, v)
        x = x + eta * mh / (np.sqrt(vh) + tau)
        out.append(x)
    return out


def run_rounds(http, optimizer: dict, x0: np.ndarray, rounds: np.ndarray) -> list[np.ndarray]:
    sid, auth, _ = create_session(http, optimizer=optimizer, dtype="float64", params=x0.tolist(),
                                  federation={"mode": "sync", "contribution": "delta", "clients_per_round": CLIENTS})
    out = []
    for t, deltas in enumerate(rounds):
        for c, delta in enumerate(deltas):
            r = http.post(f"/v1/sessions/{sid}/contributions", headers=auth,
                          json={"client_id": f"client-{c}", "version": t, "num_examples": 50, "update": delta.tolist()})
        assert r.status_code == 200 and r.json()["version"] == t + 1, r.text
        out.append(np.array(r.json()["params"]))
    return out


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2021)
    # Client deltas drift toward a shared direction with noise, as local training would.
    direction = rng.normal(size=DIM)
    return rng.normal(size=DIM), direction * 0.1 + rng.normal(size=(ROUNDS, CLIENTS, DIM)) * 0.05


def test_fedadagrad_is_algorithm2_with_beta1_zero_exactly(http, problem) -> None:
    x0, rounds = problem
    eta, tau, v0 = 0.1, 1e-3, 1e-6  # Reddi: v_{-1} >= tau^2
    ours = run_rounds(http, {"name": "adagrad", "lr": eta, "eps": tau, "initial_accumulator_value": v0}, x0, rounds)
    theirs = algorithm2(x0, rounds, "adagrad", eta, tau, beta1=0.0, beta2=0.0, v0=v0)
    for t, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=f"round {t}")


def test_fedadam_is_algorithm2_with_adams_bias_correction(http, problem) -> None:
    x0, rounds = problem
    eta, tau, betas = 0.05, 1e-3, (0.9, 0.99)
    ours = run_rounds(http, {"name": "adam", "lr": eta, "eps": tau, "betas": list(betas)}, x0, rounds)
    theirs = algorithm2(x0, rounds, "adam", eta, tau, *betas, v0=0.0, bias_correction=True)
    for t, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-11, err_msg=f"round {t}")
    # Without the correction the first step would differ: the mapping really is not the identity.
    plain = algorithm2(x0, rounds, "adam", eta, tau, *betas, v0=0.0)
    assert not np.allclose(ours[0], plain[0], rtol=1e-3)


def test_fedyogi_is_algorithm2_with_bias_correction_and_optax_initial_accumulators(http, problem) -> None:
    x0, rounds = problem
    eta, tau, betas, init = 0.05, 1e-3, (0.9, 0.99), 1e-6
    ours = run_rounds(http, {"name": "yogi", "lr": eta, "eps": tau, "betas": list(betas),
                             "initial_accumulator_value": init}, x0, rounds)
    # optax starts m (of the pseudo-gradient -Delta) at +init, that is m_{-1} = -init for Delta.
    theirs = algorithm2(x0, rounds, "yogi", eta, tau, *betas, v0=init, m0=-init, bias_correction=True)
    for t, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-11, err_msg=f"round {t}")


def test_fedavg_and_fedavgm(http, problem) -> None:
    """FedAvg: x + mean delta (sgd, lr 1). FedAvgM (Hsu et al. 2019): v = beta v + Delta,
    x = x + eta v (sgd with momentum beta, lr eta; torch's first buffer is the gradient itself)."""
    x0, rounds = problem
    ours = run_rounds(http, {"name": "sgd", "lr": 1.0}, x0, rounds)
    x = x0.copy()
    for t, deltas in enumerate(rounds):
        x = x + deltas.mean(axis=0)
        np.testing.assert_allclose(ours[t], x, rtol=1e-12)
    eta, beta = 0.7, 0.9
    ours = run_rounds(http, {"name": "sgd", "lr": eta, "momentum": beta}, x0, rounds)
    x, v = x0.copy(), np.zeros(DIM)
    for t, deltas in enumerate(rounds):
        v = beta * v + deltas.mean(axis=0)
        x = x + eta * v
        np.testing.assert_allclose(ours[t], x, rtol=1e-12)
