"""The README's "Use it from" snippets, each run as written against a live server.

A snippet is the fenced block after an HTML comment `<!-- snippet: <kind> -->`. It reads
the server's address from DESCENT_URL; its `# -> ` (JavaScript: `// -> `) comments are the
lines it must print, in order.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SNIPPET = re.compile(r"<!-- snippet: (\w+) -->\n```\w+\n(.*?)```", re.DOTALL)
EXPECTED = re.compile(r"^\s*(?:#|//) -> (.*)$", re.MULTILINE)
KINDS = ("python", "torch", "js", "curl")


def snippets() -> dict[str, str]:
    found = SNIPPET.findall(README.read_text())
    kinds = [kind for kind, _ in found]
    assert sorted(kinds) == sorted(KINDS), f"README snippets: expected one each of {KINDS}, found {kinds}"
    return dict(found)


def command(kind: str) -> list[str]:
    """How each kind runs: the venv's Python, node reading an ES module from stdin, bash."""
    if kind in ("python", "torch"):
        return [sys.executable, "-"]
    if kind == "js":
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed: the README's JavaScript snippet needs Node.js 20 or newer")
        return [node, "--input-type=module"]
    return ["bash", "-euo", "pipefail"]


@pytest.mark.parametrize("kind", KINDS)
def test_readme_snippet_runs_and_prints_what_it_says(kind: str, server) -> None:
    code = snippets()[kind]
    expected = EXPECTED.findall(code)
    assert expected, f"the {kind} snippet shows no `-> ` output to check"
    # cwd: the repository root, where the JS snippet's "./clients/js/src/index.js" resolves.
    run = subprocess.run(command(kind), input=code, cwd=ROOT, env={**os.environ, "DESCENT_URL": server.url},
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{kind} snippet failed:\n{run.stdout}\n{run.stderr}"
    assert run.stdout.splitlines() == expected, run.stdout
