"""The main flows over real HTTP against a real uvicorn process on Redis."""

from __future__ import annotations

import numpy as np
import torch

from ..conftest import create_session

OCTET = "application/octet-stream"


def test_server_held_adam_matches_torch_json_and_binary(http) -> None:
    x0 = [0.5, -1.0, 2.0, 3.5]
    sid, auth, created = create_session(http, optimizer={"name": "adam", "lr": 0.05}, dtype="float64", params=x0)
    assert created["step"] == 0 and created["server_held"] and created["optimizer"]["betas"] == [0.9, 0.999]
    assert "token" not in http.get(f"/v1/sessions/{sid}", headers=auth).json()
    tparam = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.Adam([tparam], lr=0.05)
    rng = np.random.default_rng(0)
    for k in range(1, 21):
        g = rng.normal(size=4)
        if k % 2:
            r = http.post(f"/v1/sessions/{sid}/step", headers=auth, json={"grads": g.tolist()})
            ours = np.array(r.json()["params"])
            assert r.json()["step"] == k
        else:
            r = http.post(f"/v1/sessions/{sid}/step", headers={**auth, "Content-Type": OCTET, "Accept": OCTET},
                          content=g.astype("<f8").tobytes())
            assert r.headers["content-type"] == OCTET
            ours = np.frombuffer(r.content, "<f8")
        assert r.status_code == 200 and r.headers["etag"] == f'"{k}"'
        tparam.grad = torch.tensor(g)
        topt.step()
        np.testing.assert_allclose(ours, tparam.detach().numpy(), rtol=1e-12)
    held = http.get(f"/v1/sessions/{sid}/params", headers=auth).json()
    assert held["step"] == 20 and np.allclose(held["params"], tparam.detach().numpy(), rtol=1e-12)
    raw = http.get(f"/v1/sessions/{sid}/params", headers={**auth, "Accept": OCTET}).content
    assert np.array_equal(np.frombuffer(raw, "<f8"), np.array(held["params"]))


def test_client_held_sgd_binary_params_then_grads(http) -> None:
    sid, auth, created = create_session(http, optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9}, dim=3)
    assert created["dtype"] == "float32" and not created["server_held"]
    p = np.array([1.0, 2.0, 3.0], np.float32)
    tparam = torch.tensor(p.copy(), requires_grad=True)
    topt = torch.optim.SGD([tparam], lr=0.1, momentum=0.9)
    for _ in range(5):
        g = (2 * p).astype(np.float32)
        r = http.post(f"/v1/sessions/{sid}/step", headers={**auth, "Content-Type": OCTET, "Accept": OCTET},
                      content=p.tobytes() + g.tobytes())
        assert r.status_code == 200, r.text
        p = np.frombuffer(r.content, np.float32).copy()
        tparam.grad = 2 * tparam.detach()
        topt.step()
        assert np.array_equal(p, tparam.detach().numpy())
    # Client-held: there are no parameters to read.
    assert http.get(f"/v1/sessions/{sid}/params", headers=auth).status_code == 422


def test_if_match_applies_only_at_the_named_step(http) -> None:
    sid, auth, _ = create_session(http, optimizer={"name": "sgd", "lr": 1.0}, params=[0.0])
    ok = http.post(f"/v1/sessions/{sid}/step", headers={**auth, "If-Match": '"0"'}, json={"grads": [1.0]})
    assert ok.status_code == 200 and ok.headers["etag"] == '"1"'
    stale = http.post(f"/v1/sessions/{sid}/step", headers={**auth, "If-Match": '"0"'}, json={"grads": [1.0]})
    assert stale.status_code == 412 and stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["step"] == 1
    assert http.get(f"/v1/sessions/{sid}/params", headers=auth).json() == {"params": [-1.0], "step": 1}


