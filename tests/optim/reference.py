"""The table of torch.optim references: one row per optimizer that torch has.

`draw(rng)` returns random hyperparameters covering every flag of the optimizer; the
parity tests run each draw through our engine and through torch side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch


@dataclass(frozen=True)
class TorchCase:
    torch_cls: type[torch.optim.Optimizer]
    draw: Callable[[np.random.Generator], dict[str, Any]]


def _betas(rng: np.random.Generator) -> tuple[float, float]:
    return (float(rng.choice([0.0, 0.5, 0.9, rng.uniform(0, 0.99)])), float(rng.choice([0.9, 0.999, rng.uniform(0.5, 0.9999)])))


def _flag(rng: np.random.Generator) -> bool:
    return bool(rng.integers(2))


def _wd(rng: np.random.Generator) -> float:
    return float(rng.choice([0.0, 0.01, rng.uniform(0, 0.2)]))


def _lr(rng: np.random.Generator, low: float = 1e-4, high: float = 0.05) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_adam(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": _lr(rng), "betas": _betas(rng), "eps": float(rng.choice([1e-8, 1e-3])),
        "weight_decay": _wd(rng), "amsgrad": _flag(rng), "maximize": _flag(rng),
        "decoupled_weight_decay": _flag(rng),
    }


def draw_adamw(rng: np.random.Generator) -> dict[str, Any]:
    hp = draw_adam(rng)
    del hp["decoupled_weight_decay"]
    return hp


# Group A draws (sgd, adagrad, rmsprop, adadelta, adamax) go here.


def _momentum(rng: np.random.Generator) -> float:
    return float(rng.choice([0.0, 0.5, 0.9, rng.uniform(0, 0.99)]))


def draw_sgd(rng: np.random.Generator) -> dict[str, Any]:
    momentum = _momentum(rng)
    nesterov = momentum > 0 and _flag(rng)
    dampening = 0.0 if nesterov else float(rng.choice([0.0, 0.1, rng.uniform(0, 1)]))
    return {
        "lr": _lr(rng), "momentum": momentum, "dampening": dampening, "weight_decay": _wd(rng),
        "nesterov": nesterov, "maximize": _flag(rng),
    }


def draw_adagrad(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": _lr(rng, 1e-3, 0.5), "lr_decay": float(rng.choice([0.0, 1e-3, rng.uniform(0, 0.1)])),
        "weight_decay": _wd(rng), "initial_accumulator_value": float(rng.choice([0.0, 0.1, rng.uniform(0, 2)])),
        "eps": float(rng.choice([1e-10, 1e-3])), "maximize": _flag(rng),
    }


def draw_rmsprop(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": _lr(rng, 1e-4, 0.01), "alpha": float(rng.choice([0.9, 0.99, rng.uniform(0.5, 0.999)])),
        "eps": float(rng.choice([1e-8, 1e-3])), "weight_decay": _wd(rng), "momentum": _momentum(rng),
        "centered": _flag(rng), "maximize": _flag(rng),
    }


def draw_adadelta(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": float(rng.choice([1.0, _lr(rng, 0.1, 10.0)])), "rho": float(rng.choice([0.9, 0.99, rng.uniform(0.5, 1)])),
        "eps": float(rng.choice([1e-6, 1e-3])), "weight_decay": _wd(rng), "maximize": _flag(rng),
    }


def draw_adamax(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": _lr(rng), "betas": _betas(rng), "eps": float(rng.choice([1e-8, 1e-3])),
        "weight_decay": _wd(rng), "maximize": _flag(rng),
    }

# Group B draws (nadam, radam, asgd, rprop, adafactor) go here.

TORCH_CASES: dict[str, TorchCase] = {
    "adam": TorchCase(torch.optim.Adam, draw_adam),
    "adamw": TorchCase(torch.optim.AdamW, draw_adamw),
    # group A
    "sgd": TorchCase(torch.optim.SGD, draw_sgd),
    "adagrad": TorchCase(torch.optim.Adagrad, draw_adagrad),
    "rmsprop": TorchCase(torch.optim.RMSprop, draw_rmsprop),
    "adadelta": TorchCase(torch.optim.Adadelta, draw_adadelta),
    "adamax": TorchCase(torch.optim.Adamax, draw_adamax),
    # group B
}
