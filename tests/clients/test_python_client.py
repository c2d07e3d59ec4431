"""The Python client (clients/python) against a live server on the test Redis."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time

import descent_client as dc
import httpx
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from descent_client.cli import cli
from descent_client.torch import RemoteOptimizer

from ..conftest import _free_port

# -- a TCP proxy that loses what we tell it to -------------------------------------------

class CuttingProxy:
    """Forwards TCP connections to the server. `cut("response")` makes the next response
    vanish: the request reaches the server (and is applied) but the connection is closed
    instead of relaying the answer. `cut("request")` closes the connection instead of
    forwarding the next request, so the server never sees it."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.pending = {"request": 0, "response": 0}
        self.cuts = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, what: str, times: int = 1) -> None:
        with self.lock:
            self.pending[what] += times

    def _take(self, what: str) -> bool:
        with self.lock:
            if self.pending[what]:
                self.pending[what] -= 1
                self.cuts += 1
                return True
            return False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for src, dst, what in ((client, upstream, "request"), (upstream, client, "response")):
                threading.Thread(target=self._pump, args=(src, dst, what, (client, upstream)), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, what: str, both: tuple[socket.socket, ...]) -> None:
        try:
            while chunk := src.recv(65536):
                if self._take(what):
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        for s in both:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(server):
    p = CuttingProxy(server.url)
    yield p
    p.close()


FAST = dc.Retry(attempts=4, backoff_s=0.01)


# -- sessions ------------------------------------------------------------------------

