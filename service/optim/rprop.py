"""Rprop, as torch.optim.Rprop (single-tensor path, the CPU default).

    g   = -grad if maximize else grad
    f   = etaplus if g * prev > 0, etaminus if g * prev < 0, else 1
    s   = clamp(s * f, step_size_min, step_size_max)      (step_size, starts at lr)
    g   = 0                                               where f == etaminus
    p   = p - sign(g) * s
    prev = g

Riedmiller & Braun 1993, "A Direct Adaptive Method for Faster Backpropagation Learning".
"""

from __future__ import annotations

import numpy as np

from .errors import HyperparameterError
from .kernel import fma, fused, inline, run, scalars
from .spec import Bound, Hyper, Hyperparameters, Optimizer
from .state import State

LR = Hyper("lr", "float", 1e-2, "learning rate (the initial step size)", (Bound(">=", 0.0),),
           "Invalid learning rate: {value}")
ETAS = Hyper("etas", "pair", (0.5, 1.2),
             "(etaminus, etaplus): step size factors on a sign change / no change; 0 < etaminus < 1 < etaplus")
STEP_SIZES = Hyper("step_sizes", "pair", (1e-6, 50.0), "(min, max) allowed step size")
MAXIMIZE = Hyper("maximize", "bool", False, "maximize the objective instead of minimizing")


def check(hp: Hyperparameters) -> None:
    etaminus, etaplus = hp["etas"]
    if not 0.0 < etaminus < 1.0 < etaplus:
        raise HyperparameterError("etas", f"Invalid eta values: {etaminus}, {etaplus}")


@inline
def _sign(x, one, zero):  # type: ignore[no-untyped-def]
    """torch.sign on CPU: (0 < x) - (x < 0), so sign(-0) = sign(nan) = 0."""
    return (one if x > zero else zero) - (one if x < zero else zero)


@fused
def _rprop(p, g_in, prev, size, maximize, etaminus, etaplus, lo, hi, one, zero):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        # torch overwrites the sign tensor mask by mask, in this order.
        f = _sign(g * prev[i], one, zero)
        if f > zero:
            f = etaplus
        if f < zero:
            f = etaminus
        if f == zero:
            f = one
        s = size[i] * f
        if s == s:  # clamp as torch does: NaN passes through, max wins over min
            s = lo if s < lo else s
            s = hi if hi < s else s
        size[i] = s
        if f == etaminus:
            g = zero
        p[i] = fma(-_sign(g, one, zero), s, p[i])
        prev[i] = g


def init(dim: int, dtype: np.dtype, hp: Hyperparameters) -> State:
    return State(0, {"prev": np.zeros(dim, dtype), "step_size": np.full(dim, hp["lr"], dtype)})


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    s = state.vectors
    run(_rprop, p, g, s["prev"], s["step_size"], hp["maximize"],
        *scalars(p.dtype, *hp["etas"], *hp["step_sizes"], 1.0, 0.0))


RPROP = Optimizer(
    name="rprop", summary="resilient backpropagation: per-coordinate step sizes adapted by gradient sign",
    reference="torch.optim.Rprop", hypers=(LR, ETAS, STEP_SIZES, MAXIMIZE),
    vectors=("prev", "step_size"), init=init, step=step, check=check,
)
