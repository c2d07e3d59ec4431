"""Every 4xx of the contract, provoked over real HTTP against a real server on Redis.

Each rejection must be RFC 9457 problem details (`application/problem+json` with type,
title, status, detail, and `field` where a request member is at fault), and must change
nothing: every case compares the session's description and its whole exported state
(step, optimizer, state vectors, held params) before and after, and rejected creations
must leave no key in Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from ..conftest import Server, create_session

OCTET = "application/octet-stream"
PROBLEM = "application/problem+json"
JSON_HEADERS = {"Content-Type": "application/json"}

# A server-held float64 Adam session and a client-held float32 SGD one; both take one step
# at creation so that their state is not all zeros.
KINDS: dict[str, dict[str, Any]] = {
    "held": {"optimizer": {"name": "adam", "lr": 0.1}, "dtype": "float64", "params": [0.5, -1.0, 2.0]},
    "client": {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "dim": 3},
    "skip": {"optimizer": {"name": "adam"}, "dtype": "float32", "params": [0.5, -1.0, 2.0], "nonfinite": "skip"},
    "wide": {"optimizer": {"name": "sgd", "lr": 0.1}, "dim": 6},  # for the server with small limits
}
FIRST_STEP = {"held": {"grads": [0.1, 0.2, 0.3]}, "client": {"grads": [0.1, 0.2, 0.3], "params": [1.0, 2.0, 3.0]},
              "skip": {"grads": [0.1, 0.2, 0.3]}, "wide": np.ones(12, "<f4").tobytes()}


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/") and body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


class Session:
    """A live session and the means to prove that a request left it as it was."""

    def __init__(self, client: httpx.Client, kind: str) -> None:
        self.client, self.kind = client, kind
        self.id, self.auth, _ = create_session(client, **KINDS[kind])
        first = FIRST_STEP[kind]
        if isinstance(first, bytes):
            step = client.post(self.url("/step"), headers={**self.auth, "Content-Type": OCTET}, content=first)
        else:
            step = client.post(self.url("/step"), headers=self.auth, json=first)
        assert step.status_code == 200 and step.headers["etag"] == '"1"', step.text

    def url(self, suffix: str = "") -> str:
        return f"/v1/sessions/{self.id}{suffix}"

    def snapshot(self) -> tuple[dict, dict]:
        described = self.client.get(self.url(), headers=self.auth)
        exported = self.client.get(self.url("/state"), headers=self.auth)
        assert described.status_code == exported.status_code == 200, (described.text, exported.text)
        return described.json(), exported.json()

    def rejects(self, status: int, field: str | None, method: str, suffix: str = "", **kwargs: Any) -> dict:
        """Send one request, expect problem details with `status`, and prove nothing changed."""
        before = self.snapshot()
        body = assert_problem(self.client.request(method, self.url(suffix), **kwargs), status, field)
        assert self.snapshot() == before
        return body


@pytest.fixture
def session(http) -> Callable[[str], Session]:
    return lambda kind="held": Session(http, kind)


def keys_under(server: Server, redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    return sum(1 for _ in client.scan_iter(match=f"{server.env['DESCENT_REDIS_PREFIX']}:*", count=1000))


@pytest.fixture
def creation_rejected(http, server, redis_url) -> Callable[..., dict]:
    """POST /v1/sessions must fail with `status` and `field`, and leave no key behind."""

    def check(status: int, field: str | None, client: httpx.Client = http, at: Server = server, **kwargs: Any) -> dict:
        before = keys_under(at, redis_url)
        body = assert_problem(client.post("/v1/sessions", **kwargs), status, field)
        assert keys_under(at, redis_url) == before
        return body

    return check


# -- 401, 403, 404: who may touch which session ----------------------------------------

ENDPOINTS = {  # each would change or reveal the session if it were accepted
    "describe": ("GET", "", {}),
    "patch": ("PATCH", "", {"json": {"optimizer": {"lr": 0.5}}}),
    "delete": ("DELETE", "", {}),
    "step": ("POST", "/step", {"json": {"grads": [1.0, 1.0, 1.0]}}),
    "params": ("GET", "/params", {}),
    "export": ("GET", "/state", {}),
    "import": ("PUT", "/state", {"json": {"step": 0, "state": {}, "params": [0.0, 0.0, 0.0]}}),
}
BAD_CREDENTIALS = {
    "none": lambda s: {},
    "garbage": lambda s: {"Authorization": "Bearer garbage"},
    "forged secret": lambda s: {"Authorization": f"Bearer {s.id}.{'A' * 43}"},
    "not bearer": lambda s: {"Authorization": s.auth["Authorization"].replace("Bearer", "Basic")},
    "bare scheme": lambda s: {"Authorization": "Bearer"},
}


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_401_without_a_valid_token(session, endpoint, credentials) -> None:
    s = session()
    method, suffix, kwargs = ENDPOINTS[endpoint]
    s.rejects(401, None, method, suffix, headers=BAD_CREDENTIALS[credentials](s), **kwargs)


def test_401_says_how_to_authenticate(http, session) -> None:
    response = http.get(session().url())
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_403_with_the_token_of_another_session(session, endpoint) -> None:
    s, other = session(), session("client")
    method, suffix, kwargs = ENDPOINTS[endpoint]
    s.rejects(403, None, method, suffix, headers=other.auth, **kwargs)
    assert other.snapshot()  # and the other session is still there


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_404_for_an_unknown_session(http, session, endpoint) -> None:
    s = session()
    method, suffix, kwargs = ENDPOINTS[endpoint]
    before = s.snapshot()
    assert_problem(http.request(method, f"/v1/sessions/no-such-session{suffix}", headers=s.auth, **kwargs), 404)
    assert s.snapshot() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_404_for_a_deleted_session(http, session, endpoint) -> None:
    s, bystander = session(), session()
    before = bystander.snapshot()
    assert http.delete(s.url(), headers=s.auth).status_code == 204
    method, suffix, kwargs = ENDPOINTS[endpoint]
    assert_problem(http.request(method, s.url(suffix), headers=s.auth, **kwargs), 404)
    assert_problem(http.get(s.url(), headers=s.auth), 404)  # still gone: the request recreated nothing
    assert bystander.snapshot() == before


@pytest.fixture(scope="module")
def keyed(redis_server_factory) -> Server:
    return redis_server_factory(api_keys="k1,k2")


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Bearer k1k2", "Basic k1", "Bearer", "Bearer kü".encode("latin-1")])
def test_401_creating_a_session_without_an_api_key(keyed, creation_rejected, authorization) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with httpx.Client(base_url=keyed.url, timeout=30) as client:
        creation_rejected(401, None, client=client, at=keyed, json=KINDS["held"], headers=headers)
        # Credentials are checked before the body's content: an invalid one without a key is still a 401.
        creation_rejected(401, None, client=client, at=keyed, json={"optimizer": "nope"}, headers=headers)
        created = client.post("/v1/sessions", json=KINDS["held"], headers={"Authorization": "Bearer k2"})
        assert created.status_code == 201, created.text
        sid, token = created.json()["id"], created.json()["token"]
        # The API key creates sessions; it is not a token for them.
        assert_problem(client.get(f"/v1/sessions/{sid}", headers={"Authorization": "Bearer k1"}), 401)
        assert client.get(f"/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# -- 412: conditional steps ----------------------------------------------------------------


@pytest.mark.parametrize("if_match", ['"0"', '"2"', 'W/"7"', "5"])
def test_412_when_if_match_names_another_step(session, if_match) -> None:
    s = session()  # at step 1
    body = s.rejects(412, None, "POST", "/step", headers={**s.auth, "If-Match": if_match}, json={"grads": [1.0, 1.0, 1.0]})
    assert body["step"] == 1


# -- 413: bodies over the limit --------------------------------------------------------------

LIMIT = 4096


@pytest.fixture(scope="module")
def small(redis_server_factory) -> Server:
    """Small limits: 4 KiB bodies, JSON vectors of at most 4 values, sessions of at most 8."""
    return redis_server_factory(max_body_bytes=str(LIMIT), max_json_dim="4", max_dim="8")


@pytest.fixture
def small_http(small) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small.url, timeout=30) as client:
        yield client


def padded_step(size: int) -> bytes:
    """A valid JSON step body of exactly `size` bytes (whitespace is free in JSON)."""
    body = b'{"grads": [0.25, 0.5, -0.75]}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    """A body httpx must send chunked: a generator has no Content-Length."""
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_413_for_a_body_over_the_limit(small_http, transfer) -> None:
    s = Session(small_http, "held")
    oversize = padded_step(LIMIT + 1)
    content = oversize if transfer == "content-length" else chunks(oversize)
    headers = {**s.auth, **JSON_HEADERS}
    body = s.rejects(413, None, "POST", "/step", headers=headers, content=content)
    assert body["limit"] == LIMIT
    put = b'{"step": 0, "state": {}, "params": [1, 2, 3]' + b" " * LIMIT + b"}"
    s.rejects(413, None, "PUT", "/state", headers=headers, content=put if transfer == "content-length" else chunks(put))
    # Exactly at the limit is fine.
    ok = small_http.post(s.url("/step"), headers=headers, content=padded_step(LIMIT))
    assert ok.status_code == 200 and ok.json()["step"] == 2


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_413_creating_a_session_with_a_body_over_the_limit(small, small_http, creation_rejected, transfer) -> None:
    oversize = b'{"optimizer": {"name": "sgd"}, "dim": 2' + b" " * LIMIT + b"}"
    content = oversize if transfer == "content-length" else chunks(oversize)
    creation_rejected(413, None, client=small_http, at=small, content=content, headers=JSON_HEADERS)


# -- 415: media types ------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "suffix", "content_type", "content"), [
    ("POST", "/step", "text/plain", b'{"grads": [1, 1, 1]}'),
    ("POST", "/step", None, b'{"grads": [1, 1, 1]}'),
    ("POST", "/step", "application/x-www-form-urlencoded", b"grads=1"),
    ("PUT", "/state", "text/plain", b'{"step": 0, "state": {}, "params": [1, 2, 3]}'),
    ("PUT", "/state", OCTET, np.zeros(6).tobytes()),
    ("PATCH", "", "text/plain", b'{"optimizer": {"lr": 0.5}}'),
])
def test_415_for_a_body_of_another_media_type(session, method, suffix, content_type, content) -> None:
    s = session()
    headers = dict(s.auth) if content_type is None else {**s.auth, "Content-Type": content_type}
    s.rejects(415, None, method, suffix, headers=headers, content=content)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_415_creating_a_session_from_another_media_type(creation_rejected, content_type) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    creation_rejected(415, None, content=b'{"optimizer": {"name": "sgd"}, "dim": 2}', headers=headers)


# -- 422: malformed or out-of-range input ----------------------------------------------------

def f64(*values: float) -> bytes:
    return np.array(values, "<f8").tobytes()


def f32(*values: float) -> bytes:
    return np.array(values, "<f4").tobytes()


NAN, INF = float("nan"), float("inf")

# (session kind, extra headers, body as json= or raw bytes, field at fault)
STEP_422 = {
    "malformed JSON": ("held", JSON_HEADERS, b'{"grads": [1, 2', "body"),
    "NaN literal in JSON": ("held", JSON_HEADERS, b'{"grads": [NaN, 1, 2]}', "body"),
    "Infinity literal in JSON": ("held", JSON_HEADERS, b'{"grads": [Infinity, 1, 2]}', "body"),
    "number overflowing float64": ("held", JSON_HEADERS, b'{"grads": [1e400, 1, 2]}', "body"),
    "invalid UTF-8": ("held", JSON_HEADERS, b'{"grads": [1, 2, 3], "x": "\xff"}', "body"),
    "JSON not an object": ("held", {}, [1, 2, 3], "grads"),
    "no grads": ("held", {}, {"params": [1, 2, 3]}, "grads"),
    "unknown member": ("held", {}, {"grads": [1, 2, 3], "lr": 0.1}, "lr"),
    "grads too short": ("held", {}, {"grads": [1, 2]}, "grads"),
    "grads too long": ("held", {}, {"grads": [1, 2, 3, 4]}, "grads"),
    "grads a string": ("held", {}, {"grads": "1, 2, 3"}, "grads"),
    "grads of strings": ("held", {}, {"grads": ["1", "2", "3"]}, "grads"),
    "grads with null": ("held", {}, {"grads": [None, 2, 3]}, "grads"),
    "grads of booleans": ("held", {}, {"grads": [True, False, True]}, "grads"),
    "grads nested": ("held", {}, {"grads": [[1], [2], [3]]}, "grads"),
    "grads an object": ("held", {}, {"grads": {"0": 1}}, "grads"),
    "float32 overflow rejected": ("client", {}, {"grads": [1e39, 1, 1], "params": [1, 2, 3]}, "grads"),
    "params too short": ("client", {}, {"grads": [1, 2, 3], "params": [1, 2]}, "params"),
    "params of strings": ("client", {}, {"grads": [1, 2, 3], "params": ["a", "b", "c"]}, "params"),
    "params missing, client-held": ("client", {}, {"grads": [1, 2, 3]}, "params"),
    "binary params missing, client-held": ("client", {"Content-Type": OCTET}, f32(1, 2, 3), "params"),
    "binary empty": ("held", {"Content-Type": OCTET}, b"", "body"),
    "binary wrong length": ("held", {"Content-Type": OCTET}, f64(1, 2), "body"),
    "binary not a multiple of 8": ("held", {"Content-Type": OCTET}, f64(1, 2, 3) + b"\0\0\0\0", "body"),
    "binary float32 in a float64 session": ("held", {"Content-Type": OCTET}, f32(1, 2, 3), "body"),
    "binary NaN grads": ("held", {"Content-Type": OCTET}, f64(NAN, 1, 2), "grads"),
    "binary Inf grads": ("held", {"Content-Type": OCTET}, f64(1, -INF, 2), "grads"),
    "binary NaN params": ("client", {"Content-Type": OCTET}, f32(1, NAN, 3) + f32(1, 2, 3), "params"),
    "binary Inf params, server-held": ("held", {"Content-Type": OCTET}, f64(INF, 1, 2) + f64(1, 2, 3), "params"),
    "NaN params even when skipping": ("skip", {"Content-Type": OCTET}, f32(NAN, 1, 2) + f32(1, 2, 3), "params"),
    "NaN params and grads when skipping": ("skip", {"Content-Type": OCTET}, f32(NAN, 1, 2) + f32(NAN, 2, 3), "params"),
    "If-Match not a number": ("held", {"If-Match": '"one"'}, {"grads": [1, 2, 3]}, "If-Match"),
    "If-Match negative": ("held", {"If-Match": '"-1"'}, {"grads": [1, 2, 3]}, "If-Match"),
    "If-Match empty": ("held", {"If-Match": ""}, {"grads": [1, 2, 3]}, "If-Match"),
}


@pytest.mark.parametrize("case", STEP_422)
def test_422_step(session, case) -> None:
    kind, headers, body, field = STEP_422[case]
    s = session(kind)
    payload = {"content": body} if isinstance(body, bytes) else {"json": body}
    s.rejects(422, field, "POST", "/step", headers={**s.auth, **headers}, **payload)


@pytest.mark.parametrize(("headers", "body"), [
    ({}, {"grads": [1e39, 1, 1]}),  # overflows float32: Inf
    ({"Content-Type": OCTET}, f32(NAN, 1, 1)),
    ({"Content-Type": OCTET}, f32(1, 1, INF)),
    ({"Content-Type": OCTET}, f32(4, 5, 6) + f32(1, NAN, 1)),  # sent params are not taken either
])
def test_nonfinite_skip_answers_200_and_changes_nothing(session, headers, body) -> None:
    s = session("skip")
    before = s.snapshot()
    payload = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = s.client.post(s.url("/step"), headers={**s.auth, **headers}, **payload)
    assert response.status_code == 200, response.text
    assert response.json()["skipped"] is True and response.json()["step"] == 1
    assert response.json()["params"] == before[1]["params"]
    assert response.headers["etag"] == '"1"' and response.headers["descent-skipped"] == "nonfinite"
    assert s.snapshot() == before
    # A finite step afterwards is applied as usual.
    assert s.client.post(s.url("/step"), headers=s.auth, json={"grads": [1, 1, 1]}).json()["step"] == 2


def test_422_json_vectors_over_max_json_dim(small_http) -> None:
    s = Session(small_http, "wide")  # dim 6: over max_json_dim (4), within max_dim (8); stepped in binary
    s.rejects(422, "grads", "POST", "/step", headers=s.auth, json={"grads": [1.0] * 6, "params": [1.0] * 6})


@pytest.mark.parametrize(("body", "field"), [
    ({"optimizer": {"name": "sgd"}, "params": [1.0] * 5}, "params"),  # 5 > max_json_dim
    ({"optimizer": {"name": "sgd"}, "dim": 9}, "dim"),  # 9 > max_dim
])
def test_422_creation_over_the_size_limits(small, small_http, creation_rejected, body, field) -> None:
    creation_rejected(422, field, client=small_http, at=small, json=body)


CREATE_422 = {
    "malformed JSON": (b'{"optimizer": {"name": "sgd"}, "dim": ', "body"),
    "invalid UTF-8": (b'{"optimizer": {"name": "sgd"}, "dim": 2, "x": "\xff"}', "body"),
    "not an object": ([1, 2], None),
    "unknown member": ({"optimizer": {"name": "sgd"}, "dim": 2, "lr": 0.1}, "lr"),
    "optimizer a string": ({"optimizer": "adam", "dim": 2}, "optimizer"),
    "no optimizer name": ({"optimizer": {"lr": 0.1}, "dim": 2}, "optimizer.name"),
    "unknown optimizer": ({"optimizer": {"name": "adamz"}, "dim": 2}, "optimizer.name"),
    "optimizer name not a string": ({"optimizer": {"name": 3}, "dim": 2}, "optimizer.name"),
    "unknown hyperparameter": ({"optimizer": {"name": "adam", "momentum": 0.9}, "dim": 2}, "optimizer.momentum"),
    "negative lr": ({"optimizer": {"name": "adam", "lr": -0.1}, "dim": 2}, "optimizer.lr"),
    "negative eps": ({"optimizer": {"name": "adam", "eps": -1e-8}, "dim": 2}, "optimizer.eps"),
    "beta1 of 1": ({"optimizer": {"name": "adam", "betas": [1.0, 0.999]}, "dim": 2}, "optimizer.betas"),
    "beta2 negative": ({"optimizer": {"name": "adam", "betas": [0.9, -0.1]}, "dim": 2}, "optimizer.betas"),
    "one beta": ({"optimizer": {"name": "adam", "betas": [0.9]}, "dim": 2}, "optimizer.betas"),
    "negative momentum": ({"optimizer": {"name": "sgd", "momentum": -0.5}, "dim": 2}, "optimizer.momentum"),
    "nesterov without momentum": ({"optimizer": {"name": "sgd", "nesterov": True}, "dim": 2}, "optimizer.nesterov"),
    "lr a string": ({"optimizer": {"name": "adam", "lr": "0.1"}, "dim": 2}, "optimizer.lr"),
    "lr a boolean": ({"optimizer": {"name": "adam", "lr": True}, "dim": 2}, "optimizer.lr"),
    "amsgrad a string": ({"optimizer": {"name": "adam", "amsgrad": "yes"}, "dim": 2}, "optimizer.amsgrad"),
    "dim a string": ({"optimizer": {"name": "sgd"}, "dim": "2"}, "dim"),
    "dim fractional": ({"optimizer": {"name": "sgd"}, "dim": 2.5}, "dim"),
    "dim zero": ({"optimizer": {"name": "sgd"}, "dim": 0}, "dim"),
    "dim over max_dim": ({"optimizer": {"name": "sgd"}, "dim": 10**12}, "dim"),
    "neither dim nor params": ({"optimizer": {"name": "sgd"}}, "dim"),
    "params not matching dim": ({"optimizer": {"name": "sgd"}, "dim": 2, "params": [1.0, 2.0, 3.0]}, "params"),
    "params empty": ({"optimizer": {"name": "sgd"}, "params": []}, "dim"),
    "params of strings": ({"optimizer": {"name": "sgd"}, "params": ["1", "2"]}, "params.0"),
    "params overflowing float32": ({"optimizer": {"name": "sgd"}, "params": [1e39, 1.0]}, "params"),
    "params NaN literal": (b'{"optimizer": {"name": "sgd"}, "params": [NaN, 1.0]}', "params"),
    "params Infinity literal": (b'{"optimizer": {"name": "sgd"}, "params": [1.0, -Infinity]}', "params"),
    "dtype float16": ({"optimizer": {"name": "sgd"}, "dim": 2, "dtype": "float16"}, "dtype"),
    "nonfinite unknown": ({"optimizer": {"name": "sgd"}, "dim": 2, "nonfinite": "maybe"}, "nonfinite"),
    "ttl_s over the maximum": ({"optimizer": {"name": "sgd"}, "dim": 2, "ttl_s": 10**12}, "ttl_s"),
    "ttl_s zero": ({"optimizer": {"name": "sgd"}, "dim": 2, "ttl_s": 0}, "ttl_s"),
}


@pytest.mark.parametrize("case", CREATE_422)
def test_422_create(creation_rejected, case) -> None:
    body, field = CREATE_422[case]
    payload = {"content": body, "headers": JSON_HEADERS} if isinstance(body, bytes) else {"json": body}
    creation_rejected(422, field, **payload)


PATCH_422 = {
    "optimizer name changed": ("held", {"optimizer": {"name": "sgd"}}, "optimizer.name"),
    "unknown hyperparameter": ("held", {"optimizer": {"momentum": 0.9}}, "optimizer.momentum"),
    "negative lr": ("held", {"optimizer": {"lr": -1.0}}, "optimizer.lr"),
    "betas out of range": ("held", {"optimizer": {"betas": [0.9, 1.5]}}, "optimizer.betas"),
    "lr a string": ("held", {"optimizer": {"lr": "fast"}}, "optimizer.lr"),
    "nesterov without momentum": ("client", {"optimizer": {"momentum": 0.0, "nesterov": True}}, "optimizer.nesterov"),
    "no optimizer member": ("held", {}, "optimizer"),
    "unknown member": ("held", {"optimizer": {"lr": 0.5}, "step": 3}, "step"),
    "malformed JSON": ("held", b'{"optimizer": {"lr": }}', "body"),
}


@pytest.mark.parametrize("case", PATCH_422)
def test_422_patch(session, case) -> None:
    kind, body, field = PATCH_422[case]
    s = session(kind)
    payload = {"content": body} if isinstance(body, bytes) else {"json": body}
    s.rejects(422, field, "PATCH", "", headers={**s.auth, **JSON_HEADERS}, **payload)


def state_of(s: Session, **changes: Any) -> dict[str, Any]:
    """The session's own export, with `changes` applied: valid unless a change breaks it."""
    doc = s.snapshot()[1]
    for key, value in changes.items():
        if key.startswith("state."):
            doc["state"][key.removeprefix("state.")] = value
        else:
            doc[key] = value
    return doc


