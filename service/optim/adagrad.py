"""Adagrad, as torch.optim.Adagrad (single-tensor path, dense gradients).

    g   = -grad if maximize else grad
    g   = g + wd * p                          if wd != 0
    s   = s + g * g                           (state `sum`, starts at initial_accumulator_value)
    p   = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

Duchi et al. 2011. optax's `adagrad` puts eps inside the square root; torch (and we) add
it outside.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .adam import EPS, LR, MAXIMIZE, weight_decay
from .kernel import fma, fused, run, scalars
from .spec import Bound, Hyper, Hyperparameters, Optimizer
from .state import State

LR_DECAY = Hyper("lr_decay", "float", 0.0, "learning rate decay: step t uses lr / (1 + (t - 1) * lr_decay)",
                 (Bound(">=", 0.0),))
INITIAL_ACCUMULATOR = Hyper("initial_accumulator_value", "float", 0.0, "starting value of the sum of squared gradients",
                            (Bound(">=", 0.0),))


@fused
def _adagrad(p, g_in, s, maximize, decay, wd, neg_clr, eps):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        if decay:
            g = fma(p[i], wd, g)
        s[i] = si = fma(g, g, s[i])
        p[i] = p[i] + (neg_clr * g) / (np.sqrt(si) + eps)


def init(dim: int, dtype: np.dtype, hp: Hyperparameters) -> State:
    return State(0, {"sum": np.full(dim, hp["initial_accumulator_value"], dtype)})


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    wd = hp["weight_decay"]
    clr = hp["lr"] / (1 + (state.step - 1) * hp["lr_decay"])
    run(_adagrad, p, g, state.vectors["sum"], hp["maximize"], wd != 0, *scalars(p.dtype, wd, -clr, hp["eps"]))


ADAGRAD = Optimizer(
    name="adagrad", summary="Adagrad: per-coordinate steps scaled by the root of the summed squared gradients",
    reference="torch.optim.Adagrad",
    hypers=(replace(LR, default=1e-2), LR_DECAY, weight_decay(0.0), INITIAL_ACCUMULATOR,
            replace(EPS, default=1e-10), MAXIMIZE),
    vectors=("sum",), init=init, step=step,
)
