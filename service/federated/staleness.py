"""Staleness weights: how much a contribution computed `tau` versions ago still counts.

The three functions of FedAsync (Xie, Koyejo, Gupta 2019, "Asynchronous Federated
Optimization", section 5.2), with tau = current version - the contribution's version:

    constant     s(tau) = 1
    polynomial   s(tau) = (tau + 1) ** -a
    hinge        s(tau) = 1                        if tau <= b
                          1 / (a * (tau - b) + 1)  otherwise

Every s is 1 at tau = 0 and at most 1 for a >= 0, so a fresh contribution counts fully.
FedBuff (Nguyen et al. 2022) uses the polynomial with a = 0.5, our default.
"""

from __future__ import annotations

from .config import Staleness


def weight(config: Staleness, tau: int) -> float:
    if tau < 0:
        raise ValueError(f"staleness must be >= 0, got {tau}")
    if config.function == "constant":
        return 1.0
    if config.function == "polynomial":
        return float((tau + 1) ** -config.a)
    if tau <= config.b:
        return 1.0
    return 1.0 / (config.a * (tau - config.b) + 1.0)
