"""SGD with momentum and Nesterov momentum, as torch.optim.SGD (single-tensor path).

    g = -grad if maximize else grad
    g = g + wd * p                            if wd != 0
    b = g  (first step)  else  b * momentum + (1 - dampening) * g    if momentum != 0
    g = g + momentum * b if nesterov else b   if momentum != 0
    p = p - lr * g

Sutskever et al. 2013. As in torch (and unlike the paper and optax's `trace`), the
buffer starts as a copy of the first gradient, not as zeros, so `momentum_buffer` is
absent until the first step; a session whose state lacks it starts it the same way.
torch keeps no `step` entry for SGD.
"""

from __future__ import annotations

import numpy as np

from .adam import LR, MAXIMIZE, weight_decay
from .errors import HyperparameterError
from .kernel import fma, fused, run, scalars
from .spec import Bound, Hyper, Hyperparameters, Optimizer
from .state import State

MOMENTUM = Hyper("momentum", "float", 0.0, "momentum factor", (Bound(">=", 0.0),))
DAMPENING = Hyper("dampening", "float", 0.0, "dampening for momentum: the gradient enters the buffer times (1 - dampening)")
NESTEROV = Hyper("nesterov", "bool", False, "use Nesterov momentum")


@fused
def _sgd(p, g_in, buf, maximize, decay, wd, use_momentum, first, momentum, one_m_dampening,
         nesterov, neg_lr):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        if decay:
            g = fma(p[i], wd, g)
        if use_momentum:
            b = g if first else fma(g, one_m_dampening, buf[i] * momentum)
            buf[i] = b
            g = fma(b, momentum, g) if nesterov else b
        p[i] = fma(g, neg_lr, p[i])


def init(dim: int, dtype: np.dtype, hp: Hyperparameters) -> State:
    return State(0)  # momentum_buffer is created by the first step


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    momentum, wd = hp["momentum"], hp["weight_decay"]
    use_momentum = momentum != 0
    first = use_momentum and "momentum_buffer" not in state.vectors
    if first:
        state.vectors["momentum_buffer"] = np.empty_like(p)
    buf = state.vectors["momentum_buffer"] if use_momentum else np.empty(0, p.dtype)
    run(_sgd, p, g, buf, hp["maximize"], wd != 0, *scalars(p.dtype, wd), use_momentum, first,
        *scalars(p.dtype, momentum, 1 - hp["dampening"]), hp["nesterov"], *scalars(p.dtype, -hp["lr"]))


def check(hp: Hyperparameters) -> None:
    if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
        raise HyperparameterError("nesterov", "Nesterov momentum requires a momentum and zero dampening")


SGD = Optimizer(
    name="sgd", summary="stochastic gradient descent, with optional (Nesterov) momentum",
    reference="torch.optim.SGD",
    hypers=(LR, MOMENTUM, DAMPENING, weight_decay(0.0), NESTEROV, MAXIMIZE),
    vectors=("momentum_buffer",), init=init, step=step, check=check,
)
