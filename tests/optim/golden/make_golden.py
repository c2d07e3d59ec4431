"""Write the optax 0.2.8 golden files that tests/optim/test_optax_golden.py reads.

Run it with a private venv outside the repo (the project itself never imports jax):

    python3 -m venv /tmp/optax-venv
    /tmp/optax-venv/bin/pip install optax==0.2.8 jax jaxlib numpy
    /tmp/optax-venv/bin/python tests/optim/golden/make_golden.py

For every optimizer, draw and dtype it runs optax for STEPS steps on a random quadratic
(tests/optim/problems.py; the gradient A x - b is computed by numpy from optax's own
parameters every step) and writes `<optimizer>-<dtype>-<draw>.npz` holding:

    hyperparameters   JSON, our torch-style names (what the test passes to the engine)
    optax             the optax expression that was run, for people
    A, b, x0          the problem and the start, in the case's dtype
    params            (STEPS, dim) parameters after every step
    state_<name>      optax's final state under our names (mu -> exp_avg, nu -> exp_avg_sq)
    jit_params, jit_state_<name>
                      the final parameters and state of the same run under jax.jit

The trajectory is optax run op by op (eager): the formula as optax writes it, rounded
once per operation. Under jit, XLA contracts some products into fmas, which moves the
result by about an ulp per step; the jitted finals are kept so that the test checks we
are within tolerance of that too. float32 runs with jax's default (x64 off), so that
optax's Python-float scalars become float32 as in ordinary use; float64 runs with x64
on. Each dtype runs in its own process because the x64 switch is global.

`defaults.json` records the defaults of optax.lion, optax.yogi and optax.scale_by_yogi,
read from their signatures.

`maximize` is not optax's: a draw with maximize=True is run by optax on the gradient of
f, and by the test on the gradient of -f with maximize, which must give the same steps.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repo root, for tests.optim.problems

from tests.optim.problems import Quadratic  # noqa: E402

STEPS = 200
DIM = 16
DRAWS = 4
STATE_NAMES = {"mu": "exp_avg", "nu": "exp_avg_sq"}


def _lr(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_lion(rng: np.random.Generator, k: int) -> dict[str, Any]:
    """Draw 0 is optax's defaults (wd 1e-3); 1 has no weight decay; 3 has beta1 = 0."""
    beta1 = [0.9, float(rng.uniform(0.5, 0.99)), float(rng.uniform(0, 0.99)), 0.0][k]
    beta2 = [0.99, float(rng.uniform(0.5, 0.9999)), 0.999, float(rng.uniform(0.9, 0.9999))][k]
    wd = [1e-3, 0.0, float(rng.uniform(0, 0.2)), 0.05][k]
    return {"lr": _lr(rng, 1e-3, 3e-2), "betas": [beta1, beta2], "weight_decay": wd, "maximize": k in (1, 2)}


def draw_yogi(rng: np.random.Generator, k: int) -> dict[str, Any]:
    """Draw 0 is optax.yogi itself (defaults but lr); others add weight decay and yogi's knobs."""
    hp: dict[str, Any] = {"lr": _lr(rng, 1e-3, 1e-1)}
    if k == 0:
        return {**hp, "betas": [0.9, 0.999], "eps": 1e-3, "weight_decay": 0.0, "eps_root": 0.0,
                "initial_accumulator_value": 1e-6, "maximize": False}
    return {
        **hp,
        "betas": [[0.9, float(rng.uniform(0, 0.99)), 0.0][k - 1], float(rng.uniform(0.9, 0.9999))],
        "eps": [1e-8, 1e-3, float(rng.uniform(1e-6, 1e-2))][k - 1],
        "weight_decay": [float(rng.uniform(0.001, 0.1)), 0.0, 0.02][k - 1],
        "eps_root": [0.0, 1e-6, 0.0][k - 1],
        "initial_accumulator_value": [1e-6, float(rng.uniform(0.01, 2.0)), 0.5][k - 1],
        "maximize": k in (1, 3),
    }


def optax_lion(hp: dict[str, Any]) -> tuple[Any, str]:
    import optax

    b1, b2 = hp["betas"]
    expr = f"optax.lion({hp['lr']!r}, b1={b1!r}, b2={b2!r}, weight_decay={hp['weight_decay']!r})"
    return optax.lion(hp["lr"], b1=b1, b2=b2, weight_decay=hp["weight_decay"]), expr


