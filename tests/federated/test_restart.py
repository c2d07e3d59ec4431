"""A server killed with SIGKILL in the middle of a round, and a new one started on the same
Redis keys: clients retry what failed, with their Idempotency-Key, against the new server,
and the round completes with every contribution counted exactly once.

Client c sends CLIENTS * e_c, so the closed round's mean adds exactly 1.0 to every
coordinate: any contribution lost leaves a 0, any counted twice breaks the count first."""

from __future__ import annotations

import random
import threading
import time

import httpx
import numpy as np

from ..conftest import create_session, http_client

CLIENTS = 12


def test_sigkill_mid_round_then_restart_loses_and_doubles_nothing(redis_server_factory) -> None:
    first = redis_server_factory()
    prefix = first.env["DESCENT_REDIS_PREFIX"]
    with http_client(first.url, timeout=30) as http:
        sid, auth, _ = create_session(http, optimizer={"name": "sgd", "lr": 1.0}, dtype="float64",
                                      params=[0.0] * CLIENTS, federation={"mode": "sync", "clients_per_round": CLIENTS})
    current = {"url": first.url}
    answered = threading.Semaphore(0)
    retried: list[int] = []
    results: dict[int, httpx.Response] = {}

    def client(c: int) -> None:
        random.seed(c)
        time.sleep(random.uniform(0, 1.0))
        update = [float(CLIENTS) if i == c else 0.0 for i in range(CLIENTS)]
        body = {"client_id": f"c{c}", "version": 0, "update": update}
        deadline = time.monotonic() + 120
        while True:
            try:
                with http_client(current["url"], timeout=10) as http:
                    r = http.post(f"/v1/sessions/{sid}/contributions", json=body,
                                  headers={**auth, "Idempotency-Key": f"c{c}-v0"})
                break
            except httpx.TransportError:  # the server died under us: retry the same request
                retried.append(c)
                assert time.monotonic() < deadline
                time.sleep(0.2)
        results[c] = r
        answered.release()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for _ in range(CLIENTS // 2):
        assert answered.acquire(timeout=60)
    first.proc.kill()  # SIGKILL: no shutdown, requests in flight are cut
    first.proc.wait(10)
    second = redis_server_factory(prefix=prefix)
    current["url"] = second.url
    for t in threads:
        t.join(130)
    assert len(results) == CLIENTS, retried
    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [200] + [202] * (CLIENTS - 1), [r.text for r in results.values()]
    with http_client(second.url, timeout=30) as http:
        held = http.get(f"/v1/sessions/{sid}/params", headers=auth).json()
        assert held["version"] == 1 and held["params"] == [1.0] * CLIENTS
        status = http.get(f"/v1/sessions/{sid}/federation", headers=auth).json()
        assert status["history"][0]["contributions"] == CLIENTS and status["received"] == 0
        # A client that had its answer before the crash retries anyway: its receipt survived.
        early = min(results, key=lambda c: results[c].json()["received"])
        again = http.post(f"/v1/sessions/{sid}/contributions", headers={**auth, "Idempotency-Key": f"c{early}-v0"},
                          json={"client_id": f"c{early}", "version": 0,
                                "update": [float(CLIENTS) if i == early else 0.0 for i in range(CLIENTS)]})
        assert again.status_code == 202 and again.json() == {**results[early].json(), "replayed": True}
        assert np.array_equal(http.get(f"/v1/sessions/{sid}/params", headers=auth).json()["params"], held["params"])
