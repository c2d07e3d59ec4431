"""Fidelity through HTTP: torch.optim trajectories reproduced step by step through the API,
for every optimizer torch has, both dtypes, client-held parameters in binary and
server-held parameters in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ..conftest import create_session
from ..optim.problems import Quadratic
from ..optim.reference import TORCH_CASES
from ..optim.test_torch_parity import TOL, rel_err

STEPS = 40
DIM = 16
OCTET = "application/octet-stream"
CASES = [(name, dtype) for name in TORCH_CASES for dtype in (np.float64, np.float32)]


def jsonable(hp: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in hp.items()}


@pytest.mark.parametrize(("name", "dtype"), CASES, ids=[f"{n}-{d.__name__}" for n, d in CASES])
def test_torch_trajectory_through_http(http, name: str, dtype: type) -> None:
    hp = TORCH_CASES[name].draw(np.random.default_rng([77, list(TORCH_CASES).index(name)]))
    problem = Quadratic(DIM, np.dtype(dtype), seed=3)
    sign = -1.0 if hp.get("maximize") else 1.0
    dtype_name = np.dtype(dtype).name
    # Client-held session driven in binary; server-held session driven in JSON.
    binary_id, binary_auth, created = create_session(
        http, optimizer={"name": name, **jsonable(hp)}, dim=DIM, dtype=dtype_name)
    held_id, held_auth, _ = create_session(
        http, optimizer={"name": name, **jsonable(hp)}, dtype=dtype_name, params=problem.x0.tolist())
    resolved = {k: tuple(v) if isinstance(v, list) else v for k, v in created["optimizer"].items() if k != "name"}
    tparam = torch.tensor(problem.x0.copy(), requires_grad=True)
    topt = TORCH_CASES[name].torch_cls([tparam], **resolved)
    p_bin = problem.x0.copy()
    p_json = problem.x0.copy()
    le = np.dtype(dtype).newbyteorder("<")
    for k in range(1, STEPS + 1):
        g = (sign * problem.grad(p_bin)).astype(dtype)
        r = http.post(f"/v1/sessions/{binary_id}/step",
                      headers={**binary_auth, "Content-Type": OCTET, "Accept": OCTET},
                      content=p_bin.astype(le).tobytes() + g.astype(le).tobytes())
        assert r.status_code == 200, r.text
        p_bin = np.frombuffer(r.content, le).astype(dtype)
        g_json = (sign * problem.grad(p_json)).astype(dtype)
        r = http.post(f"/v1/sessions/{held_id}/step", headers=held_auth, json={"grads": g_json.tolist()})
        assert r.status_code == 200 and r.json()["step"] == k, r.text
        p_json = np.array(r.json()["params"], dtype=dtype)
        tparam.grad = torch.from_numpy((sign * problem.grad(tparam.detach().numpy())).astype(dtype))
        topt.step()
        ref = tparam.detach().numpy()
        assert rel_err(p_bin, ref) < TOL[dtype], f"binary, step {k}"
        assert rel_err(p_json, ref) < TOL[dtype], f"json, step {k}"


GOLDEN = sorted((Path(__file__).parents[1] / "optim" / "golden").glob("*-0.npz"))


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_optax_trajectory_through_http(http, path: Path) -> None:
    """lion and yogi (no torch equivalent): optax 0.2.8's golden trajectory, through the API."""
    with np.load(path) as f:
        golden = {k: f[k] for k in f.files}
    name = path.name.split("-")[0]
    hp = json.loads(str(golden["hyperparameters"]))
    A, b, x0 = golden["A"], golden["b"], golden["x0"]
    sign = -1.0 if hp.get("maximize") else 1.0
    sid, auth, _ = create_session(http, optimizer={"name": name, **hp}, dtype=x0.dtype.name, params=x0.tolist())
    le = x0.dtype.newbyteorder("<")
    params = x0.copy()
    for k, expected in enumerate(golden["params"][:STEPS], start=1):
        grad = (sign * (A @ params - b)).astype(x0.dtype)
        r = http.post(f"/v1/sessions/{sid}/step", headers={**auth, "Content-Type": OCTET, "Accept": OCTET},
                      content=grad.astype(le).tobytes())
        assert r.status_code == 200 and r.headers["etag"] == f'"{k}"', r.text
        params = np.frombuffer(r.content, le).astype(x0.dtype)
        assert rel_err(params, expected) < TOL[x0.dtype.type], f"step {k}"
