"""Every optimizer torch has, against torch.optim live: parameters after every step,
every state entry at the end, and a torch state imported mid-run continuing identically.

Both sides get the same gradient values (computed by numpy from each side's own
parameters), so any difference comes from the optimizer arithmetic alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from service import optim
from service.optim import state as state_codec

from .problems import Quadratic
from .reference import TORCH_CASES

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DRAWS = 6
STEPS = 200
DIM = 24


def rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    return float(np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64)))) / scale


def torch_state_json(topt: torch.optim.Optimizer, tparam: torch.Tensor) -> dict[str, Any]:
    """torch's per-parameter state as the contract's JSON `state` object."""
    out: dict[str, Any] = {}
    for name, value in topt.state[tparam].items():
        if value is None:
            continue
        if isinstance(value, torch.Tensor):
            out[name] = value.detach().numpy().copy() if value.dim() > 0 else value.item()
        else:
            out[name] = value
    return out


def torch_step_of(st: dict[str, Any], fallback: int) -> int:
    step = st.pop("step", fallback)
    return int(step)


class Pair:
    """Our engine and torch, stepped side by side on the same problem."""

    def __init__(self, name: str, hp_given: dict[str, Any], dtype: type, seed: int) -> None:
        self.opt = optim.get(name)
        self.hp = self.opt.resolve(hp_given)
        self.problem = Quadratic(DIM, np.dtype(dtype), seed)
        self.dtype = np.dtype(dtype)
        self.params = self.problem.x0.copy()
        self.state = self.opt.init(DIM, self.dtype, self.hp)
        self.tparam = torch.tensor(self.problem.x0.copy(), requires_grad=True)
        self.topt = TORCH_CASES[name].torch_cls([self.tparam], **self.hp)
        self.sign = -1.0 if self.hp.get("maximize") else 1.0  # maximize -f: same minimum

    def grad(self, x: np.ndarray) -> np.ndarray:
        return (self.sign * self.problem.grad(x)).astype(self.dtype)

    def step_both(self) -> float:
        optim.apply(self.opt, self.hp, self.params, self.grad(self.params), self.state)
        self.tparam.grad = torch.from_numpy(self.grad(self.tparam.detach().numpy()))
        self.topt.step()
        return rel_err(self.params, self.tparam.detach().numpy())

    def compare_state(self, tol: float) -> None:
        theirs = torch_state_json(self.topt, self.tparam)
        assert torch_step_of(theirs, self.state.step) == self.state.step
        ours = state_codec.to_json(self.state)
        for name in theirs:
            assert name in ours, f"torch has state {name!r}, we do not"
        for name, value in ours.items():
            assert name in theirs, f"we have state {name!r}, torch does not"
            if isinstance(value, np.ndarray):
                assert rel_err(value, np.asarray(theirs[name])) <= tol, name
            else:
                assert abs(value - theirs[name]) <= tol * max(abs(theirs[name]), 1e-30), name


CASES = [(name, dtype, draw) for name in TORCH_CASES for dtype in (np.float64, np.float32) for draw in range(DRAWS)]


@pytest.mark.parametrize(("name", "dtype", "draw"), CASES, ids=[f"{n}-{d.__name__}-{k}" for n, d, k in CASES])
def test_trajectory_matches_torch(name: str, dtype: type, draw: int) -> None:
    rng = np.random.default_rng([draw, list(TORCH_CASES).index(name)])
    hp = TORCH_CASES[name].draw(rng)
    pair = Pair(name, hp, dtype, seed=draw)
    worst = 0.0
    for k in range(STEPS):
        worst = max(worst, pair.step_both())
        assert worst < TOL[dtype], f"step {k + 1}: relative error {worst:.3g} with {pair.hp}"
    pair.compare_state(TOL[dtype])


@pytest.mark.parametrize("name", list(TORCH_CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_torch_state_imported_mid_run_continues(name: str, dtype: type) -> None:
    rng = np.random.default_rng(1000 + list(TORCH_CASES).index(name))
    pair = Pair(name, TORCH_CASES[name].draw(rng), dtype, seed=7)
    for _ in range(STEPS // 2):
        pair.step_both()
    # Replace our state and parameters with torch's own, through the JSON codec.
    theirs = torch_state_json(pair.topt, pair.tparam)
    step = torch_step_of(theirs, pair.state.step)
    pair.state = state_codec.from_json(theirs, step, pair.dtype, DIM, pair.opt.vectors, pair.opt.scalars)
    pair.params = pair.tparam.detach().numpy().copy()
    for _ in range(STEPS // 2):
        assert pair.step_both() < TOL[dtype]
    pair.compare_state(TOL[dtype])


def _correctly_rounded_sqrt(self: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.sqrt(self.detach().numpy()))


def _correctly_rounded_sqrt_(self: torch.Tensor) -> torch.Tensor:
    return self.copy_(_correctly_rounded_sqrt(self))


@pytest.mark.parametrize(("name", "dtype", "draw"), CASES, ids=[f"{n}-{d.__name__}-{k}" for n, d, k in CASES])
def test_bit_identical_to_torch_with_a_correctly_rounded_sqrt(
    monkeypatch: pytest.MonkeyPatch, name: str, dtype: type, draw: int
) -> None:
    """Our one known difference from torch is its sqrt (MKL's, within 1 ulp, not correctly
    rounded). With that one operation replaced in torch, every step must agree to the bit:
    this pins down the arithmetic exactly, however chaotic the trajectory."""
    monkeypatch.setattr(torch.Tensor, "sqrt", _correctly_rounded_sqrt)
    monkeypatch.setattr(torch.Tensor, "sqrt_", _correctly_rounded_sqrt_)
    rng = np.random.default_rng([draw, list(TORCH_CASES).index(name)])
    pair = Pair(name, TORCH_CASES[name].draw(rng), dtype, seed=draw)
    for k in range(STEPS):
        pair.step_both()
        assert np.array_equal(pair.params, pair.tparam.detach().numpy()), f"step {k + 1} with {pair.hp}"
    pair.compare_state(0.0)
