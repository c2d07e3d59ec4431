"""Settings: the only place that reads the environment (DESCENT_* variables)."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

WEEK_S = 7 * 24 * 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESCENT_", extra="ignore")

    store_url: str = Field("memory://", description="memory:// (in-process) or redis://host:port/db")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes; >1 needs a shared store")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated; when set, creating a session needs one"
    )
    session_ttl_s: int = Field(WEEK_S, ge=1, description="idle time after which a session expires")
    max_session_ttl_s: int = Field(365 * 24 * 3600, ge=1, description="longest TTL a session may ask for")
    max_dim: int = Field(50_000_000, ge=1, description="largest vector length of a session")
    max_json_dim: int = Field(1_000_000, ge=1, description="largest vector accepted or returned as JSON")
    max_body_bytes: int | None = Field(
        None, ge=1, description="request body limit; default: room for params+grads of max_dim float64"
    )
    redis_prefix: str = Field("descent", description="prefix of every Redis key")
    step_retries: int = Field(200, ge=1, description="compare-and-set attempts before a step gives up (503)")
    offload_min_dim: int = Field(
        32_768, ge=0, description="vectors at least this long are processed in a worker thread"
    )
    log_level: str = "info"

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @cached_property
    def body_limit(self) -> int:
        return self.max_body_bytes or 16 * self.max_dim + 65_536
