"""The JavaScript client (clients/js): node's own tests and examples/train.mjs, run by node
against live servers on the test Redis, so they are part of `make test`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "js-test-key"


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node is not installed: the JavaScript client's tests need Node.js 20 or newer on PATH")
    return path


def run_node(args: list[str], env: dict[str, str], timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([node(), *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=timeout_s)
    assert result.returncode == 0, (
        f"node {' '.join(args)} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def auth_server(redis_server_factory):
    """A second server that requires an API key to create sessions."""
    return redis_server_factory(api_keys=API_KEY)


def test_node_version() -> None:
    out = subprocess.run([node(), "--version"], capture_output=True, text=True, check=True).stdout
    major = int(out.strip().lstrip("v").split(".")[0])
    assert major >= 20, f"the JS client needs Node.js 20 or newer, found {out.strip()}"


def test_js_client(server, auth_server) -> None:
    env = {"DESCENT_URL": server.url, "DESCENT_AUTH_URL": auth_server.url, "DESCENT_API_KEY": API_KEY}
    result = run_node(["--test", "clients/js/test/"], env)
    assert "# fail 0" in result.stdout, result.stdout  # node's own summary agrees
    assert "# pass 0\n" not in result.stdout, "node ran no tests"


def test_train_example(server) -> None:
    result = run_node(["examples/train.mjs"], {"DESCENT_URL": server.url})
    lines = result.stdout.splitlines()
    assert sum(line.startswith("step ") for line in lines) == 10, result.stdout  # the loss every 10 of 100 steps
    accuracy = float(lines[-1].removeprefix("final accuracy: "))
    assert accuracy >= 0.9, result.stdout
