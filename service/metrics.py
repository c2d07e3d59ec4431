"""Prometheus metrics. With several worker processes, prometheus-client's multiprocess
mode (PROMETHEUS_MULTIPROC_DIR, set up by `python -m service`) aggregates them."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

REQUEST_SECONDS = Histogram(
    "descent_request_seconds", "HTTP request latency", ["method", "route", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STEP_SECONDS = Histogram(
    "descent_step_seconds", "optimizer step latency inside the server (load, math, save)", ["optimizer"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STEPS = Counter("descent_steps", "optimizer steps applied", ["optimizer"])
SESSIONS_CREATED = Counter("descent_sessions_created", "sessions created", ["optimizer"])
SESSIONS_DELETED = Counter("descent_sessions_deleted", "sessions deleted")
ERRORS = Counter("descent_errors", "error responses by problem type", ["type"])
# Federated sessions: no session label (unbounded cardinality); per-session loss and
# accuracy history is in GET /v1/sessions/{id}/federation instead.
FED_CONTRIBUTIONS = Counter("descent_federated_contributions", "federated contributions accepted",
                            ["mode", "outcome"])
FED_ROUNDS = Counter("descent_federated_rounds", "federated rounds closed (server optimizer steps)", ["mode"])
FED_ROUND_CONTRIBUTIONS = Histogram("descent_federated_round_contributions", "contributions per closed round",
                                    ["mode"], buckets=(1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000))
FED_STALENESS = Histogram("descent_federated_staleness", "versions between a contribution's and the session's",
                          ["mode"], buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64))


def exposition() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
