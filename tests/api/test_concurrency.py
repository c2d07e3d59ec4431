"""Concurrent steps on one session across two uvicorn worker processes on the real Redis.

The contract: concurrent steps are serialised, none lost, none applied twice, each
response's step count distinct; a conditional step (If-Match) applies only at its step.
Every client is a thread with its own httpx client (its own keep-alive connection); the
connections are spread over both workers, checked from /proc, so the races are between
processes and the Redis compare-and-set, not only the per-process asyncio lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch

from ..conftest import Server, create_session

CLIENTS = 8
STEPS = 50
DIM = 8


@pytest.fixture(scope="module")
def two_workers(redis_server_factory) -> Server:
    return redis_server_factory(workers=2)


# -- which worker holds which connection (Linux /proc) ----------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    spawned = b"spawn_main" in f.read()
            except OSError:
                continue
            if ppid == pid and spawned:
                out.append(int(entry))
    return out


def _established_inodes(port: int) -> set[int]:
    """Socket inodes of established TCP connections whose local port is `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":
                inodes.add(int(cols[9]))
    return inodes


def connections_per_worker(server: Server) -> list[int]:
    port = int(server.url.rsplit(":", 1)[1])
    served = _established_inodes(port)
    counts = []
    for pid in _children(server.proc.pid):
        held = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                held.add(int(link[8:-1]))
        counts.append(len(held & served))
    return counts


@pytest.fixture
def clients(two_workers: Server) -> Iterator[list[httpx.Client]]:
    """CLIENTS connected clients, at least one connection on each worker.

    Which worker accepts a connection is up to the kernel; open them one at a time and
    add more until both workers hold some (the extras are used too)."""
    opened: list[httpx.Client] = []
    try:
        while len(opened) < CLIENTS or min(connections_per_worker(two_workers), default=0) == 0:
            assert len(opened) < 64, f"connections never reached both workers: {connections_per_worker(two_workers)}"
            client = httpx.Client(base_url=two_workers.url, timeout=60)
            assert client.get("/healthz").status_code == 200  # opens the keep-alive connection
            opened.append(client)
        counts = connections_per_worker(two_workers)
        assert len(counts) == 2 and min(counts) > 0, counts
        yield opened
    finally:
        for client in opened:
            client.close()


def run_all(clients: list[httpx.Client], work: Callable[[int, httpx.Client, threading.Barrier], object]) -> list:
    """Run `work(index, client, barrier)` in one thread per client; their results in client order."""
    barrier = threading.Barrier(len(clients))
    with ThreadPoolExecutor(len(clients)) as pool:
        futures = [pool.submit(work, i, c, barrier) for i, c in enumerate(clients)]
        return [f.result() for f in futures]


# -- tests ------------------------------------------------------------------------------


def test_concurrent_commuting_steps_lose_nothing(two_workers: Server, clients: list[httpx.Client]) -> None:
    """SGD, lr 1, float64, one constant integer gradient per client: any order of the
    steps ends at x0 - sum of every gradient sent, exactly."""
    n = len(clients)
    x0 = np.arange(DIM, dtype=np.float64) * 1000.0
    grads = [np.arange(1, DIM + 1, dtype=np.float64) * (c + 1) + 0.5 * c for c in range(n)]
    sid, auth, _ = create_session(clients[0], optimizer={"name": "sgd", "lr": 1.0}, dtype="float64",
                                  params=x0.tolist())

    def work(c: int, client: httpx.Client, barrier: threading.Barrier) -> list[int]:
        barrier.wait()
        seen = []
        for _ in range(STEPS):
            r = client.post(f"/v1/sessions/{sid}/step", headers=auth, json={"grads": grads[c].tolist()})
            assert r.status_code == 200, r.text
            assert r.headers["etag"] == f'"{r.json()["step"]}"'
            seen.append(r.json()["step"])
        return seen

    steps = [s for seen in run_all(clients, work) for s in seen]
    assert sorted(steps) == list(range(1, n * STEPS + 1))  # distinct, none lost, none twice
    held = clients[0].get(f"/v1/sessions/{sid}/params", headers=auth).json()
    assert held["step"] == n * STEPS
    assert np.array_equal(np.array(held["params"]), x0 - STEPS * np.sum(grads, axis=0))


def test_concurrent_adam_steps_follow_one_sequential_order(two_workers: Server, clients: list[httpx.Client]) -> None:
    """Adam depends on the order of its gradients: the responses, sorted by their step
    count, must be exactly the trajectory torch.optim.Adam takes with the gradients in
    that order."""
    n = len(clients)
    rng = np.random.default_rng(11)
    x0 = rng.normal(size=DIM)
    grads = rng.normal(size=(n, STEPS, DIM))
    sid, auth, _ = create_session(clients[0], optimizer={"name": "adam", "lr": 0.01}, dtype="float64",
                                  params=x0.tolist())

    def work(c: int, client: httpx.Client, barrier: threading.Barrier) -> list[tuple[int, np.ndarray, np.ndarray]]:
        barrier.wait()
        seen = []
        for k in range(STEPS):
            r = client.post(f"/v1/sessions/{sid}/step", headers=auth, json={"grads": grads[c, k].tolist()})
            assert r.status_code == 200, r.text
            seen.append((r.json()["step"], grads[c, k], np.array(r.json()["params"])))
        return seen

    responses = sorted((entry for seen in run_all(clients, work) for entry in seen), key=lambda e: e[0])
    assert [step for step, _, _ in responses] == list(range(1, n * STEPS + 1))
    tparam = torch.tensor(x0, requires_grad=True)
    topt = torch.optim.Adam([tparam], lr=0.01)
    for step, g, params in responses:
        tparam.grad = torch.from_numpy(g)
        topt.step()
        np.testing.assert_allclose(params, tparam.detach().numpy(), rtol=1e-10, err_msg=f"step {step}")
    held = clients[0].get(f"/v1/sessions/{sid}/params", headers=auth).json()
    assert held["step"] == n * STEPS and np.array_equal(np.array(held["params"]), responses[-1][2])


def test_racing_conditional_steps_exactly_one_wins(two_workers: Server, clients: list[httpx.Client]) -> None:
    """Round after round, every client fires If-Match at the current step at once:
    exactly one 200 (ETag the next step), the rest 412 naming that next step, and the
    held parameters carry exactly the winners' gradients."""
    rounds = 20
    n = len(clients)
    sid, auth, _ = create_session(clients[0], optimizer={"name": "sgd", "lr": 1.0}, dtype="float64",
                                  params=[0.0] * n)
    expected = np.zeros(n)
    for k in range(rounds):

        def work(c: int, client: httpx.Client, barrier: threading.Barrier, k: int = k) -> httpx.Response:
            one_hot = [float(i == c) for i in range(n)]  # the winner is visible in the params
            barrier.wait()
            return client.post(f"/v1/sessions/{sid}/step", headers={**auth, "If-Match": f'"{k}"'},
                               json={"grads": one_hot})

        results = run_all(clients, work)
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200] + [412] * (n - 1), (k, [r.text for r in results])
        winner = next(c for c, r in enumerate(results) if r.status_code == 200)
        assert results[winner].headers["etag"] == f'"{k + 1}"'
        assert all(r.json()["step"] == k + 1 for r in results if r.status_code == 412)
        expected[winner] -= 1.0
        assert results[winner].json()["params"] == expected.tolist()
    held = clients[0].get(f"/v1/sessions/{sid}/params", headers=auth).json()
    assert held == {"params": expected.tolist(), "step": rounds}