def optax_yogi(hp: dict[str, Any]) -> tuple[Any, str]:
    import optax

    b1, b2 = hp["betas"]
    plain = hp["weight_decay"] == 0.0 and hp["eps_root"] == 0.0 and hp["initial_accumulator_value"] == 1e-6
    if plain:
        expr = f"optax.yogi({hp['lr']!r}, b1={b1!r}, b2={b2!r}, eps={hp['eps']!r})"
        return optax.yogi(hp["lr"], b1=b1, b2=b2, eps=hp["eps"]), expr
    yogi = (f"b1={b1!r}, b2={b2!r}, eps={hp['eps']!r}, eps_root={hp['eps_root']!r}, "
            f"initial_accumulator_value={hp['initial_accumulator_value']!r}")
    expr = (f"optax.chain(optax.scale_by_yogi({yogi}), optax.add_decayed_weights({hp['weight_decay']!r}), "
            f"optax.scale_by_learning_rate({hp['lr']!r}))")
    return optax.chain(
        optax.scale_by_yogi(b1=b1, b2=b2, eps=hp["eps"], eps_root=hp["eps_root"],
                            initial_accumulator_value=hp["initial_accumulator_value"]),
        optax.add_decayed_weights(hp["weight_decay"]),
        optax.scale_by_learning_rate(hp["lr"]),
    ), expr


CASES = {"lion": (draw_lion, optax_lion), "yogi": (draw_yogi, optax_yogi)}


def final_state(opt_state: Any) -> dict[str, np.ndarray]:
    inner = opt_state[0]  # scale_by_lion / scale_by_yogi's state is the chain's first
    return {ours: np.asarray(getattr(inner, theirs)) for theirs, ours in STATE_NAMES.items() if hasattr(inner, theirs)}


def run(tx: Any, problem: Quadratic, jit: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    import jax
    import jax.numpy as jnp
    import optax

    def update(grads, opt_state, params):  # type: ignore[no-untyped-def]
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    update = jax.jit(update) if jit else update
    params = jnp.asarray(problem.x0)
    opt_state = tx.init(params)
    trajectory = []
    for _ in range(STEPS):
        params, opt_state = update(jnp.asarray(problem.grad(np.asarray(params))), opt_state, params)
        trajectory.append(np.asarray(params))
    return np.stack(trajectory), final_state(opt_state)


def write_dtype(dtype_name: str) -> None:
    import jax

    jax.config.update("jax_enable_x64", dtype_name == "float64")
    dtype = np.dtype(dtype_name)
    for index, (name, (draw, build)) in enumerate(CASES.items()):
        for k in range(DRAWS):
            hp = draw(np.random.default_rng([index, k]), k)
            problem = Quadratic(DIM, dtype, seed=100 + k)
            tx, expr = build(hp)
            params, state = run(tx, problem, jit=False)
            jit_params, jit_state = run(tx, problem, jit=True)
            assert params.dtype == dtype and all(v.dtype == dtype for v in state.values())
            scale = np.max(np.abs(params[-1]))
            print(f"{name}-{dtype_name}-{k}: loss {problem.loss(problem.x0):.4g} -> {problem.loss(params[-1]):.4g}, "
                  f"jit vs eager final rel err {np.max(np.abs(jit_params[-1] - params[-1])) / scale:.3g}")
            np.savez_compressed(
                HERE / f"{name}-{dtype_name}-{k}.npz",
                hyperparameters=np.array(json.dumps(hp)), optax=np.array(expr),
                A=problem.A, b=problem.b, x0=problem.x0, params=params,
                jit_params=jit_params[-1],
                **{f"state_{n}": v for n, v in state.items()},
                **{f"jit_state_{n}": v for n, v in jit_state.items()},
            )


def write_defaults() -> None:
    import optax

    def defaults(fn: Any) -> dict[str, Any]:
        return {p.name: p.default for p in inspect.signature(fn).parameters.values()
                if p.default is not inspect.Parameter.empty and isinstance(p.default, (int, float))}

    out = {"optax": optax.__version__, "lion": defaults(optax.lion), "yogi": defaults(optax.yogi),
           "scale_by_yogi": defaults(optax.scale_by_yogi)}
    (HERE / "defaults.json").write_text(json.dumps(out, indent=2) + "\n")


def main() -> None:
    if len(sys.argv) > 1:
        write_dtype(sys.argv[1])
        return
    import optax

    assert optax.__version__ == "0.2.8", f"need optax 0.2.8, found {optax.__version__}"
    write_defaults()
    for dtype_name in ("float32", "float64"):
        subprocess.run([sys.executable, __file__, dtype_name], check=True)


if __name__ == "__main__":
    main()