def test_binary_and_json_give_identical_results_matching_torch(server) -> None:
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=50)
    hp = {"lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1}
    binary = dc.Session.create(server.url, "adam", params=x0, dtype="float64", **hp)
    as_json = dc.Session.create(server.url, "adam", params=x0, dtype="float64", encoding="json", **hp)
    client_held = dc.Session.create(server.url, "adam", dim=50, dtype="float64", encoding="json", **hp)
    tparam = torch.tensor(x0, requires_grad=True)
    topt = torch.optim.Adam([tparam], **hp)
    p = x0.copy()
    for k in range(1, 21):
        g = rng.normal(size=50)
        a, b, p = binary.step(g), as_json.step(g), client_held.step(g, params=p)
        tparam.grad = torch.tensor(g)
        topt.step()
        assert a.dtype == np.float64 and np.array_equal(a, b) and np.array_equal(a, p)
        assert binary.step_count == as_json.step_count == client_held.step_count == k
        np.testing.assert_allclose(a, tparam.detach().numpy(), rtol=1e-12)
    assert np.array_equal(binary.params(), as_json.params())
    for s in (binary, as_json, client_held):
        s.delete()
        s.close()


def test_float32_binary_equals_json_and_torch_bitwise(server) -> None:
    rng = np.random.default_rng(2)
    x0 = rng.normal(size=30).astype(np.float32)
    sessions = [dc.Session.create(server.url, "sgd", params=x0, encoding=e, lr=0.1, momentum=0.9, nesterov=True)
                for e in ("binary", "json")]
    tparam = torch.tensor(x0, requires_grad=True)
    topt = torch.optim.SGD([tparam], lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(10):
        g = rng.normal(size=30).astype(np.float32)
        a, b = (s.step(g) for s in sessions)
        tparam.grad = torch.from_numpy(g)
        topt.step()
        assert a.dtype == np.float32 and np.array_equal(a, b) and np.array_equal(a, tparam.detach().numpy())
    for s in sessions:
        s.delete()


def test_describe_patch_state_round_trip(server) -> None:
    with dc.Session.create(server.url, "rmsprop", params=[1.0, 2.0], dtype="float64", lr=0.1, momentum=0.5) as s:
        assert s.server_held and s.dim == 2 and s.dtype == np.dtype("<f8") and s.optimizer["alpha"] == 0.99
        s.step([1.0, -1.0])
        doc = s.state()
        assert doc["step"] == 1 and set(doc["state"]) == {"square_avg", "momentum_buffer"}
        after_one = s.params()
        s.step([0.5, 0.5])
        assert s.patch(lr=0.01)["optimizer"]["lr"] == 0.01 and s.describe()["step"] == 2
        s.load_state(doc)  # back to step 1
        assert s.step_count == 1 and np.array_equal(s.params(), after_one)
        again = dc.Session.attach(server.url, s.id, s.token)
        assert again.step_count == 1 and again.optimizer["lr"] == 0.01
        again.close()
        s.delete()


def test_async_session_matches_sync(server) -> None:
    g = [0.3, -0.7, 1.1]

    async def run() -> tuple[np.ndarray, int]:
        async with await dc.AsyncSession.create(server.url, "adamw", params=[1.0, 2.0, 3.0], lr=0.1) as s:
            for _ in range(3):
                p = await s.step(g)
            assert (await s.describe())["step"] == 3 and np.array_equal(await s.params(), p)
            await s.delete()
            with pytest.raises(dc.NotFound):
                await s.describe()
            return p, s.step_count

    p_async, steps = asyncio.run(run())
    with dc.Session.create(server.url, "adamw", params=[1.0, 2.0, 3.0], lr=0.1) as s:
        for _ in range(3):
            p = s.step(g)
        s.delete()
    assert steps == 3 and np.array_equal(p_async, p)


# -- typed errors ------------------------------------------------------------------------

def test_typed_exceptions_carry_problem_details(server) -> None:
    with pytest.raises(dc.InvalidInput) as bad_lr:
        dc.Session.create(server.url, "adam", dim=3, lr=-1.0)
    assert bad_lr.value.status == 422 and bad_lr.value.field == "optimizer.lr"
    assert "Invalid learning rate" in bad_lr.value.detail and bad_lr.value.problem["type"].endswith("invalid-input")
    with pytest.raises(dc.InvalidInput) as unknown:
        dc.Session.create(server.url, "adamq", dim=3)
    assert unknown.value.field == "optimizer.name"

    a = dc.Session.create(server.url, "sgd", params=[1.0, 2.0], lr=0.1)
    b = dc.Session.create(server.url, "sgd", params=[1.0, 2.0], lr=0.1)
    with pytest.raises(dc.PreconditionFailed) as stale:
        a.step([1.0, 1.0], if_match=5)
    assert stale.value.status == 412 and stale.value.problem["step"] == 0 and a.step_count == 0
    assert a.describe()["step"] == 0  # a rejected request changes nothing

    with pytest.raises(dc.Unauthorized) as no_token:
        dc.Session.attach(server.url, a.id, "not-a-token")
    assert no_token.value.status == 401 and isinstance(no_token.value, dc.DescentError)
    with pytest.raises(dc.Forbidden) as foreign:
        dc.Session.attach(server.url, a.id, b.token)
    assert foreign.value.status == 403 and foreign.value.detail

    b.delete()
    with pytest.raises(dc.NotFound) as gone:
        b.step([1.0, 1.0])
    assert gone.value.status == 404 and b.id in gone.value.detail
    with pytest.raises(dc.InvalidInput) as not_held:
        dc.Session.create(server.url, "sgd", dim=2).params()
    assert not_held.value.field == "params"
    a.delete()


def test_api_key_and_body_limit(redis_server_factory) -> None:
    guarded = redis_server_factory(api_keys="k-one,k-two", max_body_bytes="4096")
    with pytest.raises(dc.Unauthorized):
        dc.Session.create(guarded.url, "sgd", dim=2000)
    s = dc.Session.create(guarded.url, "sgd", dim=2000, api_key="k-two")
    with pytest.raises(dc.PayloadTooLarge) as big:
        s.step(np.ones(2000), params=np.zeros(2000))  # 16000 bytes
    assert big.value.status == 413
    s.delete()


# -- retries: never twice ----------------------------------------------------------------

def test_step_whose_response_is_lost_is_applied_once(server, proxy) -> None:
    with dc.Session.create(proxy.url, "sgd", params=[0.0, 0.0], dtype="float64", lr=1.0, retry=FAST) as s:
        s.step([1.0, 2.0])
        proxy.cut("response")
        p = s.step([1.0, 2.0])  # applied on the server, answer lost, recovered
        assert proxy.cuts == 1
        assert s.step_count == 2 and np.array_equal(p, [-2.0, -4.0])
        assert s.describe()["step"] == 2 and np.array_equal(s.params(), [-2.0, -4.0])
        s.delete()


def test_step_whose_request_is_lost_is_sent_again(server, proxy) -> None:
    with dc.Session.create(proxy.url, "sgd", params=[0.0, 0.0], dtype="float64", lr=1.0, retry=FAST) as s:
        proxy.cut("request")
        p = s.step([1.0, 2.0])  # never reached the server: resent
        assert proxy.cuts == 1 and s.step_count == 1 and np.array_equal(p, [-1.0, -2.0])
        assert s.describe()["step"] == 1
        s.delete()


def test_lost_response_of_a_client_held_step_is_reported_not_resent(server, proxy) -> None:
    with dc.Session.create(proxy.url, "sgd", dim=2, dtype="float64", lr=1.0, retry=FAST) as s:
        proxy.cut("response")
        with pytest.raises(dc.ResponseLost) as lost:
            s.step([1.0, 2.0], params=[0.0, 0.0])
        assert lost.value.step == 1 and s.describe()["step"] == 1
        s.delete()


def test_unconditional_step_is_not_retried_after_a_drop(server, proxy) -> None:
    with dc.Session.create(proxy.url, "sgd", params=[0.0], dtype="float64", lr=1.0, retry=FAST,
                           conditional_steps=False) as s:
        proxy.cut("response")
        with pytest.raises(httpx.TransportError):
            s.step([1.0])
        assert s.describe()["step"] == 1 and np.array_equal(s.params(), [-1.0])
        s.delete()


def test_idempotent_calls_are_retried(server, proxy) -> None:
    with dc.Session.create(proxy.url, "adam", params=[1.0], retry=FAST) as s:
        proxy.cut("response")
        assert s.patch(lr=0.5)["optimizer"]["lr"] == 0.5
        proxy.cut("request", times=2)
        assert s.describe()["step"] == 0
        proxy.cut("response")
        s.delete()  # the first DELETE landed; the retry's 404 means done
        assert proxy.cuts == 4
        with pytest.raises(dc.NotFound):
            s.describe()


# -- the torch drop-in -------------------------------------------------------------------

CASES = {
    "sgd": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "adamw": (torch.optim.AdamW, {"lr": 0.01, "betas": (0.85, 0.99)}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.9}),
}


def _model(dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).to(dtype)


def _groups(model: torch.nn.Module) -> list[dict]:
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if n.endswith("weight")], "weight_decay": 0.05},
            {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0}]


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((model(x) - y) ** 2).mean()


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_remote_optimizer_is_a_drop_in(server, name, dtype) -> None:
    """200 steps of a two-layer model, weights with weight decay and biases without.

    float64: each model computes its own gradients (the full closed loop). A training loop
    can amplify last-bit differences chaotically (seen with centered RMSprop at small lr:
    1e-16 at step 100, 1e-4 at step 140, as the centered variance nears zero), so the
    hyperparameters here are ones whose loop stays stable. float32: torch's float32 square
    root is not correctly rounded (it differs from IEEE sqrt in the last bit for ~20% of
    inputs; the server's is exact), so every sqrt-based run diverges in a closed loop; the
    torch optimizer is given the remote model's gradients each step instead, and what is
    compared is the optimizer, at torch's float32 tolerance."""
    local_cls, hp = CASES[name]
    remote_model, local_model = _model(dtype), _model(dtype)
    remote = RemoteOptimizer(_groups(remote_model), name, url=server.url, **hp)
    local = local_cls(_groups(local_model), **hp)
    assert remote.param_groups[1]["weight_decay"] == 0.0 and remote.param_groups[0]["weight_decay"] == 0.05
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 8, generator=gen, dtype=dtype), torch.randn(64, 4, generator=gen, dtype=dtype)
    closed_loop = dtype == torch.float64
    for _ in range(200):
        remote.zero_grad()
        _loss(remote_model, x, y).backward()
        local.zero_grad()
        if closed_loop:
            _loss(local_model, x, y).backward()
        else:
            for p, q in zip(remote_model.parameters(), local_model.parameters()):
                q.grad = p.grad.clone()
        remote.step()
        local.step()
    assert remote.sessions[0].step_count == 200
    rtol, atol = (1e-9, 1e-11) if closed_loop else (1e-5, 1e-6)
    for p, q in zip(remote_model.parameters(), local_model.parameters()):
        torch.testing.assert_close(p, q, rtol=rtol, atol=atol)
    assert float(torch.norm(remote_model[0].weight.detach() - _model(dtype)[0].weight.detach())) > 0.05  # it did train
    remote.delete()


