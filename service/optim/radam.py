"""RAdam, as torch.optim.RAdam (single-tensor path, the CPU default).

    g     = -grad if maximize else grad
    p     = p * (1 - lr*wd)                   if decoupled_weight_decay
    g     = g + wd * p                        otherwise, if wd != 0
    m     = lerp(m, g, 1 - beta1)
    v     = v * beta2 + (1 - beta2) * g * g
    rho_inf = 2/(1 - beta2) - 1
    rho_t   = rho_inf - 2 t beta2^t / (1 - beta2^t)
    p     = p - m/(1 - beta1^t) * lr * sqrt(1 - beta2^t)/(sqrt(v) + eps) * r_t   if rho_t > 5
    p     = p - m/(1 - beta1^t) * lr                                            otherwise
    r_t   = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))

Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond".
"""

from __future__ import annotations

import numpy as np

from .adam import BETAS, EPS, LR, MAXIMIZE, decoupled, weight_decay
from .kernel import adam_moments, adam_prologue, fused, run, scalars
from .spec import Hyperparameters, Optimizer, zeros_init
from .state import State


@fused
def _radam(p, g_in, m, v, maximize, wd, decay, decoupled, w1, beta2, one_m_beta2,
           bc1, lr, rectified, bc2_sqrt, eps, rect, one):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g, x = adam_prologue(g_in[i], p[i], maximize, wd, decay, decoupled)
        m[i], v[i] = mi, vi = adam_moments(m[i], v[i], g, w1, beta2, one_m_beta2, one)
        u = (mi / bc1) * lr
        if rectified:
            # torch evaluates bc2_sqrt / t as t.reciprocal() * bc2_sqrt
            u = (u * ((one / (np.sqrt(vi) + eps)) * bc2_sqrt)) * rect
        p[i] = x - u


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    lr, wd, (beta1, beta2), t = hp["lr"], hp["weight_decay"], hp["betas"], state.step
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * (beta2**t) / bc2
    rectified = rho_t > 5.0
    rect = 1.0
    if rectified:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
    s = state.vectors
    run(_radam, p, g, s["exp_avg"], s["exp_avg_sq"], hp["maximize"],
        *scalars(p.dtype, wd, 1 - lr * wd), hp["decoupled_weight_decay"] and wd != 0,
        *scalars(p.dtype, 1 - beta1, beta2, 1 - beta2, bc1, lr), rectified,
        *scalars(p.dtype, bc2**0.5, hp["eps"], rect, 1.0))


RADAM = Optimizer(
    name="radam", summary="Adam with a rectified adaptive learning rate", reference="torch.optim.RAdam",
    hypers=(LR, BETAS, EPS, weight_decay(0.0), decoupled(False), MAXIMIZE),
    vectors=("exp_avg", "exp_avg_sq"), init=zeros_init("exp_avg", "exp_avg_sq"), step=step,
)
