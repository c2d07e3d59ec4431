"""Lion, as optax 0.2.8 defines it: chain(scale_by_lion, add_decayed_weights, scale_by_learning_rate).

    g = -grad if maximize else grad
    c = (1 - beta1) * g + beta1 * m
    u = sign(c) + wd * p                      (the wd term only if wd != 0)
    m = (1 - beta2) * g + beta2 * m           (exp_avg; optax's `mu`)
    p = p + (-lr) * u

Weight decay is decoupled and scaled by the learning rate (p -= lr * wd * p), as optax
does; lion-pytorch decays with p *= 1 - lr*wd first, which is the same up to rounding.
Rounding follows optax run op by op on CPU: every product and sum rounded separately
(no fma), scalars are Python floats rounded to the session dtype. Under `jax.jit`, XLA
contracts some of them into fmas, which moves results by about one ulp.

optax's sign variants (`mode="smooth"`, `"refined"`) are not exposed by `optax.lion`
and are not offered here. `maximize` is ours (torch's convention), not optax's.

Chen et al. 2023, Symbolic Discovery of Optimization Algorithms (arXiv:2302.06675).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .adam import BETAS, LR, MAXIMIZE, weight_decay
from .kernel import fused, run, scalars
from .spec import Hyperparameters, Optimizer, zeros_init
from .state import State

# optax.lion has no default learning rate. 1e-4 is lion-pytorch's default and follows
# the paper's advice of a learning rate 3-10x smaller than AdamW's (torch: 1e-3).
LION_LR = replace(LR, default=1e-4, doc="learning rate (optax has no default; 1e-4 as lion-pytorch)")
LION_BETAS = replace(BETAS, default=(0.9, 0.99),
                     doc="beta1 mixes gradient and momentum for the update's sign; beta2 decays the momentum")
LION_WD = replace(weight_decay(1e-3), doc="decoupled weight decay, multiplied by lr (optax's add_decayed_weights)")


@fused
def _lion(p, g_in, m, maximize, w1, beta1, w2, beta2, decay, wd, neg_lr):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        x = p[i]
        u = np.sign(w1 * g + beta1 * m[i])
        if decay:
            u = u + wd * x
        m[i] = w2 * g + beta2 * m[i]
        p[i] = x + neg_lr * u


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    (beta1, beta2), wd = hp["betas"], hp["weight_decay"]
    run(_lion, p, g, state.vectors["exp_avg"], hp["maximize"],
        *scalars(p.dtype, 1 - beta1, beta1, 1 - beta2, beta2), wd != 0,
        *scalars(p.dtype, wd, -hp["lr"]))


LION = Optimizer(
    name="lion", summary="Lion: sign of an interpolated momentum, decoupled weight decay",
    reference="optax.lion (0.2.8)",
    hypers=(LION_LR, LION_BETAS, LION_WD, MAXIMIZE),
    vectors=("exp_avg",), init=zeros_init("exp_avg"), step=step,
)
