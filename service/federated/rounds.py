"""A federated session's round bookkeeping and its bytes encoding.

`RoundState` is everything a federated session keeps besides the optimizer state and the
global params: the open round (who contributed, the running weighted sum for `mean` or
the vectors for the robust rules, reported metrics), the global params of recent
versions (contribution `params`), idempotency receipts (bounded), a short history of
closed rounds and the DP noise seed. It is stored in the session's blob next to the
optimizer state, so one compare-and-set writes all of it together.

Blob of a federated session (a plain session's blob is the optimizer state alone):

    b"DFED" | u16 version | u64 length of the round part | round part | optimizer state bytes

Round part: u32 header length | header (UTF-8 JSON) | float64 vectors, `dim` values each,
in the order the header's `vectors` lists them.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

MAGIC = b"DFED"
VERSION = 1
_WRAP = struct.Struct("<4sHQ")
_HEADER = struct.Struct("<I")
F64 = np.dtype("<f8")
MAX_RECEIPTS = 1024  # idempotency receipts kept per session (oldest dropped first)
MAX_HISTORY = 100  # closed rounds kept in the history


@dataclass
class RoundState:
    noise_seed: int
    round: int = 0
    opened_at: float = 0.0
    clients: list[str] = field(default_factory=list)  # who counted in the open round, in order
    staleness: list[int] = field(default_factory=list)  # and how stale each was
    total_weight: float = 0.0
    weighted_sum: np.ndarray | None = None  # rule mean: sum of weight * contribution
    vectors: list[np.ndarray] = field(default_factory=list)  # robust rules: each contribution
    metrics: dict[str, float] = field(default_factory=dict)  # sums of reported loss/accuracy and weights
    past_params: dict[int, np.ndarray] = field(default_factory=dict)  # version -> global params then
    receipts: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.clients)

    def add(self, u: np.ndarray, weight: float, client_id: str, staleness: int, keep_vector: bool) -> None:
        """Count one (already clipped and staleness-scaled) contribution."""
        self.clients.append(client_id)
        self.staleness.append(staleness)
        self.total_weight += weight
        if keep_vector:
            self.vectors.append(np.array(u, dtype=F64))
        elif self.weighted_sum is None:
            self.weighted_sum = weight * u.astype(F64)
        else:
            self.weighted_sum += weight * u

    def add_metrics(self, reported: dict[str, float], num_examples: int) -> None:
        """Sum what the client reported, loss and accuracy weighted by their own num_examples
        (the evaluation set's size) or else by the contribution's."""
        self.metrics["num_examples"] = self.metrics.get("num_examples", 0.0) + num_examples
        n = reported.get("num_examples", num_examples)
        for name in ("loss", "accuracy"):
            if name in reported:
                self.metrics[name] = self.metrics.get(name, 0.0) + n * reported[name]
                self.metrics[f"{name}_weight"] = self.metrics.get(f"{name}_weight", 0.0) + n

    def close(self, now: float, version: int) -> dict[str, Any]:
        """Record the closed round in the history, open the next one; the history entry."""
        entry: dict[str, Any] = {
            "round": self.round, "version": version, "contributions": self.received,
            "num_examples": int(self.metrics.get("num_examples", 0)), "opened_at": self.opened_at, "closed_at": now,
            "mean_staleness": float(np.mean(self.staleness)) if self.staleness else 0.0,
        }
        for name in ("loss", "accuracy"):
            w = self.metrics.get(f"{name}_weight", 0.0)
            entry[name] = self.metrics[name] / w if w > 0 else None
        self.history = [*self.history[-(MAX_HISTORY - 1):], entry]
        self.round += 1
        self.opened_at = now
        self.clients, self.staleness, self.vectors, self.metrics = [], [], [], {}
        self.total_weight, self.weighted_sum = 0.0, None
        return entry

    def receipt(self, client_id: str, key: str) -> dict[str, Any] | None:
        return self.receipts.get(_receipt_key(client_id, key))

    def remember(self, client_id: str, key: str, receipt: dict[str, Any]) -> None:
        self.receipts[_receipt_key(client_id, key)] = receipt
        while len(self.receipts) > MAX_RECEIPTS:
            self.receipts.popitem(last=False)

    # -- bytes ---------------------------------------------------------------------------

    def to_bytes(self, dim: int) -> bytes:
        named: list[tuple[str, np.ndarray]] = []
        if self.weighted_sum is not None:
            named.append(("sum", self.weighted_sum))
        named += [(f"v{i}", v) for i, v in enumerate(self.vectors)]
        named += [(f"p{version}", p) for version, p in sorted(self.past_params.items())]
        header = orjson.dumps({
            "dim": dim, "noise_seed": self.noise_seed, "round": self.round, "opened_at": self.opened_at,
            "clients": self.clients, "staleness": self.staleness, "total_weight": self.total_weight,
            "metrics": self.metrics, "receipts": list(self.receipts.items()), "history": self.history,
            "vectors": [name for name, _ in named],
        })
        parts = [_HEADER.pack(len(header)), header]
        parts += [np.ascontiguousarray(v, dtype=F64).data for _, v in named]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, raw: bytes | memoryview) -> "RoundState":
        (hlen,) = _HEADER.unpack_from(raw)
        start = _HEADER.size + hlen
        h = orjson.loads(bytes(raw[_HEADER.size:start]))
        dim, names = h["dim"], h["vectors"]
        if len(raw) != start + 8 * dim * len(names):
            raise ValueError("federated round bytes have the wrong length")
        # One private writable copy: `weighted_sum += ...` updates it in place.
        flat = np.frombuffer(bytearray(raw[start:]), dtype=F64).reshape(len(names), dim) if names else None
        vecs = {name: flat[i] for i, name in enumerate(names)} if flat is not None else {}
        return cls(
            noise_seed=h["noise_seed"], round=h["round"], opened_at=h["opened_at"], clients=h["clients"],
            staleness=h["staleness"], total_weight=h["total_weight"], weighted_sum=vecs.get("sum"),
            vectors=[vecs[n] for n in names if n[0] == "v"],
            metrics=h["metrics"],
            past_params={int(n[1:]): vecs[n] for n in names if n[0] == "p"},
            receipts=OrderedDict((k, v) for k, v in h["receipts"]), history=h["history"],
        )


def _receipt_key(client_id: str, key: str) -> str:
    return f"{client_id}\n{key}"


def wrap(state_blob: bytes, rounds: RoundState, dim: int) -> bytes:
    part = rounds.to_bytes(dim)
    return b"".join([_WRAP.pack(MAGIC, VERSION, len(part)), part, state_blob])


def unwrap(blob: bytes) -> tuple[bytes | memoryview, RoundState | None]:
    """(optimizer state bytes, round state or None for a plain session)."""
    if blob[:4] != MAGIC:
        return blob, None
    magic, version, length = _WRAP.unpack_from(blob)
    if version != VERSION:
        raise ValueError(f"unsupported federated round version {version}")
    view = memoryview(blob)
    start = _WRAP.size
    return view[start + length:], RoundState.from_bytes(view[start:start + length])
