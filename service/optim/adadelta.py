"""Adadelta, as torch.optim.Adadelta (single-tensor path).

    g  = -grad if maximize else grad
    g  = g + wd * p                           if wd != 0
    v  = rho * v + (1 - rho) * g * g          (square_avg)
    d  = sqrt(u + eps) / sqrt(v + eps) * g
    u  = rho * u + (1 - rho) * d * d          (acc_delta)
    p  = p - lr * d

Zeiler 2012, with torch's extra learning rate `lr` (default 1, the paper's algorithm).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .adam import EPS, LR, MAXIMIZE, weight_decay
from .kernel import fma, fused, run, scalars
from .spec import Bound, Hyper, Hyperparameters, Optimizer, zeros_init
from .state import State

RHO = Hyper("rho", "float", 0.9, "coefficient of the running averages of squared gradients and squared updates",
            (Bound(">=", 0.0), Bound("<=", 1.0)))


@fused
def _adadelta(p, g_in, v, u, maximize, decay, wd, rho, one_m_rho, eps, neg_lr):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        if decay:
            g = fma(p[i], wd, g)
        v[i] = vi = fma(one_m_rho * g, g, v[i] * rho)
        d = np.sqrt(u[i] + eps) / np.sqrt(vi + eps) * g
        u[i] = fma(one_m_rho * d, d, u[i] * rho)
        p[i] = fma(d, neg_lr, p[i])


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    wd, rho, s = hp["weight_decay"], hp["rho"], state.vectors
    run(_adadelta, p, g, s["square_avg"], s["acc_delta"], hp["maximize"], wd != 0,
        *scalars(p.dtype, wd, rho, 1 - rho, hp["eps"], -hp["lr"]))


ADADELTA = Optimizer(
    name="adadelta", summary="Adadelta: steps scaled by the ratio of running RMS of updates and of gradients",
    reference="torch.optim.Adadelta",
    hypers=(replace(LR, default=1.0), RHO, replace(EPS, default=1e-6), weight_decay(0.0), MAXIMIZE),
    vectors=("square_avg", "acc_delta"), init=zeros_init("square_avg", "acc_delta"), step=step,
)
