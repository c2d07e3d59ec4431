"""Request and response models: what the OpenAPI document shows and FastAPI checks.

The optimizer block's schema is generated from the optimizer registry (one variant per
optimizer, discriminated by `name`), and the engine validates it with the registry
too: the hyperparameters are described exactly once, in `service/optim`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .optim import OPTIMIZERS

Dtype = Literal["float32", "float64"]


def optimizer_schema(require_name: bool) -> dict[str, Any]:
    variants = []
    for opt in OPTIMIZERS.values():
        props: dict[str, Any] = {"name": {"const": opt.name, "type": "string", "description": opt.summary}}
        props.update({h.name: h.json_schema() for h in opt.hypers})
        variants.append({
            "type": "object", "title": opt.name, "properties": props,
            "required": ["name"] if require_name else [], "additionalProperties": False,
        })
    return {"oneOf": variants, "description": "optimizer name and hyperparameters (torch.optim's names and defaults)"}


OptimizerBlock = Annotated[dict[str, Any], WithJsonSchema(optimizer_schema(require_name=True))]
OptimizerChanges = Annotated[dict[str, Any], WithJsonSchema(optimizer_schema(require_name=False))]


class SessionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
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
        "reject", description="NaN/Inf in a step: reject with 422, or skip the step (like torch's GradScaler)"
    )
    ttl_s: int | None = Field(None, ge=1, description="idle seconds before the session expires")


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


class StateDocument(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"step": 1, "optimizer": {"name": "adam"}, "state": {"exp_avg": [0.1], "exp_avg_sq": [0.001]}, "params": [0.5]},
    ]})

    step: int = Field(ge=0)
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
