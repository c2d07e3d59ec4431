"""Yogi, as optax 0.2.8 defines it: chain(scale_by_yogi, add_decayed_weights, scale_by_learning_rate).

    g   = -grad if maximize else grad
    m   = (1 - beta1) * g + beta1 * m                       (exp_avg; optax's `mu`)
    v   = v - ((1 - beta2) * sign(v - g*g)) * (g*g)         (exp_avg_sq; optax's `nu`)
    u   = (m / bc1) / (sqrt(v / bc2 + eps_root) + eps),     bc_i = 1 - beta_i^t
    u   = u + wd * p                                        (only if wd != 0)
    p   = p + (-lr) * u

Both moments start at `initial_accumulator_value` (optax's default 1e-6), and optax
bias-corrects them anyway, as Adam would with zeros. Precision is optax's on CPU:
`bc_i` is computed in the session dtype (float32 pow and subtraction for float32
sessions, not float64 as torch would), and XLA divides an array by a scalar as a
multiplication by its reciprocal, so `m / bc1` is `m * (1 / bc1)`; no fmas (optax run
op by op; under `jax.jit` XLA contracts some products, about one ulp away).

`optax.yogi` has no weight decay; `weight_decay` (default 0, i.e. exactly optax.yogi)
adds optax's add_decayed_weights between scale_by_yogi and the learning rate, as
optax.adamw composes it with scale_by_adam: decoupled and scaled by lr. `eps_root` and
`initial_accumulator_value` are scale_by_yogi's own knobs. `maximize` is ours (torch's
convention). The learning rate has no default in optax; 1e-2 is the Yogi paper's
recommended default (and TF-Addons'), which optax's other defaults also follow.

Zaheer et al. 2018, Adaptive Methods for Nonconvex Optimization (NeurIPS).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .adam import BETAS, EPS, LR, MAXIMIZE, weight_decay
from .kernel import fused, run, scalars
from .spec import Bound, Hyper, Hyperparameters, Optimizer
from .state import State

YOGI_LR = replace(LR, default=1e-2, doc="learning rate (optax has no default; 1e-2 as the Yogi paper)")
YOGI_EPS = replace(EPS, default=1e-3, doc="term added to the denominator outside the square root")
EPS_ROOT = Hyper("eps_root", "float", 0.0, "term added to the second moment inside the square root",
                 (Bound(">=", 0.0),), "Invalid eps_root value: {value}")
INITIAL = Hyper("initial_accumulator_value", "float", 1e-6, "starting value of both moments (optax: positive)",
                (Bound(">", 0.0),))
YOGI_WD = replace(weight_decay(0.0), doc="decoupled weight decay, multiplied by lr (optax's add_decayed_weights)")


@fused
def _yogi(p, g_in, m, v, maximize, w1, beta1, w2, rbc1, rbc2, eps_root, eps,
          decay, wd, neg_lr):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        x = p[i]
        m[i] = mi = w1 * g + beta1 * m[i]
        g2 = g * g
        vi = v[i]
        v[i] = vi = vi - (w2 * np.sign(vi - g2)) * g2
        u = (mi * rbc1) / (np.sqrt(vi * rbc2 + eps_root) + eps)
        if decay:
            u = u + wd * x
        p[i] = x + neg_lr * u


def init(dim: int, dtype: np.dtype, hp: Hyperparameters) -> State:
    start = hp["initial_accumulator_value"]
    return State(0, {"exp_avg": np.full(dim, start, dtype), "exp_avg_sq": np.full(dim, start, dtype)})


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    (beta1, beta2), wd, s = hp["betas"], hp["weight_decay"], state.vectors
    # Bias corrections in the session dtype, as optax computes them (see docstring).
    one, b1, b2, t = scalars(p.dtype, 1.0, beta1, beta2, state.step)
    run(_yogi, p, g, s["exp_avg"], s["exp_avg_sq"], hp["maximize"],
        *scalars(p.dtype, 1 - beta1, beta1, 1 - beta2), one / (one - b1**t), one / (one - b2**t),
        *scalars(p.dtype, hp["eps_root"], hp["eps"]), wd != 0, *scalars(p.dtype, wd, -hp["lr"]))


YOGI = Optimizer(
    name="yogi", summary="Yogi: Adam whose second moment moves additively, by the sign of v - g^2",
    reference="optax.yogi (0.2.8)",
    hypers=(YOGI_LR, BETAS, YOGI_EPS, YOGI_WD, EPS_ROOT, INITIAL, MAXIMIZE),
    vectors=("exp_avg", "exp_avg_sq"), init=init, step=step,
)
