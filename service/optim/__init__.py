"""The optimizer engine: pure numpy/numba, no HTTP, no storage.

    opt = registry.get("adam")
    hp = opt.resolve({"lr": 0.01})           # torch defaults + validation
    state = opt.init(dim, dtype, hp)
    apply(opt, hp, params, grads, state)     # params and state updated in place
"""

from __future__ import annotations

import numpy as np

from .errors import HyperparameterError, StateError
from .registry import OPTIMIZERS, get
from .spec import Hyperparameters, Optimizer
from .state import State


def apply(opt: Optimizer, hp: Hyperparameters, params: np.ndarray, grads: np.ndarray, state: State) -> None:
    """One optimizer step, in place on `params` and `state`; `grads` is only read."""
    state.step += 1
    opt.step(params, grads, state, hp)


__all__ = ["OPTIMIZERS", "HyperparameterError", "Optimizer", "State", "StateError", "apply", "get"]
