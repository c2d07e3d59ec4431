"""The optimizer catalogue, straight from the registry."""

from __future__ import annotations

from fastapi import APIRouter

from ..optim import OPTIMIZERS
from ..schemas import OptimizerInfo

router = APIRouter(prefix="/v1", tags=["optimizers"])


@router.get("/optimizers", operation_id="list_optimizers", response_model=list[OptimizerInfo],
            summary="Every optimizer with its hyperparameters, defaults and state names")
async def list_optimizers() -> list[dict]:
    return [opt.describe() for opt in OPTIMIZERS.values()]
