"""The one table of configurations per optimizer, for the generic engine tests.

Most configurations are derived from the registry's `Hyper` descriptions, so a new
optimizer is covered without new test code: torch's defaults, each boolean flag flipped
alone, every flag flipped together, and a non-zero weight decay. `EXTRA` adds what
cannot be derived (a companion value a flag needs, a non-default mode). Derived
combinations that the optimizer's own cross-field `check` rejects (e.g. SGD's nesterov
without momentum) are left out; hand-written ones must all be valid.

`CONVERGE` holds the hyperparameters that make each optimizer converge on
`Bowl` in `STEPS` steps (chosen with torch.optim on the same problem).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.optim import HyperparameterError, Optimizer

Given = dict[str, Any]

EXTRA: dict[str, list[Given]] = {
    "sgd": [
        {"momentum": 0.9},
        {"momentum": 0.9, "dampening": 0.5, "weight_decay": 0.01},
        {"momentum": 0.9, "nesterov": True, "maximize": True},
    ],
    "adagrad": [{"lr_decay": 0.01, "initial_accumulator_value": 0.1}],
    "rmsprop": [{"momentum": 0.9}, {"momentum": 0.5, "centered": True, "weight_decay": 0.01}],
    "adadelta": [{"rho": 0.5, "eps": 1e-3}],
    "nadam": [{"momentum_decay": 0.01}],
    "asgd": [{"t0": 5.0, "lambd": 0.01}],
    "rprop": [{"etas": [0.3, 1.5], "step_sizes": [1e-4, 0.1]}],
    "adafactor": [{"beta2_decay": -0.5, "eps": [1e-30, 1e-3], "d": 2.0}],
    "lion": [{"betas": [0.95, 0.98]}],
    "adam": [{"betas": [0.0, 0.99], "amsgrad": True, "weight_decay": 0.01}],
}

# Per-optimizer settings for the convergence test; anything absent keeps its default.
CONVERGE: dict[str, Given] = {
    "sgd": {"lr": 0.1},
    "asgd": {"lr": 0.1},
    "adagrad": {"lr": 0.5},
    "rmsprop": {"lr": 0.02},
    "adadelta": {"eps": 1e-3},
    "adamax": {"lr": 0.05},
    "adam": {"lr": 0.05},
    "adamw": {"lr": 0.05},
    "nadam": {"lr": 0.05},
    "radam": {"lr": 0.1},
    "adafactor": {"lr": 0.05},
    "yogi": {"lr": 0.05},
    "rprop": {"lr": 0.01},
    "lion": {"lr": 0.05},
}
STEPS = 200
FACTOR = 100.0  # the loss must fall at least this much


def derived(opt: Optimizer) -> list[Given]:
    flags = [h.name for h in opt.hypers if h.kind == "bool"]
    out: list[Given] = [{}]
    out += [{f: not opt.hyper_by_name[f].default} for f in flags]
    if len(flags) > 1:
        out.append({f: not opt.hyper_by_name[f].default for f in flags})
    if "weight_decay" in opt.hyper_by_name:
        out.append({"weight_decay": 0.01})
    return out


def _valid(opt: Optimizer, given: Given) -> bool:
    try:
        opt.resolve(given)
    except HyperparameterError:
        return False
    return True


def configs(opt: Optimizer) -> list[Given]:
    """Every configuration of `opt` the generic tests run, each valid."""
    return [g for g in derived(opt) if _valid(opt, g)] + EXTRA.get(opt.name, [])


class Bowl:
    """f(x) = 1/2 sum d_i (x_i - c_i)^2 with curvatures d in [0.5, 2]: minimum 0 at c."""

    def __init__(self, dim: int, dtype: np.dtype, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        self.d = np.geomspace(0.5, 2.0, dim)
        self.c = rng.normal(size=dim)
        self.x0 = (self.c + rng.normal(size=dim)).astype(dtype)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return (self.d * (x - self.c)).astype(self.dtype)

    def loss(self, x: np.ndarray) -> float:
        return float(0.5 * np.sum(self.d * (x.astype(np.float64) - self.c) ** 2))