PUT_422 = {  # (kind, build the body from the session, field)
    "unknown state entry": ("held", lambda s: state_of(s, **{"state.momentum_buffer": [0, 0, 0]}), "state.momentum_buffer"),
    "vector too short": ("held", lambda s: state_of(s, **{"state.exp_avg": [0.1, 0.2]}), "state.exp_avg"),
    "vector a number": ("held", lambda s: state_of(s, **{"state.exp_avg": 0.1}), "state.exp_avg"),
    "vector of strings": ("held", lambda s: state_of(s, **{"state.exp_avg": ["a", "b", "c"]}), "state.exp_avg"),
    "torch step disagrees": ("held", lambda s: state_of(s, **{"state.step": 5}), "state.step"),
    "step a string": ("held", lambda s: state_of(s, step="1"), "step"),
    "step fractional": ("held", lambda s: state_of(s, step=1.5), "step"),
    "step a boolean": ("held", lambda s: state_of(s, step=True), "step"),
    "step negative": ("held", lambda s: state_of(s, step=-1), "step"),
    "step beyond 2**53": ("held", lambda s: state_of(s, step=2**64 - 1), "step"),
    "step missing": ("held", lambda s: {k: v for k, v in state_of(s).items() if k != "step"}, "step"),
    "state missing": ("held", lambda s: {k: v for k, v in state_of(s).items() if k != "state"}, "state"),
    "state vectors missing": ("held", lambda s: state_of(s, state={}), "state"),
    "another optimizer's state": ("held", lambda s: state_of(s, optimizer={"name": "adamw"}), "optimizer.name"),
    "optimizer not an object": ("held", lambda s: state_of(s, optimizer="adam"), "optimizer"),
    "unknown member": ("held", lambda s: state_of(s, version=3), "version"),
    "params missing, server-held": ("held", lambda s: {k: v for k, v in state_of(s).items() if k != "params"}, "params"),
    "params wrong length": ("held", lambda s: state_of(s, params=[1.0, 2.0]), "params"),
    "params of booleans": ("held", lambda s: state_of(s, params=[True, False, True]), "params"),
    "params given, client-held": ("client", lambda s: state_of(s, params=[1.0, 2.0, 3.0]), "params"),
    "not an object": ("held", lambda s: [1, 2, 3], "body"),
    "malformed JSON": ("held", lambda s: b'{"step": 1, "state": {', "body"),
    "NaN literal": ("held", lambda s: b'{"step": 1, "state": {"exp_avg": [NaN, 0, 0]}}', "body"),
}


@pytest.mark.parametrize("case", PUT_422)
def test_422_put_state(session, case) -> None:
    kind, build, field = PUT_422[case]
    s = session(kind)
    body = build(s)
    payload = {"content": body} if isinstance(body, bytes) else {"json": body}
    s.rejects(422, field, "PUT", "/state", headers={**s.auth, **JSON_HEADERS}, **payload)


def test_put_of_the_own_export_is_accepted(session) -> None:
    """The PUT cases above are each one change away from this valid document."""
    for kind in ("held", "client"):
        s = session(kind)
        doc = state_of(s)
        response = s.client.put(s.url("/state"), headers=s.auth, json=doc)
        assert response.status_code == 200, response.text
        assert s.snapshot()[1] == doc


def test_422_params_of_a_client_held_session(session) -> None:
    s = session("client")
    s.rejects(422, "params", "GET", "/params", headers=s.auth)
