"""Test-wide fixtures: a real Redis for every test that needs one.

The Redis at DESCENT_TEST_REDIS_URL (default redis://127.0.0.1:6379/15) is used when it
answers; otherwise a private redis-server is started on a free port for this run and
stopped afterwards. With neither, the run stops with a message that says so.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis

DEFAULT_URL = "redis://127.0.0.1:6379/15"


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("DESCENT_TEST_REDIS_URL", DEFAULT_URL)
    if _answers(url):
        yield url
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.exit(
            f"no Redis answers at {url} and no redis-server is installed to start one: "
            "set DESCENT_TEST_REDIS_URL or install redis-server",
            returncode=3,
        )
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="descent-redis-")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/15"
    for _ in range(100):
        if _answers(url):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.exit(f"started redis-server on port {port} but it never answered", returncode=3)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


# -- real server processes -------------------------------------------------------------

import sys
import uuid
from dataclasses import dataclass, field

import httpx


@dataclass
class Server:
    """A `python -m service` process listening on loopback."""

    url: str
    proc: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_server(settings: dict[str, str], timeout_s: float = 60.0) -> Server:
    """Start the service with DESCENT_* `settings` on a free port; wait until /healthz answers."""
    port = _free_port()
    env = {**os.environ, "DESCENT_HOST": "127.0.0.1", "DESCENT_PORT": str(port), "DESCENT_LOG_LEVEL": "warning"}
    env.update(settings)
    proc = subprocess.Popen([sys.executable, "-m", "service"], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(url, proc, env)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server at {url} did not answer /healthz within {timeout_s} s")


def _drop_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def redis_server_factory(redis_url: str) -> Iterator:
    """Start servers on the test Redis, each under its own key prefix; all stopped and cleaned at the end."""
    started: list[tuple[Server, str]] = []

    def start(workers: int = 1, prefix: str | None = None, **settings: str) -> Server:
        """`prefix`: reuse another server's keys (e.g. a restart after a crash); default a fresh one."""
        prefix = prefix or f"descent-test-{uuid.uuid4().hex[:8]}"
        env = {"DESCENT_STORE_URL": redis_url, "DESCENT_REDIS_PREFIX": prefix, "DESCENT_WORKERS": str(workers)}
        env.update({f"DESCENT_{k.upper()}": v for k, v in settings.items()})
        server = start_server(env)
        started.append((server, prefix))
        return server

    yield start
    for server, prefix in started:
        server.stop()
        _drop_prefix(redis_url, prefix)


@pytest.fixture(scope="session")
def server(redis_server_factory) -> Server:
    """One worker on the test Redis, shared by the HTTP tests."""
    return redis_server_factory()


# httpx writes a request's headers and body in two sends; without TCP_NODELAY, Nagle's
# algorithm holds the body back until the server's delayed ACK (~40 ms) on loopback.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def http_client(base_url: str, timeout: float = 60) -> httpx.Client:
    """An httpx client for tests: keep-alive, TCP_NODELAY."""
    return httpx.Client(base_url=base_url, timeout=timeout, transport=httpx.HTTPTransport(socket_options=NODELAY))


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with http_client(server.url) as client:
        yield client


def create_session(client: httpx.Client, **body: object) -> tuple[str, dict[str, str], dict]:
    """POST /v1/sessions; returns (id, auth headers, the 201 body)."""
    response = client.post("/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    return created["id"], {"Authorization": f"Bearer {created['token']}"}, created
