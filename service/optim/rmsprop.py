"""RMSprop, as torch.optim.RMSprop (single-tensor path).

    g  = -grad if maximize else grad
    g  = g + wd * p                           if wd != 0
    v  = alpha * v + (1 - alpha) * g * g      (square_avg)
    m  = lerp(m, g, 1 - alpha)                if centered (grad_avg)
    d  = sqrt(v - m * m) + eps  if centered else  sqrt(v) + eps
    b  = momentum * b + g / d;  p = p - lr * b     if momentum > 0 (momentum_buffer)
    p  = p - lr * g / d                            otherwise

Hinton's lecture 6e; centered variant from Graves 2013. As in torch, eps is added
outside the square root (optax's `rmsprop` adds it inside).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .adam import EPS, LR, MAXIMIZE, weight_decay
from .kernel import fma, fused, lerp, run, scalars
from .sgd import MOMENTUM
from .spec import Bound, Hyper, Hyperparameters, Optimizer
from .state import State

ALPHA = Hyper("alpha", "float", 0.99, "smoothing constant of the running average of squared gradients",
              (Bound(">=", 0.0),))
CENTERED = Hyper("centered", "bool", False, "normalise by the estimated variance of the gradient instead of its second moment")


@fused
def _rmsprop(p, g_in, v, m, b, maximize, decay, wd, alpha, one_m_alpha, centered, use_momentum,
             momentum, eps, neg_lr, one):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        if decay:
            g = fma(p[i], wd, g)
        v[i] = vi = fma(one_m_alpha * g, g, v[i] * alpha)
        if centered:
            m[i] = mi = lerp(m[i], g, one_m_alpha, one)
            d = np.sqrt(fma(-mi, mi, vi)) + eps
        else:
            d = np.sqrt(vi) + eps
        if use_momentum:
            b[i] = bi = b[i] * momentum + g / d
            p[i] = fma(bi, neg_lr, p[i])
        else:
            p[i] = p[i] + (neg_lr * g) / d


def _needs(hp: Hyperparameters) -> tuple[str, ...]:
    return ("square_avg",) + ("momentum_buffer",) * (hp["momentum"] > 0) + ("grad_avg",) * hp["centered"]


def init(dim: int, dtype: np.dtype, hp: Hyperparameters) -> State:
    return State(0, {name: np.zeros(dim, dtype) for name in _needs(hp)})


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    s = state.vectors
    # momentum or centered switched on mid-run (PATCH): start that vector as torch would.
    for name in _needs(hp):
        if name not in s:
            s[name] = np.zeros_like(p)
    unused = np.empty(0, p.dtype)
    alpha, wd, momentum = hp["alpha"], hp["weight_decay"], hp["momentum"]
    run(_rmsprop, p, g, s["square_avg"], s.get("grad_avg", unused), s.get("momentum_buffer", unused),
        hp["maximize"], wd != 0, *scalars(p.dtype, wd, alpha, 1 - alpha), hp["centered"], momentum > 0,
        *scalars(p.dtype, momentum, hp["eps"], -hp["lr"], 1.0))


RMSPROP = Optimizer(
    name="rmsprop", summary="RMSprop: steps scaled by a running root mean square of the gradient",
    reference="torch.optim.RMSprop",
    hypers=(replace(LR, default=1e-2), ALPHA, EPS, weight_decay(0.0), MOMENTUM, CENTERED, MAXIMIZE),
    vectors=("square_avg", "momentum_buffer", "grad_avg"), init=init, step=step,
)
