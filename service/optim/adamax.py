"""Adamax, as torch.optim.Adamax (single-tensor path).

    g  = -grad if maximize else grad
    g  = g + wd * p                           if wd != 0
    m  = lerp(m, g, 1 - beta1)                (exp_avg)
    u  = max(beta2 * u, |g| + eps)            (exp_inf)
    p  = p - lr / (1 - beta1^t) * m / u

Kingma & Ba 2015, section 7.1. torch adds eps inside the max; optax's `adamax` adds it
to the denominator after the max.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .adam import BETAS, EPS, LR, MAXIMIZE, weight_decay
from .kernel import fma, fused, lerp, run, scalars
from .spec import Hyperparameters, Optimizer, zeros_init
from .state import State


@fused
def _adamax(p, g_in, m, u, maximize, decay, wd, w1, beta2, eps, neg_clr, one):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        if decay:
            g = fma(p[i], wd, g)
        m[i] = mi = lerp(m[i], g, w1, one)
        u[i] = ui = max(u[i] * beta2, abs(g) + eps)
        p[i] = p[i] + (neg_clr * mi) / ui


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    wd, (beta1, beta2), s = hp["weight_decay"], hp["betas"], state.vectors
    clr = hp["lr"] / (1 - beta1 ** float(state.step))
    run(_adamax, p, g, s["exp_avg"], s["exp_inf"], hp["maximize"], wd != 0,
        *scalars(p.dtype, wd, 1 - beta1, beta2, hp["eps"], -clr, 1.0))


ADAMAX = Optimizer(
    name="adamax", summary="Adamax: Adam with the infinity norm in place of the second moment",
    reference="torch.optim.Adamax",
    hypers=(replace(LR, default=2e-3), BETAS, EPS, weight_decay(0.0), MAXIMIZE),
    vectors=("exp_avg", "exp_inf"), init=zeros_init("exp_avg", "exp_inf"), step=step,
)