def test_remote_optimizer_state_dict_round_trip_and_lr_changes(server) -> None:
    """State dicts are torch's format: remote -> remote, torch -> remote and remote -> torch."""
    dtype = torch.float64
    models = [_model(dtype) for _ in range(2)]
    remote = RemoteOptimizer(_groups(models[0]), "adamw", url=server.url, lr=0.02, amsgrad=True)
    local = torch.optim.AdamW(_groups(models[1]), lr=0.02, amsgrad=True)
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(32, 8, generator=gen, dtype=dtype), torch.randn(32, 4, generator=gen, dtype=dtype)

    def train(opt, model, steps):
        for _ in range(steps):
            opt.zero_grad()
            _loss(model, x, y).backward()
            opt.step()

    train(remote, models[0], 30)
    train(local, models[1], 30)
    ours, theirs = remote.state_dict(), local.state_dict()
    assert not remote.state  # the server holds the state
    assert ours["state"].keys() == theirs["state"].keys()
    for index, entry in theirs["state"].items():
        assert ours["state"][index].keys() == entry.keys()  # step, exp_avg, exp_avg_sq, max_exp_avg_sq
        for key, value in entry.items():
            torch.testing.assert_close(ours["state"][index][key], value, rtol=1e-9, atol=1e-12, check_dtype=False)

    # remote -> new remote (new sessions), with an lr change mid-run on both sides
    resumed = RemoteOptimizer(_groups(models[0]), "adamw", url=server.url)
    resumed.load_state_dict(ours)
    remote.delete()
    assert resumed.sessions[0].describe()["step"] == 30 and resumed.param_groups[0]["amsgrad"] is True
    for opt in (resumed, local):
        for group in opt.param_groups:
            group["lr"] = 0.005
    train(resumed, models[0], 30)
    train(local, models[1], 30)
    assert resumed.sessions[1].optimizer["lr"] == 0.005
    for p, q in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(p, q, rtol=1e-7, atol=1e-10)

    # torch -> remote and remote -> torch
    from_torch = RemoteOptimizer(_groups(models[0]), "adamw", url=server.url)
    from_torch.load_state_dict(local.state_dict())
    to_torch = torch.optim.AdamW(_groups(models[1]))
    to_torch.load_state_dict(resumed.state_dict())
    resumed.delete()
    train(from_torch, models[0], 20)
    train(to_torch, models[1], 20)
    for p, q in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(p, q, rtol=1e-7, atol=1e-10)
    from_torch.delete()


