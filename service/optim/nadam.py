"""NAdam, as torch.optim.NAdam (single-tensor path, the CPU default).

    g   = -grad if maximize else grad
    p   = p * (1 - lr*wd)                     if decoupled_weight_decay
    g   = g + wd * p                          otherwise, if wd != 0
    mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))      (also mu_{t+1})
    M_t  = M_{t-1} * mu_t                     (mu_product, float32 as in torch)
    m   = lerp(m, g, 1 - beta1)
    v   = v * beta2 + (1 - beta2) * g * g
    d   = sqrt(v / (1 - beta2^t)) + eps
    p   = p - lr*(1 - mu_t)/(1 - M_t) * g / d - lr*mu_{t+1}/(1 - M_t*mu_{t+1}) * m / d

Dozat 2016, "Incorporating Nesterov Momentum into Adam".
"""

from __future__ import annotations

import numpy as np

from .adam import BETAS, EPS, MAXIMIZE, decoupled, weight_decay
from .kernel import adam_moments, adam_prologue, fused, run, scalars
from .spec import Bound, Hyper, Hyperparameters, Optimizer
from .state import State

LR = Hyper("lr", "float", 2e-3, "learning rate", (Bound(">=", 0.0),), "Invalid learning rate: {value}")
MOMENTUM_DECAY = Hyper("momentum_decay", "float", 4e-3, "decay of the momentum schedule mu_t",
                       (Bound(">=", 0.0),), "Invalid momentum_decay value: {value}")


@fused
def _nadam(p, g_in, m, v, maximize, wd, decay, decoupled, w1, beta2, one_m_beta2,
           bc2, eps, grad_step, avg_step, one):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g, x = adam_prologue(g_in[i], p[i], maximize, wd, decay, decoupled)
        m[i], v[i] = mi, vi = adam_moments(m[i], v[i], g, w1, beta2, one_m_beta2, one)
        denom = np.sqrt(vi / bc2) + eps
        x = x + (grad_step * g) / denom
        p[i] = x + (avg_step * mi) / denom


def init(dim: int, dtype: np.dtype, hp: Hyperparameters) -> State:
    return State(0, {"exp_avg": np.zeros(dim, dtype), "exp_avg_sq": np.zeros(dim, dtype)}, {"mu_product": 1.0})


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    lr, wd, (beta1, beta2), t = hp["lr"], hp["weight_decay"], hp["betas"], state.step
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * hp["momentum_decay"])))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * hp["momentum_decay"])))
    # torch keeps mu_product in a float32 tensor and multiplies in float32.
    mu_product = float(np.float32(state.scalars["mu_product"]) * np.float32(mu))
    state.scalars["mu_product"] = mu_product
    grad_step = -lr * (1.0 - mu) / (1.0 - mu_product)
    avg_step = (-lr * mu_next) / (1.0 - mu_product * mu_next)
    s = state.vectors
    run(_nadam, p, g, s["exp_avg"], s["exp_avg_sq"], hp["maximize"],
        *scalars(p.dtype, wd, 1 - lr * wd), hp["decoupled_weight_decay"] and wd != 0,
        *scalars(p.dtype, 1 - beta1, beta2, 1 - beta2, 1 - beta2**t, hp["eps"], grad_step, avg_step, 1.0))


NADAM = Optimizer(
    name="nadam", summary="Adam with Nesterov momentum", reference="torch.optim.NAdam",
    hypers=(LR, BETAS, EPS, weight_decay(0.0), MOMENTUM_DECAY, decoupled(False), MAXIMIZE),
    vectors=("exp_avg", "exp_avg_sq"), scalars=("mu_product",), init=init, step=step,
)
