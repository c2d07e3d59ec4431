"""Lion and Yogi against optax 0.2.8, through the golden files in tests/optim/golden/.

Each file holds a problem (A, b, x0), hyperparameters under our names, and optax's
parameters after every step plus its final state (tests/optim/golden/make_golden.py
writes them; this test imports neither optax nor jax). Our engine runs the same problem,
computing the gradient A x - b with numpy from its own parameters, as optax's run did
from its own, so any difference comes from the optimizer arithmetic alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service import optim
from service.optim import state as state_codec

GOLDEN = Path(__file__).parent / "golden"
FILES = sorted(GOLDEN.glob("*.npz"))
TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    """Normwise: max abs difference over max abs reference."""
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    return float(np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64)))) / scale


def test_golden_files_cover_both_optimizers_dtypes_and_weight_decay() -> None:
    seen = set()
    for path in FILES:
        with np.load(path) as f:
            hp = json.loads(str(f["hyperparameters"]))
            seen.add((path.name.split("-")[0], str(f["x0"].dtype), hp["weight_decay"] != 0, hp["maximize"]))
    for name in ("lion", "yogi"):
        for dtype in ("float32", "float64"):
            for flag in (False, True):
                assert any(s[:3] == (name, dtype, flag) for s in seen), (name, dtype, "weight decay", flag)
                assert any(s[:2] == (name, dtype) and s[3] == flag for s in seen), (name, dtype, "maximize", flag)


def test_defaults_are_optax_defaults() -> None:
    optax_defaults = json.loads((GOLDEN / "defaults.json").read_text())
    assert optax_defaults["optax"] == "0.2.8"
    lion, yogi = optim.get("lion").defaults(), optim.get("yogi").defaults()
    theirs = optax_defaults["lion"]
    assert lion["betas"] == (theirs["b1"], theirs["b2"])
    assert lion["weight_decay"] == theirs["weight_decay"]
    theirs = optax_defaults["scale_by_yogi"]
    assert optax_defaults["yogi"].items() <= theirs.items()  # the alias passes its own through
    assert yogi["betas"] == (theirs["b1"], theirs["b2"])
    assert (yogi["eps"], yogi["eps_root"]) == (theirs["eps"], theirs["eps_root"])
    assert yogi["initial_accumulator_value"] == theirs["initial_accumulator_value"]
    assert yogi["weight_decay"] == 0.0  # optax.yogi has none


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_trajectory_matches_optax(path: Path) -> None:
    with np.load(path) as f:
        golden = {k: f[k] for k in f.files}
    name = path.name.split("-")[0]
    opt = optim.get(name)
    hp = opt.resolve(json.loads(str(golden["hyperparameters"])))
    A, b, x0 = golden["A"], golden["b"], golden["x0"]
    dtype = x0.dtype
    tol = TOL[dtype]
    # optax minimised f; with maximize we are given the gradient of -f, same steps.
    sign = -1.0 if hp["maximize"] else 1.0

    params = x0.copy()
    state = opt.init(params.size, dtype, hp)
    worst = 0.0
    for k, expected in enumerate(golden["params"]):
        grad = (sign * (A @ params - b)).astype(dtype)
        optim.apply(opt, hp, params, grad, state)
        assert params.dtype == dtype
        worst = max(worst, rel_err(params, expected))
        assert worst < tol, f"step {k + 1}: relative error {worst:.3g} ({golden['optax']})"

    ours = state_codec.to_json(state)
    theirs = {k.removeprefix("state_"): v for k, v in golden.items() if k.startswith("state_")}
    assert set(ours) == set(theirs) == set(opt.vectors)
    for key, value in theirs.items():
        assert rel_err(ours[key], value) < tol, key
    # optax under jax.jit rounds a little differently (fmas); we stay within tolerance of it.
    assert rel_err(params, golden["jit_params"]) < tol
    for key in theirs:
        assert rel_err(ours[key], golden[f"jit_state_{key}"]) < tol, key
