"""Many clients contributing at once to one federated session served by two uvicorn
workers on Redis: every accepted contribution is counted exactly once and every round
closes exactly once. Each client's delta is a multiple of its own unit vector, scaled so
that the mean adds exactly 1.0 to that client's coordinate per counted contribution:
the final params are an exact tally of what was counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from ..api.test_concurrency import connections_per_worker, run_all
from ..conftest import Server, create_session, http_client

CLIENTS = 12


@pytest.fixture(scope="module")
def two_workers(redis_server_factory) -> Server:
    return redis_server_factory(workers=2)


@pytest.fixture
def clients(two_workers: Server) -> Iterator[list[httpx.Client]]:
    opened: list[httpx.Client] = []
    try:
        while len(opened) < CLIENTS or min(connections_per_worker(two_workers), default=0) == 0:
            assert len(opened) < 64, "connections never reached both workers"
            client = http_client(two_workers.url, timeout=60)
            assert client.get("/healthz").status_code == 200
            opened.append(client)
        yield opened
    finally:
        for client in opened:
            client.close()


def test_sync_rounds_across_two_workers_count_each_contribution_once(clients: list[httpx.Client]) -> None:
    n, per_round, rounds = len(clients), 5, 10
    sid, auth, _ = create_session(clients[0], optimizer={"name": "sgd", "lr": 1.0}, dtype="float64",
                                  params=[0.0] * n, federation={"mode": "sync", "clients_per_round": per_round})

    def work(c: int, client: httpx.Client, barrier: threading.Barrier) -> list[tuple[int, dict]]:
        delta = [float(per_round) if i == c else 0.0 for i in range(n)]
        answers: list[tuple[int, dict]] = []
        version = 0
        barrier.wait()
        while version < rounds:
            r = client.post(f"/v1/sessions/{sid}/contributions", headers=auth,
                            json={"client_id": f"c{c}", "version": version, "update": delta})
            assert r.status_code in (200, 202, 409), r.text
            answers.append((r.status_code, r.json()))
            # Wait for the round to close (or learn the version a 409 names), then go again.
            poll = client.get(f"/v1/sessions/{sid}/params", params={"after": version, "wait": 30}, headers=auth)
            version = poll.json()["version"]
        return answers

    results = run_all(clients, work)
    counted = {c: [a for s, a in answers if s in (200, 202)] for c, answers in enumerate(results)}
    steps = sorted(a["version"] for answers in results for s, a in answers if s == 200)
    assert steps[:rounds] == list(range(1, rounds + 1))  # each round closed once, by one contribution
    held = clients[0].get(f"/v1/sessions/{sid}/params", headers=auth).json()
    final = held["version"]
    assert final >= rounds and steps == list(range(1, final + 1))
    # Params: one exact unit per contribution counted in a closed round.
    in_closed = [sum(1 for a in counted[c] if a["round"] < final) for c in range(n)]
    assert held["params"] == [float(k) for k in in_closed]
    assert sum(in_closed) == per_round * final
    status = clients[0].get(f"/v1/sessions/{sid}/federation", headers=auth).json()
    assert [h["contributions"] for h in status["history"]] == [per_round] * final
    assert status["received"] == sum(1 for c in range(n) for a in counted[c] if a["round"] == final)
    # Nobody counted twice in a round.
    for c in range(n):
        rounds_of_c = [a["round"] for a in counted[c]]
        assert len(rounds_of_c) == len(set(rounds_of_c))


def test_async_across_two_workers_every_contribution_one_step(clients: list[httpx.Client]) -> None:
    n, each = len(clients), 15
    sid, auth, _ = create_session(
        clients[0], optimizer={"name": "sgd", "lr": 1.0}, dtype="float64", params=[0.0] * n,
        federation={"mode": "async", "max_staleness": 1000, "staleness": {"function": "constant"}},
    )

    def work(c: int, client: httpx.Client, barrier: threading.Barrier) -> list[int]:
        delta = [1.0 if i == c else 0.0 for i in range(n)]
        barrier.wait()
        versions = []
        for k in range(each):
            r = client.post(f"/v1/sessions/{sid}/contributions", headers={**auth, "Idempotency-Key": f"{c}-{k}"},
                            json={"client_id": f"c{c}", "version": 0, "update": delta})
            assert r.status_code == 200, r.text
            versions.append(r.json()["version"])
        return versions

    versions = sorted(v for vs in run_all(clients, work) for v in vs)
    assert versions == list(range(1, n * each + 1))  # one distinct step per contribution
    held = clients[0].get(f"/v1/sessions/{sid}/params", headers=auth).json()
    assert held["version"] == n * each and held["params"] == [float(each)] * n