def test_state_export_import_round_trip_and_patch(http) -> None:
    sid, auth, _ = create_session(http, optimizer={"name": "adam", "amsgrad": True}, dtype="float64", params=[1.0, 2.0])
    for g in ([0.1, 0.2], [0.3, -0.4]):
        http.post(f"/v1/sessions/{sid}/step", headers=auth, json={"grads": g})
    doc = http.get(f"/v1/sessions/{sid}/state", headers=auth).json()
    assert doc["step"] == 2 and set(doc["state"]) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    other, auth2, _ = create_session(http, optimizer={"name": "adam", "amsgrad": True}, dtype="float64", params=[0.0, 0.0])
    put = http.put(f"/v1/sessions/{other}/state", headers=auth2, json=doc)
    assert put.status_code == 200, put.text
    assert http.get(f"/v1/sessions/{other}/state", headers=auth2).json() == {**doc}
    patched = http.patch(f"/v1/sessions/{sid}", headers=auth, json={"optimizer": {"lr": 0.5}})
    assert patched.status_code == 200 and patched.json()["optimizer"]["lr"] == 0.5
    # Both continue identically except for the changed lr: same step count.
    a = http.post(f"/v1/sessions/{sid}/step", headers=auth, json={"grads": [1.0, 1.0]}).json()
    b = http.post(f"/v1/sessions/{other}/step", headers=auth2, json={"grads": [1.0, 1.0]}).json()
    assert a["step"] == b["step"] == 3 and a["params"] != b["params"]


def test_delete_then_gone(http) -> None:
    sid, auth, _ = create_session(http, optimizer={"name": "sgd"}, dim=2)
    assert http.delete(f"/v1/sessions/{sid}", headers=auth).status_code == 204
    assert http.get(f"/v1/sessions/{sid}", headers=auth).status_code == 404


def test_tokens_are_per_session(http) -> None:
    a, auth_a, _ = create_session(http, optimizer={"name": "sgd"}, dim=1)
    b, auth_b, _ = create_session(http, optimizer={"name": "sgd"}, dim=1)
    assert http.get(f"/v1/sessions/{b}", headers=auth_a).status_code == 403
    assert http.get(f"/v1/sessions/{b}").status_code == 401
    assert http.get(f"/v1/sessions/{b}", headers={"Authorization": "Bearer " + auth_b["Authorization"][-5:]}).status_code == 401
    assert http.get(f"/v1/sessions/{b}", headers=auth_b).status_code == 200


def test_optimizer_catalogue_lists_the_registry(http) -> None:
    from service.optim import OPTIMIZERS

    listed = {o["name"]: o for o in http.get("/v1/optimizers").json()}
    assert set(listed) == set(OPTIMIZERS)
    assert {h["name"] for h in listed["adam"]["hyperparameters"]} >= {"lr", "betas", "eps", "weight_decay", "amsgrad"}
    assert "exp_avg" in listed["adam"]["state"]


def test_health_ready_metrics(http) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").status_code == 200
    sid, auth, _ = create_session(http, optimizer={"name": "adam"}, params=[1.0])
    http.post(f"/v1/sessions/{sid}/step", headers=auth, json={"grads": [1.0]})
    text = http.get("/metrics").text
    assert 'descent_steps_total{optimizer="adam"}' in text
    assert "descent_step_seconds_bucket" in text and "descent_request_seconds_bucket" in text


def test_session_expires_after_its_own_idle_ttl(http) -> None:
    import time

    sid, auth, created = create_session(http, optimizer={"name": "sgd"}, dim=1, ttl_s=2)
    assert created["ttl_s"] == 2
    time.sleep(1.2)
    assert http.get(f"/v1/sessions/{sid}", headers=auth).status_code == 200  # use refreshes the TTL
    time.sleep(1.2)
    assert http.get(f"/v1/sessions/{sid}", headers=auth).status_code == 200
    time.sleep(2.5)
    assert http.get(f"/v1/sessions/{sid}", headers=auth).status_code == 404


def test_token_is_stored_only_as_a_hash(http, server, redis_url) -> None:
    import hashlib

    import redis

    sid, auth, created = create_session(http, optimizer={"name": "sgd"}, dim=1)
    token = created["token"]
    assert len(token.split(".", 1)[1]) >= 43  # 256 random bits, base64url
    prefix = server.env["DESCENT_REDIS_PREFIX"]
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:{{{sid}}}:*"))
    assert len(keys) >= 2
    stored = b"".join(client.get(k) or b"" for k in keys)
    assert token.encode() not in stored and token.split(".", 1)[1].encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored
