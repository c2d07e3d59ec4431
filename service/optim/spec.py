"""How an optimizer is described: its hyperparameters, its state, its step.

One `Optimizer` value per algorithm is the single source of truth: the registry lists
it, the HTTP layer builds its request schema from it, and `resolve` validates input
against it with torch.optim's error wording.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np

from .errors import HyperparameterError
from .state import State

Kind = Literal["float", "int", "bool", "pair"]
Hyperparameters = dict[str, Any]


@dataclass(frozen=True)
class Bound:
    """A numeric bound; `op` is one of ">=", ">", "<=", "<"."""

    op: Literal[">=", ">", "<=", "<"]
    value: float

    def holds(self, x: float) -> bool:
        return {
            ">=": x >= self.value,
            ">": x > self.value,
            "<=": x <= self.value,
            "<": x < self.value,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Hyper:
    """One hyperparameter.

    `message` is torch's ValueError text for an out-of-range value, formatted with
    `value` (and `index` for pairs). `bounds` apply to the value, or to each element
    of a pair. `nullable` lets the value (or a pair element) be JSON null.
    """

    name: str
    kind: Kind
    default: Any
    doc: str
    bounds: tuple[Bound, ...] = ()
    message: str = "Invalid {name} value: {value}"
    nullable: bool = False

    @property
    def constraint(self) -> str:
        return " and ".join(str(b) for b in self.bounds)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": {"float": "number", "int": "integer", "bool": "boolean", "pair": "array"}[self.kind],
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "nullable": self.nullable,
            "constraint": self.constraint,
            "description": self.doc,
        }

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of this hyperparameter (used for the OpenAPI document)."""
        number: dict[str, Any] = {"type": "integer" if self.kind == "int" else "number"}
        for b in self.bounds:
            key = {">=": "minimum", ">": "exclusiveMinimum", "<=": "maximum", "<": "exclusiveMaximum"}[b.op]
            number[key] = b.value
        if self.kind == "bool":
            schema: dict[str, Any] = {"type": "boolean"}
        elif self.kind == "pair":
            item = {"anyOf": [number, {"type": "null"}]} if self.nullable else number
            schema = {"type": "array", "items": item, "minItems": 2, "maxItems": 2}
        else:
            schema = {"anyOf": [number, {"type": "null"}]} if self.nullable else number
        schema["description"] = self.doc
        schema["default"] = self.describe()["default"]
        return schema

    def parse(self, value: Any) -> Any:
        """Return the checked value (pairs as tuples) or raise HyperparameterError."""
        if self.kind == "pair":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise HyperparameterError(self.name, f"{self.name} must be a list of two numbers, got {value!r}")
            return tuple(self._scalar(v, index=i) for i, v in enumerate(value))
        return self._scalar(value)

    def _scalar(self, value: Any, index: int | None = None) -> Any:
        where = self.name if index is None else f"{self.name}[{index}]"
        if value is None and self.nullable:
            return None
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise HyperparameterError(self.name, f"{where} must be a boolean, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            expected = "an integer" if self.kind == "int" else "a number"
            raise HyperparameterError(self.name, f"{where} must be {expected}, got {value!r}")
        if self.kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise HyperparameterError(self.name, f"{where} must be an integer, got {value!r}")
                value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise HyperparameterError(self.name, f"{where} must be finite, got {value!r}")
        if not all(b.holds(value) for b in self.bounds):
            raise HyperparameterError(
                self.name, self.message.format(name=self.name, value=value, index=index)
            )
        return value


StepFn = Callable[[np.ndarray, np.ndarray, State, Hyperparameters], None]
InitFn = Callable[[int, np.dtype, Hyperparameters], State]
CheckFn = Callable[[Hyperparameters], None]


def _no_check(hp: Hyperparameters) -> None:
    return None


@dataclass(frozen=True)
class Optimizer:
    """An optimization algorithm.

    `init(dim, dtype, hp)` returns a fresh State. `step(params, grads, state, hp)`
    applies one update *in place*: `params` and the arrays in `state` are overwritten,
    `grads` is never written. `state.step` has already been incremented when `step`
    runs (torch increments before using it). `check(hp)` raises for combinations that
    are invalid together (e.g. nesterov without momentum).
    """

    name: str
    summary: str
    hypers: tuple[Hyper, ...]
    vectors: tuple[str, ...]
    init: InitFn
    step: StepFn
    scalars: tuple[str, ...] = ()
    check: CheckFn = _no_check
    reference: str = ""
    hyper_by_name: dict[str, Hyper] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hyper_by_name", {h.name: h for h in self.hypers})

    def defaults(self) -> Hyperparameters:
        return {h.name: h.default for h in self.hypers}

    def resolve(self, given: dict[str, Any], base: Hyperparameters | None = None) -> Hyperparameters:
        """Validate `given` over `base` (torch's defaults when None); return the full set."""
        hp = dict(self.defaults() if base is None else base)
        for key, value in given.items():
            if key == "name":
                continue
            hyper = self.hyper_by_name.get(key)
            if hyper is None:
                known = ", ".join(self.hyper_by_name)
                raise HyperparameterError(key, f"unknown hyperparameter {key!r} for {self.name} (known: {known})")
            hp[key] = hyper.parse(value)
        self.check(hp)
        return hp

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "reference": self.reference,
            "hyperparameters": [h.describe() for h in self.hypers],
            "state": list(self.vectors),
            "state_scalars": list(self.scalars),
        }


def zeros_init(*names: str) -> InitFn:
    """An init that gives every named state vector zeros."""

    def init(dim: int, dtype: np.dtype, hp: Hyperparameters) -> State:
        return State(step=0, vectors={n: np.zeros(dim, dtype=dtype) for n in names})

    return init
