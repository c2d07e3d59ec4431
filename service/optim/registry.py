"""Every optimizer by name: the one list the engine, the API and the tests read."""

from __future__ import annotations

from .adam import ADAM, ADAMW

# Group A (sgd, adagrad, rmsprop, adadelta, adamax): imports here
from .adadelta import ADADELTA
from .adagrad import ADAGRAD
from .adamax import ADAMAX
from .rmsprop import RMSPROP
from .sgd import SGD
# Group B (nadam, radam, asgd, rprop, adafactor): imports here
from .adafactor import ADAFACTOR
from .asgd import ASGD
from .nadam import NADAM
from .radam import RADAM
from .rprop import RPROP
# Group C (lion, yogi): imports here
from .lion import LION
from .yogi import YOGI
from .errors import HyperparameterError
from .spec import Optimizer

OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        ADAM,
        ADAMW,
        # group A
        SGD,
        ADAGRAD,
        RMSPROP,
        ADADELTA,
        ADAMAX,
        # group B
        NADAM,
        RADAM,
        ASGD,
        RPROP,
        ADAFACTOR,
        # group C
        LION,
        YOGI,
    )
}


def get(name: object) -> Optimizer:
    if not isinstance(name, str) or name not in OPTIMIZERS:
        known = ", ".join(OPTIMIZERS)
        raise HyperparameterError("name", f"unknown optimizer {name!r} (known: {known})")
    return OPTIMIZERS[name]
