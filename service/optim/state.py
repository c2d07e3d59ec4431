"""Optimizer state: a step count, named vectors and named scalars, with two codecs.

Bytes layout (version 1), little-endian, no pickle:

    b"DSNT" | u16 version | u32 header length | header (UTF-8 JSON) | vectors

The header is ``{"dtype", "dim", "step", "vectors": [names], "scalars": {name: float}}``;
the vectors follow in the header's order, each `dim` raw values of `dtype`. Scalars
travel as JSON numbers, whose shortest round-trip form makes them exact.

The JSON codec gives the contract's ``state`` object: torch's state names mapped to
arrays (vectors) or numbers (scalars).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .errors import StateError

MAGIC = b"DSNT"
VERSION = 1
_PREFIX = struct.Struct("<4sHI")
DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}


@dataclass
class State:
    step: int
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)

    def copy(self) -> "State":
        return State(self.step, {k: v.copy() for k, v in self.vectors.items()}, dict(self.scalars))


def dtype_name(dtype: np.dtype) -> str:
    for name, dt in DTYPES.items():
        if np.dtype(dtype) == dt:
            return name
    raise StateError("dtype", f"unsupported dtype {dtype}; use float32 or float64")


def to_bytes(state: State, dtype: np.dtype, dim: int) -> bytes:
    dt = DTYPES[dtype_name(dtype)]
    names = list(state.vectors)
    header = json.dumps(
        {"dtype": dtype_name(dt), "dim": dim, "step": state.step, "vectors": names, "scalars": state.scalars},
        separators=(",", ":"),
    ).encode()
    parts = [_PREFIX.pack(MAGIC, VERSION, len(header)), header]
    parts += [np.ascontiguousarray(state.vectors[n], dtype=dt).data for n in names]
    return b"".join(parts)


def from_bytes(blob: bytes | bytearray | memoryview) -> tuple[State, np.dtype, int]:
    """Decode; the vectors are writable views of one private copy of `blob`."""
    buf = bytearray(blob)
    if len(buf) < _PREFIX.size:
        raise StateError("state", "state bytes are truncated")
    magic, version, hlen = _PREFIX.unpack_from(buf)
    if magic != MAGIC:
        raise StateError("state", "not a Descent state (bad magic)")
    if version != VERSION:
        raise StateError("state", f"unsupported state version {version}")
    start = _PREFIX.size + hlen
    if len(buf) < start:
        raise StateError("state", "state bytes are truncated")
    try:
        header = json.loads(bytes(buf[_PREFIX.size:start]))
        dt = DTYPES[header["dtype"]]
        dim = int(header["dim"])
    except (ValueError, KeyError, TypeError):
        raise StateError("state", "state header is malformed") from None
    size = dim * dt.itemsize
    names = header["vectors"]
    if len(buf) != start + size * len(names):
        raise StateError("state", "state bytes have the wrong length")
    vectors = {
        n: np.frombuffer(buf, dtype=dt, count=dim, offset=start + i * size) for i, n in enumerate(names)
    }
    return State(int(header["step"]), vectors, {k: float(v) for k, v in header["scalars"].items()}), dt, dim


def to_json(state: State) -> dict[str, Any]:
    """The contract's ``state`` object; vectors stay numpy arrays (orjson writes them)."""
    out: dict[str, Any] = dict(state.vectors)
    out.update(state.scalars)
    return out


def from_json(
    data: dict[str, Any],
    step: int,
    dtype: np.dtype,
    dim: int,
    vectors: Iterable[str],
    scalars: Iterable[str],
) -> State:
    """Build a State from the contract's ``state`` object, checking every entry.

    `vectors` and `scalars` are the names the optimizer knows; torch's own ``step``
    entry is accepted and must agree with `step`.
    """
    vectors, scalars = set(vectors), set(scalars)
    state = State(step)
    for name, value in data.items():
        if name == "step":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != step:
                raise StateError("state.step", f"state.step ({value!r}) disagrees with step ({step})")
        elif name in vectors:
            if not isinstance(value, (list, np.ndarray)):
                raise StateError(f"state.{name}", f"state.{name} must be an array of {dim} numbers")
            try:
                arr = np.array(value, dtype=dtype)
            except (TypeError, ValueError):
                raise StateError(f"state.{name}", f"state.{name} must be an array of numbers") from None
            if arr.shape != (dim,):
                raise StateError(f"state.{name}", f"state.{name} has {arr.size} values, expected {dim}")
            if not np.isfinite(arr).all():
                raise StateError(f"state.{name}", f"state.{name} contains NaN or Inf")
            state.vectors[name] = arr
        elif name in scalars:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise StateError(f"state.{name}", f"state.{name} must be a finite number")
            state.scalars[name] = float(value)
        else:
            known = ", ".join(sorted(vectors | scalars)) or "none"
            raise StateError(f"state.{name}", f"unknown state entry {name!r} (known: {known})")
    return state
