"""Federated learning through Descent: 10 clients with non-IID shares of scikit-learn's digits.

Each client holds a label-skewed share of the training set (per class, the examples are
split between clients in Dirichlet(alpha) proportions, Hsu et al. 2019: with alpha 0.5
and seed 0, 80% of a client's examples come from 3 to 5 of the 10 classes, and client
sizes range from 27 to 217 examples). The model is softmax regression in numpy
(64 pixels -> 10 classes, 650 parameters). Every client, in its own thread and with its
own HTTP connection, repeats: fetch the global params, run a few local epochs of
minibatch SGD from them, and contribute the delta (local minus global) with its
`num_examples`. The server combines the deltas and steps its own optimizer:

    sync   a round closes when all 10 clients have contributed; clients wait for the
           next version with the long poll GET .../params?after=<v>&wait=<s>
    async  every contribution steps at once, weighted by staleness (FedAsync's
           polynomial (tau+1)^-0.5, the server default); a "round" on the plot is 10
           contributions, the same number of local trainings as a sync round

Server optimizers (Reddi et al. 2021, "Adaptive Federated Optimization": eta = lr,
tau = eps, beta1/beta2 = betas), tuned on this problem:

    fedavg   sgd   lr 1.0 sync (plain FedAvg); lr 0.5 async (a single client's delta
                   at full weight drags the model towards that client's classes)
    fedadam  adam  lr 0.1 sync, 0.01 async; betas (0.9, 0.99), eps (tau) 1e-3
    fedyogi  yogi  lr 0.1 sync, 0.01 async; betas (0.9, 0.99), eps (tau) 1e-3

(Swept over 2 seeds: sync adam/yogi lr 0.01 -> ~0.89, 0.03 -> ~0.93, 0.1 and 0.3 -> ~0.95;
async, where every contribution steps, 0.03 oscillates and 0.01 reaches ~0.95; async sgd
lr 1.0 falls to 0.72-0.94, 0.3 and 0.5 reach ~0.96.)

The accuracy per round is measured on a held-out test set from the params the server
returns with the contribution that made that version (exact, no polling). The script
prints `final test accuracy <strategy> <mode>: <accuracy>` per run and saves a plot.

    python examples/federated_digits.py                      # starts its own server
    python examples/federated_digits.py --url http://127.0.0.1:8000 --modes sync
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from local_server import own_server

ROOT = Path(__file__).resolve().parents[1]
FEATURES, CLASSES = 64, 10
DIM = FEATURES * CLASSES + CLASSES
# httpx sends headers and body in two writes: without TCP_NODELAY, Nagle's algorithm and the
# server's delayed ACK add ~40 ms to every request on loopback.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

ADAPTIVE = {"betas": [0.9, 0.99], "eps": 1e-3}
STRATEGIES: dict[str, dict[str, dict]] = {
    "fedavg": {"sync": {"name": "sgd", "lr": 1.0}, "async": {"name": "sgd", "lr": 0.5}},
    "fedadam": {"sync": {"name": "adam", "lr": 0.1, **ADAPTIVE}, "async": {"name": "adam", "lr": 0.01, **ADAPTIVE}},
    "fedyogi": {"sync": {"name": "yogi", "lr": 0.1, **ADAPTIVE}, "async": {"name": "yogi", "lr": 0.01, **ADAPTIVE}},
}
MODES = ("sync", "async")


# -- data and model ---------------------------------------------------------------------------


@dataclass
class Data:
    clients: list[tuple[np.ndarray, np.ndarray]]  # (x, y) per client
    x_test: np.ndarray
    y_test: np.ndarray


def split_digits(n_clients: int, alpha: float, seed: int) -> Data:
    """A stratified 25% test set; the rest split per class in Dirichlet(alpha) shares."""
    digits = load_digits()
    x = digits.data / 16.0  # pixels are 0..16
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.25, stratify=digits.target,
                                                        random_state=seed)
    rng = np.random.default_rng(seed)
    while True:  # redraw until every client has enough examples for a few minibatches
        owners: list[list[int]] = [[] for _ in range(n_clients)]
        for c in range(CLASSES):
            idx = rng.permutation(np.flatnonzero(y_train == c))
            cuts = (np.cumsum(rng.dirichlet(alpha * np.ones(n_clients)))[:-1] * len(idx)).astype(int)
            for owner, part in zip(owners, np.split(idx, cuts)):
                owner.extend(part.tolist())
        if min(len(o) for o in owners) >= 20:
            break
    return Data([(x_train[o], y_train[o]) for o in owners], x_test, y_test)


def skew(y: np.ndarray, share: float = 0.8) -> int:
    """How many of a client's classes hold `share` of its examples (label skew at a glance)."""
    counts = np.sort(np.bincount(y, minlength=CLASSES))[::-1]
    return int(np.searchsorted(np.cumsum(counts), share * len(y)) + 1)


