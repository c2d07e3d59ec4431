"""Vector encodings, in one place: JSON arrays and raw little-endian bytes.

Large vectors never pass through per-element Python: binary bodies become arrays with
`np.frombuffer` (no copy), JSON arrays are parsed by orjson and converted by numpy in
C, responses are written by orjson (numpy arrays natively) or as raw bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from .errors import InvalidInput
from .optim.state import DTYPES

OCTET = "application/octet-stream"
JSON = "application/json"


def dtype_of(name: str) -> np.dtype:
    return DTYPES[name]


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("body", f"body is not valid JSON: {exc}") from None


def vector_from_json(value: Any, field: str, dim: int, dtype: np.dtype, max_json_dim: int) -> np.ndarray:
    if not isinstance(value, list):
        raise InvalidInput(field, f"{field} must be an array of {dim} numbers")
    if len(value) != dim:
        raise InvalidInput(field, f"{field} has {len(value)} values, expected {dim}")
    if dim > max_json_dim:
        raise InvalidInput(
            field, f"{field}: JSON vectors are limited to {max_json_dim} values; send {OCTET} instead"
        )
    try:
        # Let numpy infer the type first: converting straight to `dtype` would also accept
        # strings ("1.5"), null (NaN) and booleans.
        arr = np.array(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(field, f"{field} must contain only numbers") from None
    if arr.dtype.kind not in "iuf":
        raise InvalidInput(field, f"{field} must contain only numbers")
    if arr.shape != (dim,):
        raise InvalidInput(field, f"{field} must be a flat array of {dim} numbers")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes Inf: rejected as non-finite
        return arr.astype(dtype, copy=False)


def vectors_from_binary(body: bytes, dtype: np.dtype, dim: int, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Split a raw body into `len(names)` consecutive vectors of `dim` values each."""
    expected = dim * dtype.itemsize * len(names)
    if len(body) != expected:
        raise InvalidInput(
            "body",
            f"binary body has {len(body)} bytes, expected {expected} "
            f"({' then '.join(names)}: {len(names)} x {dim} {dtype.name} values)",
        )
    flat = np.frombuffer(body, dtype=dtype)
    return {n: flat[i * dim:(i + 1) * dim] for i, n in enumerate(names)}


def require_finite(arr: np.ndarray, field: str) -> None:
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise InvalidInput(field, f"{field} contains NaN or Inf (first at index {bad})", index=bad)


def dump_json(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)


def wants_binary(accept: str | None) -> bool:
    """True when the client prefers raw bytes (Accept names octet-stream before any JSON)."""
    if not accept:
        return False
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media == OCTET:
            return True
        if media in (JSON, "application/*", "*/*"):
            return False
    return False
