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


def _lr(rng: np.random.Generator, low: float = 1e-4, high: float = 0.02) -> float:
    # Adaptive methods move about lr per step: 200 steps at <= 0.02 stay far from the
    # minimum of tests/optim/problems.py, where last-bit differences would grow chaotically
    # (torch against itself with x0 moved by 1 ulp diverges there too).
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


# RMSprop and Adadelta divide by torch's sqrt, which is not correctly rounded (see
# service/optim/kernel.py), so our trajectories differ from torch's in the last bits.
# The draws stay where this quadratic does not amplify last-bit differences past the
# tolerances. Outside them torch drifts as far from its own trajectory when x0 moves
# by one ulp: RMSprop with alpha < 0.95 or large lr * momentum turns sign-like near the
# minimum; centered RMSprop divides by sqrt(v - m^2), the spread of a slowly drifting
# gradient, which float32 keeps to few digits unless alpha >= 0.99 and lr <= 1e-3;
# Adadelta with lr > 1 or rho < 0.9.


def draw_rmsprop(rng: np.random.Generator) -> dict[str, Any]:
    centered = _flag(rng)
    return {
        "lr": _lr(rng, 1e-4, 1e-3 if centered else 0.01),
        "alpha": float(rng.choice([0.99, rng.uniform(0.99, 0.995) if centered else rng.uniform(0.95, 0.999)])),
        "eps": float(rng.choice([1e-8, 1e-3])), "weight_decay": _wd(rng),
        "momentum": float(rng.choice([0.0, 0.5, rng.uniform(0, 0.9)])), "centered": centered, "maximize": _flag(rng),
    }


def draw_adadelta(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": float(rng.choice([1.0, _lr(rng, 0.1, 1.0)])), "rho": float(rng.choice([0.9, 0.99, rng.uniform(0.9, 0.99)])),
        "eps": float(rng.choice([1e-6, 1e-3])), "weight_decay": _wd(rng), "maximize": _flag(rng),
    }


def draw_adamax(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": _lr(rng), "betas": _betas(rng), "eps": float(rng.choice([1e-8, 1e-3])),
        "weight_decay": _wd(rng), "maximize": _flag(rng),
    }

# Group B draws (nadam, radam, asgd, rprop, adafactor) go here.


def draw_nadam(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": _lr(rng), "betas": _betas(rng), "eps": float(rng.choice([1e-8, 1e-3])),
        "weight_decay": _wd(rng), "momentum_decay": float(rng.choice([0.0, 4e-3, rng.uniform(0, 0.1)])),
        "decoupled_weight_decay": _flag(rng), "maximize": _flag(rng),
    }


def draw_radam(rng: np.random.Generator) -> dict[str, Any]:
    # beta2 <= 2/3 never rectifies (rho_inf <= 5); 0.999 rectifies from step 6 on.
    beta2 = float(rng.choice([0.5, 0.9, 0.999, rng.uniform(0.5, 0.9999)]))
    return {
        "lr": _lr(rng), "betas": (_betas(rng)[0], beta2), "eps": float(rng.choice([1e-8, 1e-3])),
        "weight_decay": _wd(rng), "decoupled_weight_decay": _flag(rng), "maximize": _flag(rng),
    }


def draw_asgd(rng: np.random.Generator) -> dict[str, Any]:
    # t0 below the step count exercises the averaging of `ax` (mu != 1).
    return {
        "lr": _lr(rng, 1e-3, 0.1), "lambd": float(rng.choice([1e-4, 0.0, rng.uniform(0, 0.1)])),
        "alpha": float(rng.choice([0.75, rng.uniform(0, 1)])),
        "t0": float(rng.choice([1e6, 0.0, 50.0, rng.uniform(0, 150)])),
        "weight_decay": _wd(rng), "maximize": _flag(rng),
    }


def draw_rprop(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": _lr(rng, 1e-3, 0.5), "etas": (float(rng.choice([0.5, rng.uniform(0.1, 0.9)])),
                                            float(rng.choice([1.2, rng.uniform(1.01, 2.0)]))),
        "step_sizes": (float(rng.choice([1e-6, rng.uniform(1e-6, 1e-2)])),
                       float(rng.choice([50.0, rng.uniform(0.05, 2.0)]))),
        "maximize": _flag(rng),
    }


def draw_adafactor(rng: np.random.Generator) -> dict[str, Any]:
    eps1 = [None, 1e-30, float(rng.uniform(0, 1e-2))][rng.integers(3)]
    return {
        "lr": _lr(rng, 1e-3, 0.5), "beta2_decay": float(rng.choice([-0.8, 0.0, rng.uniform(-1.5, 0)])),
        "eps": (eps1, float(rng.choice([1e-3, 0.0, rng.uniform(0, 0.1)]))),
        "d": float(rng.choice([1.0, rng.uniform(1, 5)])), "weight_decay": _wd(rng), "maximize": _flag(rng),
    }

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
    "nadam": TorchCase(torch.optim.NAdam, draw_nadam),
    "radam": TorchCase(torch.optim.RAdam, draw_radam),
    "asgd": TorchCase(torch.optim.ASGD, draw_asgd),
    "rprop": TorchCase(torch.optim.Rprop, draw_rprop),
    "adafactor": TorchCase(torch.optim.Adafactor, draw_adafactor),
}