def unpack(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return params[:FEATURES * CLASSES].reshape(FEATURES, CLASSES), params[FEATURES * CLASSES:]


def probabilities(params: np.ndarray, x: np.ndarray) -> np.ndarray:
    w, b = unpack(params)
    logits = x @ w + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def accuracy(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(probabilities(params, x).argmax(axis=1) == y))


def local_train(params: np.ndarray, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, epochs: int = 2,
                batch: int = 16, lr: float = 0.5) -> tuple[np.ndarray, dict[str, float]]:
    """Minibatch SGD on the cross-entropy from the global params; returns (delta, metrics)."""
    p = params.copy()
    w, b = unpack(p)  # views into p
    onehot = np.eye(CLASSES)[y]
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch):
            i = order[start:start + batch]
            err = probabilities(p, x[i]) - onehot[i]  # d(mean cross-entropy)/d(logits) * batch
            w -= lr * (x[i].T @ err) / len(i)
            b -= lr * err.mean(axis=0)
    prob = probabilities(p, x)
    loss = float(-np.mean(np.log(prob[np.arange(len(y)), y] + 1e-12)))
    return p - params, {"loss": loss, "accuracy": float(np.mean(prob.argmax(axis=1) == y))}


# -- one federated run over HTTP -------------------------------------------------------------------


def http_client(url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=120,
                        transport=httpx.HTTPTransport(socket_options=NODELAY))


@dataclass
class Run:
    """The accuracy curve of one strategy/mode, filled in by whichever client makes a round's version."""

    data: Data
    rounds: int
    per_round: int  # versions per round: 1 in sync, one per client in async
    bar: tqdm
    curve: dict[float, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def last_version(self) -> int:
        return self.rounds * self.per_round

    def record(self, version: int, params: list[float]) -> None:
        if version % self.per_round or version > self.last_version:
            return
        acc = accuracy(np.asarray(params), self.data.x_test, self.data.y_test)
        with self.lock:
            self.curve[version / self.per_round] = acc
            self.bar.update(1)
            self.bar.set_postfix(test_accuracy=f"{acc:.3f}")


def contribute(http: httpx.Client, sid: str, client: str, version: int, delta: np.ndarray, n: int,
               metrics: dict[str, float]) -> httpx.Response:
    body = {"client_id": client, "version": version, "num_examples": n, "update": delta.tolist(), "metrics": metrics}
    r = http.post(f"/v1/sessions/{sid}/contributions", json=body)
    if r.status_code not in (200, 202, 409):  # 409: too stale (async) or a closed round; nothing counted
        r.raise_for_status()
    return r


def sync_client(run: Run, url: str, sid: str, token: str, k: int, seed: int) -> None:
    """Wait for each new version with the long poll, train, contribute; stop at the last round."""
    x, y = run.data.clients[k]
    version = -1
    with http_client(url, token) as http:
        while True:
            got = http.get(f"/v1/sessions/{sid}/params", params={"after": version, "wait": 60})
            got.raise_for_status()
            body = got.json()
            version = body["version"]
            if version >= run.last_version:
                return
            delta, metrics = local_train(np.asarray(body["params"]), x, y, np.random.default_rng([seed, k, version]))
            r = contribute(http, sid, f"client-{k}", version, delta, len(y), metrics)
            if r.status_code == 200:  # this contribution closed the round: its params are the new version's
                run.record(r.json()["version"], r.json()["params"])


def async_client(run: Run, url: str, sid: str, token: str, k: int, seed: int) -> None:
    """Train from the newest params, contribute; each answer carries the params to start from next."""
    x, y = run.data.clients[k]
    with http_client(url, token) as http:
        body = http.get(f"/v1/sessions/{sid}/params").raise_for_status().json()
        for attempt in range(10 * run.last_version):  # bounded; ends at the last version
            version = body["version"]
            if version >= run.last_version:
                return
            delta, metrics = local_train(np.asarray(body["params"]), x, y, np.random.default_rng([seed, k, attempt]))
            r = contribute(http, sid, f"client-{k}", version, delta, len(y), metrics)
            if r.status_code == 200:
                body = r.json()
                run.record(body["version"], body["params"])
            else:  # 409: too stale by the time it arrived; start again from the current params
                body = http.get(f"/v1/sessions/{sid}/params").raise_for_status().json()


def federate(url: str, data: Data, strategy: str, mode: str, rounds: int, seed: int,
             api_key: str | None) -> dict[float, float]:
    """One session, `rounds` rounds with every client; the test accuracy per round (0 = the start)."""
    n = len(data.clients)
    federation: dict = {"mode": mode, "contribution": "delta"}
    if mode == "sync":
        federation["clients_per_round"] = n
    create = {"optimizer": STRATEGIES[strategy][mode], "dtype": "float64", "params": [0.0] * DIM,
              "federation": federation}
    with http_client(url, api_key) as admin:
        created = admin.post("/v1/sessions", json=create)
        if created.status_code != 201:
            sys.exit(f"creating the session failed: {created.status_code} {created.text}")
        sid, token = created.json()["id"], created.json()["token"]
        with tqdm(total=rounds, desc=f"{strategy} {mode}", unit="round", file=sys.stderr) as bar:
            run = Run(data, rounds, 1 if mode == "sync" else n, bar)
            run.curve[0.0] = accuracy(np.zeros(DIM), data.x_test, data.y_test)
            target = sync_client if mode == "sync" else async_client
            errors: list[Exception] = []

            def client(k: int) -> None:
                try:
                    target(run, url, sid, token, k, seed)
                except Exception as e:  # noqa: BLE001 - any failure ends the run: re-raised below
                    errors.append(e)

            threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        admin.delete(f"/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"})
    if errors:
        raise errors[0]
    return dict(sorted(run.curve.items()))


