"""The committed OpenAPI document: current, deterministic, and complete where clients need it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from service.openapi import document

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "openapi" / "openapi.json"
PROBLEM = "application/problem+json"
OCTET = "application/octet-stream"
SPEC = orjson.loads(document())
OPERATIONS = {
    f"{method.upper()} {path}": op for path, ops in SPEC["paths"].items() for method, op in ops.items()
}


def test_committed_document_is_current() -> None:
    assert COMMITTED.exists(), "openapi/openapi.json is missing: run `make openapi` and commit it"
    assert COMMITTED.read_bytes() == document(), (
        "openapi/openapi.json differs from the app's document: run `make openapi` and commit the result"
    )


def test_document_is_deterministic_across_processes() -> None:
    """Another interpreter, another hash seed: the same bytes (no set or dict order leaks in)."""
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    env = {k: v for k, v in env.items() if not k.startswith("DESCENT_")}  # settings must not matter either
    out = subprocess.run([sys.executable, "-m", "service.openapi"], cwd=ROOT, env=env, capture_output=True, check=True)
    assert out.stdout == document()


def test_every_operation_has_a_unique_operation_id() -> None:
    ids = [op.get("operationId") for op in OPERATIONS.values()]
    assert all(ids), [label for label, op in OPERATIONS.items() if not op.get("operationId")]
    assert len(ids) == len(set(ids))


def _errors(op: dict[str, Any]) -> dict[str, Any]:
    return {code: r for code, r in op["responses"].items() if code[0] in "45"}


@pytest.mark.parametrize("label", OPERATIONS)
def test_error_responses_are_problem_details(label: str) -> None:
    for code, response in _errors(OPERATIONS[label]).items():
        assert response["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (label, code)
        assert response["description"], (label, code)
    problem = SPEC["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_contract_error_is_documented(label: str) -> None:
    op, path = OPERATIONS[label], label.split(" ", 1)[1]
    expected = set()
    if path.startswith("/v1/sessions/{session_id}"):
        expected |= {"401", "403", "404"}  # token needed, token of another session, unknown session
    if "requestBody" in op:
        expected |= {"413", "415", "422"}
    if label == "POST /v1/sessions":
        expected |= {"401"}  # when DESCENT_API_KEYS is set
    if label == "POST /v1/sessions/{session_id}/step":
        expected |= {"412"}  # If-Match
    assert expected <= set(_errors(op)), (label, sorted(expected - set(_errors(op))))


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for a schema of this document: local $refs resolve against its components."""
    return Draft202012Validator({**schema, "components": SPEC["components"]})


def _examples(media: dict[str, Any]) -> list[Any]:
    found = [media["example"]] if "example" in media else []
    found += [e["value"] for e in media.get("examples", {}).values()]
    schema = media.get("schema", {})
    if "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return found + list(schema.get("examples", []))


@pytest.mark.parametrize("label", [label for label, op in OPERATIONS.items() if "requestBody" in op])
def test_request_bodies_have_examples_that_fit_their_schema(label: str) -> None:
    content = OPERATIONS[label]["requestBody"]["content"]
    media = content["application/json"]
    examples = _examples(media)
    assert examples, f"{label}: the JSON request body has no example"
    for example in examples:
        errors = [e.message for e in _validator(media["schema"]).iter_errors(example)]
        assert not errors, (label, example, errors)


def test_binary_encoding_is_described_for_steps_and_params() -> None:
    step = OPERATIONS["POST /v1/sessions/{session_id}/step"]
    body = step["requestBody"]["content"][OCTET]
    assert body["schema"] == {"type": "string", "format": "binary"}
    assert "little-endian" in body["description"] and "2*dim" in body["description"]
    for label in ("POST /v1/sessions/{session_id}/step", "GET /v1/sessions/{session_id}/params"):
        ok = OPERATIONS[label]["responses"]["200"]
        assert ok["content"][OCTET]["schema"] == {"type": "string", "format": "binary"}, label
        assert "Accept: application/octet-stream" in ok["description"], label
        assert "ETag" in ok["headers"], label
    assert "little-endian" in SPEC["info"]["description"]


def test_served_document_is_the_committed_one(http) -> None:
    assert http.get("/openapi.json").json() == orjson.loads(COMMITTED.read_bytes())
