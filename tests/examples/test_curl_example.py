"""examples/curl.sh end to end against a live server: every stage of the flow prints what
the contract says it should (Adam with lr 0.1 moves each parameter by 0.1 against the sign
of its gradient on the first steps)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "curl.sh"


def test_curl_example_runs_the_whole_flow(server) -> None:
    run = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "DESCENT_URL": server.url},
                         check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in run.stdout.splitlines()}
    assert '"betas":[0.9,0.999]' in out["optimizer"]  # torch's defaults filled in
    assert out["json step"] == '{"params":[0.90000004,-1.9,2.9],"step":1,"skipped":false}'
    assert out["etag"] == '"1"'
    assert out["binary step"] == "12 bytes = 0.8 -1.8 2.8"
    assert out["params"] == '{"params":[0.8,-1.8,2.8000002],"step":2}'
    assert out["state"] == 'step 2, vectors ["exp_avg","exp_avg_sq"]'
    assert out["patched lr"] == "0.01"
    assert out["if-match 1"].startswith("412 ")
    assert out["if-match 2"] == '{"params":[0.79,-1.79,2.7900002],"step":3,"skipped":false}'  # lr 0.01 now
    assert out["delete"] == "204"