def test_remote_optimizer_params_without_gradients(server) -> None:
    model = _model(torch.float32)
    opt = RemoteOptimizer(_groups(model), "adam", url=server.url, lr=0.1)
    model(torch.ones(1, 8)).sum().backward()
    before = [p.detach().clone() for p in model.parameters()]
    model[0].bias.grad = None  # biases group only partly has gradients
    with pytest.raises(RuntimeError, match="no gradient"):
        opt.step()
    for p in model.parameters():
        if p.ndim == 1:
            p.grad = None  # no bias has a gradient: that group is skipped, as torch would
    opt.step()
    assert [s.describe()["step"] for s in opt.sessions] == [1, 0]
    assert torch.equal(model[0].bias, before[1]) and not torch.equal(model[0].weight, before[0])
    opt.delete()


def test_remote_optimizer_adopts_locally_changed_params(server) -> None:
    model = _model(torch.float32)
    opt = RemoteOptimizer(model.parameters(), "sgd", url=server.url, lr=1.0)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(2.0)  # changed behind the optimizer's back
            p.grad = torch.ones_like(p)
    opt.step()
    assert all(torch.equal(p, torch.ones_like(p)) for p in model.parameters())
    assert np.array_equal(opt.sessions[0].params(), np.ones(opt.sessions[0].dim, np.float32))
    opt.delete()


# -- the command line --------------------------------------------------------------------

def test_cli_optimizers_sessions_and_bench(server) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["optimizers", "--url", server.url])
    assert listed.exit_code == 0, listed.output
    assert "adamw" in listed.output and "exp_avg_sq" in listed.output and "weight_decay=0.01" in listed.output
    as_json = runner.invoke(cli, ["optimizers", "--url", server.url, "--json"])
    assert {o["name"] for o in json.loads(as_json.output)} >= {"sgd", "adam", "rmsprop"}

    s = dc.Session.create(server.url, "adam", dim=4)
    got = runner.invoke(cli, ["sessions", "get", s.id, "--token", s.token, "--url", server.url])
    assert got.exit_code == 0 and json.loads(got.output)["id"] == s.id
    wrong = runner.invoke(cli, ["sessions", "get", s.id, "--token", "nope", "--url", server.url])
    assert wrong.exit_code == 1 and "401" in wrong.output
    deleted = runner.invoke(cli, ["sessions", "delete", s.id, "--url", server.url], env={"DESCENT_TOKEN": s.token})
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    gone = runner.invoke(cli, ["sessions", "get", s.id, "--token", s.token, "--url", server.url])
    assert gone.exit_code == 1 and "No such session" in gone.output

    bench = runner.invoke(cli, ["bench", "--url", server.url, "--dims", "10,1000", "--steps", "5"])
    assert bench.exit_code == 0, bench.output
    lines = bench.output.splitlines()
    assert lines[1].split()[:5] == ["dim", "encoding", "steps", "steps/s", "p50"] and len(lines) == 3 + 4


def test_cli_serve_starts_the_server() -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "descent_client.cli", "serve", "--port", str(port),
                             "--store-url", "memory://"])
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "descent serve exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "descent serve never answered"
            time.sleep(0.1)
        with dc.Session.create(f"http://127.0.0.1:{port}", "sgd", params=[1.0], lr=0.5) as s:
            assert np.array_equal(s.step([1.0]), [0.5])
    finally:
        proc.terminate()
        proc.wait(15)
