"""examples/train_mlp.py end to end: an MLP trained through RemoteOptimizer on a live server
follows the loss curve of the same run with the local torch.optim.AdamW (the script compares
the two and exits non-zero if they differ) and learns the digits."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "train_mlp.py"
MATCH = re.compile(r"^curves match: max relative difference ([0-9.e+-]+) ", re.MULTILINE)
ACCURACY = re.compile(r"^final test accuracy: remote ([0-9.]+), local ([0-9.]+)$", re.MULTILINE)


def run(url: str, plot: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--url", url, "--plot", str(plot), *args],
                          check=False, capture_output=True, text=True, timeout=300)


def test_remote_adamw_follows_torch_and_learns(server, tmp_path: Path) -> None:
    plot = tmp_path / "loss.png"
    result = run(server.url, plot)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    match = MATCH.search(result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) <= 1e-5  # float32: within rounding of torch's sqrt
    remote, local = map(float, ACCURACY.search(result.stdout).groups())
    assert remote >= 0.9 and remote == local, result.stdout
    assert "step/s" in result.stderr or "s/step" in result.stderr  # the tqdm progress bar
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_float64_runs_agree_to_1e_9(server, tmp_path: Path) -> None:
    result = run(server.url, tmp_path / "loss.png", "--dtype", "float64", "--epochs", "3")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    match = MATCH.search(result.stdout)
    assert match and float(match.group(1)) <= 1e-9, result.stdout
