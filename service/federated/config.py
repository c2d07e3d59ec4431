"""The `federation` block of a federated session: what clients send and how rounds combine.

Validated once, at session creation, and stored (with every default resolved) in the
session's meta; the coordinator reads it back with `FederationConfig.model_validate`.
Fields that do not apply to the chosen mode are refused rather than ignored, so a
misconfigured deployment fails at creation, not silently mid-training.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Mode = Literal["sync", "buffered", "async"]
Contribution = Literal["gradient", "delta", "params"]
Rule = Literal["mean", "median", "trimmed_mean", "krum"]

MAX_PARAMS_HISTORY = 64  # params mode keeps the global params of this many past versions at most


class Aggregation(BaseModel):
    """How the contributions of a round become one vector (see `aggregate.py`)."""

    model_config = ConfigDict(extra="forbid")

    rule: Rule = Field("mean", description="mean (weighted by num_examples), median, trimmed_mean or krum")
    trim_ratio: float = Field(0.1, ge=0.0, lt=0.5, description="trimmed_mean: share cut from each end, per coordinate")
    byzantine: int = Field(0, ge=0, description="krum: f, the number of Byzantine contributions tolerated")
    multi: int = Field(1, ge=1, description="krum: m, how many best-scored contributions are averaged (Multi-Krum)")

    @model_validator(mode="after")
    def _applies(self) -> "Aggregation":
        own = {"trim_ratio": "trimmed_mean", "byzantine": "krum", "multi": "krum"}
        for name in self.model_fields_set & set(own):
            # A default value is harmless (a stored, fully dumped config carries them all).
            if own[name] != self.rule and getattr(self, name) != type(self).model_fields[name].default:
                raise ValueError(f"aggregation.{name} applies to rule {own[name]!r} only, not {self.rule!r}")
        return self


class DP(BaseModel):
    """Differential privacy as DP-FedAvg (McMahan et al. 2018): clip, average, add Gaussian noise."""

    model_config = ConfigDict(extra="forbid")

    clip_norm: float = Field(gt=0.0, description="each contribution is scaled down to at most this L2 norm")
    noise_multiplier: float = Field(
        0.0, ge=0.0, description="noise std = noise_multiplier * clip_norm / contributions, added to the mean"
    )
    seed: int | None = Field(
        None, ge=0, lt=2**63, description="noise seed (with the round number); default: a secret random one per session"
    )


class Staleness(BaseModel):
    """Weight s(tau) of a contribution computed tau versions ago (Xie et al. 2019, FedAsync)."""

    model_config = ConfigDict(extra="forbid")

    function: Literal["constant", "polynomial", "hinge"] = Field(
        "polynomial", description="constant: 1; polynomial: (tau+1)^-a; hinge: 1 if tau <= b else 1/(a(tau-b)+1)"
    )
    a: float = Field(0.5, ge=0.0, description="polynomial exponent, or hinge slope")
    b: int = Field(4, ge=0, description="hinge: staleness up to which the weight stays 1")


class FederationConfig(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"mode": "sync", "contribution": "delta", "clients_per_round": 3,
                                         "aggregation": {"rule": "mean"}}]},
    )

    mode: Mode = Field("sync", description="sync rounds, buffered (FedBuff) or async (FedAsync)")
    contribution: Contribution = Field(
        "delta", description="gradient, delta (local minus global params) or params (the client's new params)"
    )
    clients_per_round: int | None = Field(None, ge=1, description="sync: a round closes at this many contributions")
    min_clients: int | None = Field(
        None, ge=1, description="sync: with round_timeout_s, a late round closes with at least this many"
    )
    round_timeout_s: float | None = Field(None, gt=0.0, description="sync: seconds after which a round may close early")
    buffer_size: int | None = Field(None, ge=1, description="buffered: a server step every this many contributions")
    max_staleness: int | None = Field(
        None, ge=0, description="buffered/async: contributions more versions behind than this get 409 (default 16)"
    )
    staleness: Staleness | None = Field(None, description="buffered/async: weight by staleness")
    aggregation: Aggregation = Field(default_factory=Aggregation)
    dp: DP | None = None

    @model_validator(mode="after")
    def _resolve(self) -> "FederationConfig":
        """Cross-field rules and mode defaults; idempotent, since the stored (resolved) block is re-read."""
        given = self.model_fields_set
        per_mode = {"sync": {"clients_per_round", "min_clients", "round_timeout_s"},
                    "buffered": {"buffer_size", "max_staleness", "staleness"},
                    "async": {"max_staleness", "staleness"}}
        for name in sorted(given & (set().union(*per_mode.values()) - per_mode[self.mode])):
            if getattr(self, name) is not None:
                raise ValueError(f"{name} does not apply to mode {self.mode!r}")
        if self.mode == "sync":
            if self.clients_per_round is None:
                raise ValueError("mode 'sync' needs clients_per_round")
            if self.min_clients not in (None, self.clients_per_round) and self.round_timeout_s is None:
                raise ValueError("min_clients needs round_timeout_s (without a timeout a round waits for all)")
            if self.min_clients is None:
                self.min_clients = self.clients_per_round
            if self.min_clients > self.clients_per_round:
                raise ValueError("min_clients may not exceed clients_per_round")
        else:
            if self.mode == "buffered" and self.buffer_size is None:
                raise ValueError("mode 'buffered' needs buffer_size")
            if self.max_staleness is None:
                self.max_staleness = 16
            if self.staleness is None:
                self.staleness = Staleness()
            if self.contribution == "params" and self.max_staleness > MAX_PARAMS_HISTORY:
                raise ValueError("contribution 'params' keeps past params: "
                                 f"max_staleness may be at most {MAX_PARAMS_HISTORY}")
        agg = self.aggregation
        if self.mode == "async" and agg.rule != "mean":
            raise ValueError("mode 'async' applies each contribution alone: only rule 'mean' makes sense")
        if agg.rule == "krum":
            fewest = self.min_clients if self.mode == "sync" else self.buffer_size
            assert fewest is not None
            if fewest < 2 * agg.byzantine + 3:
                raise ValueError(f"krum with byzantine={agg.byzantine} needs at least {2 * agg.byzantine + 3} "
                                 f"contributions per round (n >= 2f + 3), this configuration may close with {fewest}")
            if agg.multi > fewest - agg.byzantine:
                raise ValueError(f"krum: multi may be at most n - f = {fewest - agg.byzantine}")
        if self.dp is not None and self.dp.noise_multiplier > 0 and agg.rule != "mean":
            raise ValueError("dp noise is calibrated for rule 'mean'; robust rules may use clip_norm alone")
        return self

    @property
    def needed(self) -> int:
        """Contributions that close a round (sync) or fill the buffer (buffered); 1 for async."""
        return {"sync": self.clients_per_round, "buffered": self.buffer_size, "async": 1}[self.mode] or 1
