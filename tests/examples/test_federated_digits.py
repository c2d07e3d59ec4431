"""examples/federated_digits.py end to end: a real federated simulation over HTTP against a
server on Redis, judged against centralised training of the same model (scikit-learn)."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "federated_digits.py"
FINAL = re.compile(r"^final test accuracy (\w+) (\w+): ([0-9.]+)$", re.MULTILINE)
RUNS = {(s, m) for s in ("fedavg", "fedadam", "fedyogi") for m in ("sync", "async")}


def centralised_accuracy() -> float:
    """Softmax regression on the pooled training data: the ceiling federated training approaches."""
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=0.25,
                                                        stratify=digits.target, random_state=0)
    return float(LogisticRegression(max_iter=2000).fit(x_train, y_train).score(x_test, y_test))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_every_strategy_and_mode_learns_non_iid_digits(server, tmp_path: Path) -> None:
    plot = tmp_path / "curves.png"
    run = subprocess.run([sys.executable, str(SCRIPT), "--url", server.url, "--plot", str(plot)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    final = {(s, m): float(acc) for s, m, acc in FINAL.findall(run.stdout)}
    assert set(final) == RUNS, run.stdout
    ceiling = centralised_accuracy()
    assert ceiling > 0.93
    assert final["fedavg", "sync"] >= max(0.85, ceiling - 0.05), (final, ceiling)
    assert all(acc >= 0.7 for acc in final.values()), final
    assert "round/s" in run.stderr or "s/round" in run.stderr  # the tqdm progress bar
    data = plot.read_bytes()
    width, height = png_size(data)
    assert width >= 600 and height >= 400 and len(data) > 20_000, (width, height, len(data))