# -- a server of its own, and the plot ---------------------------------------------------------------


def plot(curves: dict[tuple[str, str], dict[float, float]], path: Path, n_clients: int, alpha: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"fedavg": "tab:blue", "fedadam": "tab:orange", "fedyogi": "tab:green"}
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for (strategy, mode), curve in curves.items():
        opt = STRATEGIES[strategy][mode]
        label = f"{strategy} {mode} ({opt['name']}, lr {opt['lr']:g}): {list(curve.values())[-1]:.3f}"
        ax.plot(list(curve), list(curve.values()), label=label, color=colours[strategy],
                linestyle="-" if mode == "sync" else "--", marker="o" if mode == "sync" else None, markersize=3)
    ax.set_xlabel(f"round (sync: all {n_clients} clients; async: {n_clients} contributions)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9, title="server optimizer: final accuracy")
    ax.set_title(f"Softmax regression on digits, {n_clients} non-IID clients (Dirichlet alpha={alpha:g}) via Descent")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running Descent server (default: start one with the memory store)")
    ap.add_argument("--api-key", default=os.environ.get("DESCENT_API_KEY"), help="for servers with DESCENT_API_KEYS")
    ap.add_argument("--plot", type=Path, default=ROOT / "examples" / "federated_digits.png", help="PNG to write")
    ap.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated: fedavg,fedadam,fedyogi")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: sync,async")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=0.5, help="Dirichlet label skew: smaller is less IID")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    strategies, modes = args.strategies.split(","), args.modes.split(",")
    for name in strategies:
        if name not in STRATEGIES:
            ap.error(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    for name in modes:
        if name not in MODES:
            ap.error(f"unknown mode {name!r}; choose from {', '.join(MODES)}")

    data = split_digits(args.clients, args.alpha, args.seed)
    print(f"{args.clients} clients, examples: {[len(y) for _, y in data.clients]}; classes making 80% of a client's "
          f"examples: {[skew(y) for _, y in data.clients]}; test set: {len(data.y_test)}", flush=True)
    with (own_server() if args.url is None else _given(args.url)) as url:
        curves = {}
        for strategy in strategies:
            for mode in modes:
                curve = federate(url, data, strategy, mode, args.rounds, args.seed, args.api_key)
                curves[strategy, mode] = curve
                print(f"final test accuracy {strategy} {mode}: {list(curve.values())[-1]:.3f}", flush=True)
    plot(curves, args.plot, args.clients, args.alpha)
    print(f"plot: {args.plot}")


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url.rstrip("/")


if __name__ == "__main__":
    main()
