"""Property-based contract check: schemathesis drives every operation of the live server.

Every response must be a non-5xx that conforms to the OpenAPI document the server itself
publishes, for schema-valid (positive) and schema-violating (negative) requests. Most
examples run against a freshly created session with its valid token, so the session
endpoints are exercised past authentication; the rest keep the generated id and no token.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.openapi import document

from ..conftest import Server, create_session

CHECKS = [not_a_server_error, response_schema_conformance]
EXAMPLES = int(os.environ.get("DESCENT_TEST_SCHEMATHESIS_EXAMPLES", "25"))  # raise it for a deeper hunt
OPERATIONS = [op for path in orjson.loads(document())["paths"].values() for op in path.values()]
# Negative examples need something to violate: a parameter or a body.
CASES = sorted(
    (op["operationId"], mode)
    for op in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or "parameters" in op or "requestBody" in op
)
SESSIONS = {  # one of each kind, so generated bodies meet every mode and both dtypes
    "server-held": {"optimizer": {"name": "adam"}, "dtype": "float64", "params": [0.5, -1.0, 2.0]},
    "client-held": {"optimizer": {"name": "sgd", "momentum": 0.9}, "dim": 3},
    "federated": {"optimizer": {"name": "adam", "lr": 0.01}, "dtype": "float64", "params": [0.0, 0.0, 0.0],
                  "federation": {"mode": "sync", "contribution": "delta", "clients_per_round": 2,
                                 "aggregation": {"rule": "mean"}}},
    "generated id, no token": None,
}


def bound_long_poll(case) -> None:
    """`GET .../params?after=v` waits up to `wait` seconds (30 by default) for a new version:
    keep a valid wait short so that every example answers quickly; invalid ones stay as drawn."""
    if not case.query or "after" not in case.query:
        return
    try:
        wait = float(case.query.get("wait", 30.0))
    except (TypeError, ValueError):
        return
    if wait >= 0:
        case.query["wait"] = min(wait, 0.05)


@pytest.fixture(scope="module")
def fuzzed(redis_server_factory) -> Server:
    """A server of its own whose sessions stay small, however large a dim is drawn."""
    return redis_server_factory(max_dim="4096")


@pytest.fixture(scope="module")
def api_schema(fuzzed):
    return schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")


@pytest.fixture
def http(fuzzed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzzed.url, timeout=60) as client:
        yield client


@pytest.mark.parametrize(("operation_id", "mode"), CASES, ids=[f"{o}-{m}" for o, m in CASES])
def test_every_operation_answers_without_5xx_and_as_documented(api_schema, http, operation_id, mode) -> None:
    operation = api_schema.find_operation_by_id(operation_id)
    connection = requests.Session()  # keep-alive for schemathesis' calls, as `http` has for ours

    @given(case=operation.as_strategy(mode), kind=st.sampled_from(list(SESSIONS)))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case, kind) -> None:
        headers = {}
        if SESSIONS[kind] is not None:
            sid, headers, _ = create_session(http, **SESSIONS[kind])
            if "session_id" in (case.path_parameters or {}):
                case.path_parameters["session_id"] = sid
        bound_long_poll(case)
        case.call_and_validate(session=connection, headers=headers, checks=CHECKS)

    with connection:
        check()
