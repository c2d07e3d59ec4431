"""Request and response models: what the OpenAPI document shows and FastAPI checks.

The optimizer block's schema is generated from the optimizer registry (one variant per
optimizer, discriminated by `name`), and the engine validates it with the registry
too: the hyperparameters are described exactly once, in `service/optim`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .federated.config import FederationConfig
from .optim import OPTIMIZERS

Dtype = Literal["float32", "float64"]


MAX_STEP = 2**53 - 1  # the largest step count every JSON client reads exactly


def optimizer_schema(require_name: bool) -> dict[str, Any]:
    """One variant per optimizer. With the name required exactly one variant matches
    (oneOf); without it, as in a PATCH, `{"lr": 0.1}` fits many, hence anyOf."""
    variants = []
    for opt in OPTIMIZERS.values():
        props: dict[str, Any] = {"name": {"const": opt.name, "type": "string", "description": opt.summary}}
        props.update({h.name: h.json_schema() for h in opt.hypers})
        variants.append({
            "type": "object", "title": opt.name, "properties": props,
            "required": ["name"] if require_name else [], "additionalProperties": False,
        })
    return {"oneOf" if require_name else "anyOf": variants,
            "description": "optimizer name and hyperparameters (torch.optim's names and defaults)"}


OptimizerBlock = Annotated[dict[str, Any], WithJsonSchema(optimizer_schema(require_name=True))]
OptimizerChanges = Annotated[dict[str, Any], WithJsonSchema(optimizer_schema(require_name=False))]


class SessionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True,  # strict: "3" is not a dim, "0.5" and true are not params
        json_schema_extra={"examples": [
            {"optimizer": {"name": "adam", "lr": 0.01, "betas": [0.9, 0.999]},
             "dim": 3, "dtype": "float64", "params": [0.1, 0.2, 0.3]},
        ]},
    )

    optimizer: OptimizerBlock
    dim: int | None = Field(None, ge=1, description="vector length; required unless params is given")
    dtype: Dtype = "float32"
    params: list[float] | None = Field(None, description="initial parameters: the server holds them")
    nonfinite: Literal["reject", "skip"] = Field(
        "reject", description="NaN/Inf in a step's grads: reject with 422, or skip the step (like torch's "
        "GradScaler), answering 200 with skipped: true; NaN/Inf in params is always a 422"
    )
    ttl_s: int | None = Field(None, ge=1, description="idle seconds before the session expires")
    federation: FederationConfig | None = Field(
        None, description="makes the session federated (needs params): clients POST contributions"
    )


class SessionInfo(BaseModel):
    id: str
    optimizer: dict[str, Any] = Field(description="the optimizer name and every resolved hyperparameter")
    dim: int
    dtype: Dtype
    step: int
    server_held: bool
    nonfinite: Literal["reject", "skip"]
    ttl_s: int
    created_at: float
    federation: dict[str, Any] | None = Field(None, description="federated sessions: the resolved federation block")
    version: int | None = Field(None, description="federated sessions: server optimizer steps (= step)")


class SessionCreated(SessionInfo):
    token: str = Field(description="bearer token for this session; shown only once")


class SessionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"optimizer": {"lr": 0.001}}]})

    optimizer: OptimizerChanges


class StepRequest(BaseModel):
    """JSON step body. Binary alternative: raw little-endian values, grads (dim) or params then grads (2*dim)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"grads": [0.5, -0.1, 0.2]}]})

    grads: list[float]
    params: list[float] | None = Field(None, description="required unless the server holds the parameters")


class StepResponse(BaseModel):
    params: list[float]
    step: int
    skipped: bool = Field(False, description="true when a non-finite step was skipped (nonfinite: skip)")


class ParamsResponse(BaseModel):
    params: list[float]
    step: int
    version: int | None = Field(None, description="federated sessions: the version (= step)")


class StateDocument(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"step": 1, "optimizer": {"name": "adam"}, "state": {"exp_avg": [0.1], "exp_avg_sq": [0.001]}, "params": [0.5]},
    ]})

    step: int = Field(ge=0, le=MAX_STEP)
    optimizer: dict[str, Any] = Field(default_factory=dict, description="ignored on PUT except that name must match")
    state: dict[str, list[float] | float] = Field(description="torch's state names -> vectors or scalars")
    params: list[float] | None = None


class HyperInfo(BaseModel):
    name: str
    type: str
    default: Any
    nullable: bool
    constraint: str
    description: str


class OptimizerInfo(BaseModel):
    name: str
    summary: str
    reference: str
    hyperparameters: list[HyperInfo]
    state: list[str]
    state_scalars: list[str]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = Field(None, description="the request member at fault, when there is one")
    errors: list[dict[str, Any]] | None = None


# -- federated sessions ------------------------------------------------------------------


class ContributionMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loss: float | None = None
    accuracy: float | None = None
    num_examples: int | None = Field(None, ge=1, description="examples the loss/accuracy were measured on")


class ContributionRequest(BaseModel):
    """JSON contribution. Binary alternative: the update's raw values as the body, with
    client_id, version and num_examples as query parameters."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"client_id": "c1", "version": 0, "num_examples": 120, "update": [0.01, -0.02, 0.0]},
    ]})

    client_id: str = Field(pattern=r"^[A-Za-z0-9._:@-]{1,128}$")
    version: int = Field(ge=0, description="the global version the client started from")
    num_examples: int = Field(1, ge=1, description="weight of this contribution in a mean")
    update: list[float] = Field(description="gradient, delta or params, as the session's contribution says")
    metrics: ContributionMetrics | None = None


class ContributionAccepted(BaseModel):
    version: int = Field(description="the session's version (server steps)")
    round: int = Field(description="the round this contribution counted in")
    received: int = Field(description="contributions counted in that round so far")
    needed: int = Field(description="contributions that close a round (sync) or fill the buffer (buffered)")
    replayed: bool | None = Field(None, description="true when answered from an Idempotency-Key receipt")


class ContributionApplied(ContributionAccepted):
    params: list[float] = Field(description="the new global params (this contribution closed the round)")


class RoundRecord(BaseModel):
    round: int
    version: int = Field(description="the version this round's step produced")
    contributions: int
    num_examples: int
    opened_at: float
    closed_at: float
    mean_staleness: float
    loss: float | None = Field(description="mean reported loss, weighted by the reported num_examples")
    accuracy: float | None


class FederationStatus(BaseModel):
    version: int
    round: int = Field(description="the open round")
    received: int
    needed: int
    opened_at: float
    due_at: float | None = Field(description="sync with a timeout: when the open round may close early")
    federation: dict[str, Any]
    history: list[RoundRecord] = Field(description="the latest closed rounds, oldest first")
