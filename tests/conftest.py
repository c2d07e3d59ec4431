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
