"""The README's curl walkthrough, run verbatim against a live server."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    block = re.search(r"<!-- walkthrough -->\s*```bash\n(.*?)```\s*<!-- /walkthrough -->", text, re.S)
    assert block, "README lost its walkthrough block"
    return block.group(1)


def test_curl_walkthrough_runs_verbatim(server) -> None:
    script = walkthrough()
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env={**os.environ, "DESCENT_URL": server.url},
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    # The comments in the block show the expected output; the real output must match them.
    expected = [line[2:] for line in script.splitlines() if line.startswith("# {") or line.startswith("# 2")]
    assert run.stdout.split() == expected
