"""Adam and AdamW, as torch.optim.Adam / AdamW (single-tensor path, the CPU default).

    g  = -grad if maximize else grad
    p  = p * (1 - lr*wd)                      if decoupled_weight_decay (AdamW)
    g  = g + wd * p                           otherwise, if wd != 0
    m  = lerp(m, g, 1 - beta1)
    v  = v * beta2 + (1 - beta2) * g * g
    vm = max(vm, v) if amsgrad else v         (max_exp_avg_sq)
    p  = p - lr/(1 - beta1^t) * m / (sqrt(vm) / sqrt(1 - beta2^t) + eps)

Kingma & Ba 2015; Loshchilov & Hutter 2019 (AdamW); Reddi et al. 2018 (AMSGrad).
"""

from __future__ import annotations


import numpy as np

from .kernel import adam_moments, adam_prologue, fused, run, scalars
from .spec import Bound, Hyper, Hyperparameters, Optimizer
from .state import State

LR = Hyper("lr", "float", 1e-3, "learning rate", (Bound(">=", 0.0),), "Invalid learning rate: {value}")
BETAS = Hyper(
    "betas", "pair", (0.9, 0.999), "coefficients of the running averages of the gradient and its square",
    (Bound(">=", 0.0), Bound("<", 1.0)), "Invalid beta parameter at index {index}: {value}",
)
EPS = Hyper("eps", "float", 1e-8, "term added to the denominator for numerical stability",
            (Bound(">=", 0.0),), "Invalid epsilon value: {value}")
AMSGRAD = Hyper("amsgrad", "bool", False, "use the AMSGrad variant (max of past squared averages)")
MAXIMIZE = Hyper("maximize", "bool", False, "maximize the objective instead of minimizing")


def weight_decay(default: float) -> Hyper:
    return Hyper("weight_decay", "float", default, "weight decay (L2 penalty, or decoupled)",
                 (Bound(">=", 0.0),), "Invalid weight_decay value: {value}")


def decoupled(default: bool) -> Hyper:
    return Hyper("decoupled_weight_decay", "bool", default,
                 "decay the weights directly (AdamW) instead of adding an L2 term to the gradient")


@fused
def _adam(p, g_in, m, v, vmax, maximize, wd, decay, decoupled, w1, beta2, one_m_beta2,
          amsgrad, bc2_sqrt, eps, neg_step, one):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g, x = adam_prologue(g_in[i], p[i], maximize, wd, decay, decoupled)
        m[i], v[i] = mi, vi = adam_moments(m[i], v[i], g, w1, beta2, one_m_beta2, one)
        if amsgrad:
            vi = max(vmax[i], vi)
            vmax[i] = vi
        p[i] = x + (neg_step * mi) / (np.sqrt(vi) / bc2_sqrt + eps)


def init(dim: int, dtype: np.dtype, hp: Hyperparameters) -> State:
    vectors = {"exp_avg": np.zeros(dim, dtype), "exp_avg_sq": np.zeros(dim, dtype)}
    if hp["amsgrad"]:
        vectors["max_exp_avg_sq"] = np.zeros(dim, dtype)
    return State(0, vectors)


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    lr, wd, (beta1, beta2), t = hp["lr"], hp["weight_decay"], hp["betas"], state.step
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    s = state.vectors
    vmax = s["max_exp_avg_sq"] if hp["amsgrad"] else s["exp_avg_sq"]
    run(_adam, p, g, s["exp_avg"], s["exp_avg_sq"], vmax, hp["maximize"],
        *scalars(p.dtype, wd, 1 - lr * wd), hp["decoupled_weight_decay"] and wd != 0,
        *scalars(p.dtype, 1 - beta1, beta2, 1 - beta2), hp["amsgrad"],
        *scalars(p.dtype, bc2**0.5, hp["eps"], -(lr / bc1), 1.0))


_COMMON = (LR, BETAS, EPS)
ADAM = Optimizer(
    name="adam", summary="Adam; AdamW with decoupled_weight_decay", reference="torch.optim.Adam",
    hypers=(*_COMMON, weight_decay(0.0), AMSGRAD, MAXIMIZE, decoupled(False)),
    vectors=("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), init=init, step=step,
)
ADAMW = Optimizer(
    name="adamw", summary="Adam with decoupled weight decay", reference="torch.optim.AdamW",
    hypers=(*_COMMON, weight_decay(1e-2), AMSGRAD, MAXIMIZE),
    vectors=ADAM.vectors, init=init, step=lambda p, g, s, hp: step(p, g, s, {**hp, "decoupled_weight_decay": True}),
)
