"""ASGD (averaged SGD), as torch.optim.ASGD (single-tensor path, the CPU default).

    g   = -grad if maximize else grad
    g   = g + wd * p                                  if wd != 0
    p   = p * (1 - lambd * eta) - eta * g
    ax  = ax + (p - ax) * mu       if mu != 1, else ax = p
    eta = lr / (1 + lambd * lr * t)^alpha             (for the next step)
    mu  = 1 / max(1, t - t0)

`eta` and `mu` are float32 scalars, as torch keeps them (0-dim float32 tensors).
Polyak & Juditsky 1992, "Acceleration of Stochastic Approximation by Averaging".
"""

from __future__ import annotations

import numpy as np

from .kernel import fma, fused, run, scalars
from .spec import Bound, Hyper, Hyperparameters, Optimizer
from .state import State

LR = Hyper("lr", "float", 1e-2, "learning rate", (Bound(">=", 0.0),), "Invalid learning rate: {value}")
LAMBD = Hyper("lambd", "float", 1e-4, "decay term of the step size eta")
ALPHA = Hyper("alpha", "float", 0.75, "power of the step size decay")
T0 = Hyper("t0", "float", 1e6, "step at which averaging starts")
WEIGHT_DECAY = Hyper("weight_decay", "float", 0.0, "weight decay (L2 penalty)",
                     (Bound(">=", 0.0),), "Invalid weight_decay value: {value}")
MAXIMIZE = Hyper("maximize", "bool", False, "maximize the objective instead of minimizing")


def _f32(x: float) -> float:
    return float(np.float32(x))


@fused
def _asgd(p, g_in, ax, maximize, wd, decay, neg_eta, average, mu):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        x = p[i]
        if wd != 0:
            g = fma(x, wd, g)
        x = fma(g, neg_eta, x * decay)
        p[i] = x
        ax[i] = ax[i] + (x - ax[i]) * mu if average else x


def init(dim: int, dtype: np.dtype, hp: Hyperparameters) -> State:
    return State(0, {"ax": np.zeros(dim, dtype)}, {"eta": _f32(hp["lr"]), "mu": 1.0})


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    lr, lambd, t = hp["lr"], hp["lambd"], state.step
    eta, mu = state.scalars["eta"], state.scalars["mu"]
    run(_asgd, p, g, state.vectors["ax"], hp["maximize"],
        *scalars(p.dtype, hp["weight_decay"], 1 - lambd * eta, -eta), mu != 1, *scalars(p.dtype, mu))
    state.scalars["eta"] = _f32(lr / ((1 + lambd * lr * t) ** hp["alpha"]))
    state.scalars["mu"] = _f32(1 / max(1, t - hp["t0"]))


ASGD = Optimizer(
    name="asgd", summary="SGD with Polyak-Ruppert averaging of the iterates", reference="torch.optim.ASGD",
    hypers=(LR, LAMBD, ALPHA, T0, WEIGHT_DECAY, MAXIMIZE),
    vectors=("ax",), scalars=("eta", "mu"), init=init, step=step,
)
