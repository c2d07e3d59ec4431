"""A Descent server of the examples' own, for when no --url is given.

The examples import it from their own folder (`python examples/<name>.py` puts that
folder first on sys.path).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def own_server() -> Iterator[str]:
    """`python -m service` on a free loopback port with the memory store, stopped at the end."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DESCENT_HOST": "127.0.0.1", "DESCENT_PORT": str(port), "DESCENT_STORE_URL": "memory://",
           "DESCENT_WORKERS": "1", "DESCENT_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "service"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                sys.exit(f"the server exited with {proc.returncode} before answering")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"the server at {url} did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
