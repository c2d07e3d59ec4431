"""Optimizer step time: our fused kernels against torch.optim's own step(), and both
against the machine's memory bandwidth.

For every optimizer in the registry, float32, default hyperparameters, the same
vectors on both sides (gradients preset, so only the update is timed), medians of many
steps after a warm-up, ours and torch measured in alternating rounds so that a change in
machine load hits both. Traffic counts what one fused pass must move: read the
parameters, the gradients and every state vector, write the parameters and every state
vector. The copy column is np.copyto of one vector of the same size (read + write),
timed in the same alternating rounds.

    python bench/optim.py [NAME ...] [--sizes 1e3,1e5] [--budget 0.3]

Prints a Markdown table and writes it to bench/results/optim.md. torch uses its 2
intra-op threads; our kernels are serial (see service/optim/kernel.py for why).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numba
import numpy as np
import torch

# Run as a script, this folder comes first on sys.path, where bench/service.py would
# shadow the `service` package: put the repository root before it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service import optim  # noqa: E402
from service.optim import Optimizer  # noqa: E402

THREADS = 2
SIZES = (10**3, 10**5, 10**6, 10**7)
RESULTS = Path(__file__).parent / "results" / "optim.md"
ROUNDS = 3  # ours and torch alternate this many times


def torch_class(opt: Optimizer) -> type[torch.optim.Optimizer] | None:
    """The torch.optim class named by the optimizer's reference, if torch has one."""
    prefix = "torch.optim."
    if not opt.reference.startswith(prefix):
        return None
    return getattr(torch.optim, opt.reference[len(prefix):])


def sample(fn: Callable[[], None], budget: float, max_reps: int = 20000) -> list[float]:
    """Times of single calls for about `budget` seconds (at least 5 calls)."""
    times: list[float] = []
    end = time.perf_counter() + budget
    while len(times) < 5 or (time.perf_counter() < end and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def alternate(fns: list[Callable[[], None]], budget: float) -> list[float]:
    """Warm up every fn, then time them in alternating rounds; the median of each."""
    for fn in fns:
        for _ in range(3):
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(ROUNDS):
        for s, fn in zip(samples, fns):
            s += sample(fn, budget / ROUNDS)
    return [statistics.median(s) for s in samples]


def ours(opt: Optimizer, params: np.ndarray, grads: np.ndarray) -> tuple[Callable[[], None], optim.State]:
    hp = opt.resolve({})
    state = opt.init(params.size, params.dtype, hp)
    return (lambda: optim.apply(opt, hp, params, grads, state)), state


def theirs(cls: type[torch.optim.Optimizer], opt: Optimizer, params: np.ndarray, grads: np.ndarray) -> Callable[[], None]:
    p = torch.from_numpy(params).requires_grad_(True)
    p.grad = torch.from_numpy(grads)
    topt = cls([p], **opt.resolve({}))  # torch's defaults, our names: the same values
    return topt.step


def copier(n: int) -> Callable[[], None]:
    src, dst = np.random.default_rng(0).random(n, dtype=np.float32), np.empty(n, np.float32)
    return lambda: np.copyto(dst, src)


def fmt_n(n: int) -> str:
    return f"1e{len(str(n)) - 1}" if str(n).strip("0") == "1" else str(n)


def fmt_ms(t: float | None) -> str:
    return "–" if t is None else f"{t * 1e3:.4f}" if t < 1e-3 else f"{t * 1e3:.3f}"


def gbps(nbytes: float, t: float | None) -> str:
    return "–" if t is None else f"{nbytes / t / 1e9:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="optimizers to run (default: all)")
    ap.add_argument("--sizes", default=",".join(f"{n:.0e}" for n in SIZES), help="comma-separated vector sizes")
    ap.add_argument("--budget", type=float, default=0.25, help="seconds of timed calls per side and size")
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    names = args.names or list(optim.OPTIMIZERS)

    torch.set_num_threads(THREADS)
    itemsize = np.dtype(np.float32).itemsize

    rows = []
    adam_target = None
    misses = []
    for name in names:
        opt = optim.get(name)
        cls = torch_class(opt)
        for n in sizes:
            rng = np.random.default_rng(n)
            p0 = rng.normal(size=n).astype(np.float32)
            g = (0.1 * rng.normal(size=n)).astype(np.float32)
            ours_p, torch_p = p0.copy(), p0.copy()
            step, state = ours(opt, ours_p, g)
            fns = [step, copier(n)] + ([theirs(cls, opt, torch_p, g.copy())] if cls else [])
            medians = alternate(fns, args.budget)
            t_ours, t_copy, t_torch = medians[0], medians[1], (medians[2] if cls else None)
            if not np.isfinite(ours_p).all():
                print(f"warning: {name} n={n}: parameters went non-finite during the bench")
            traffic = (1 + 2 * (1 + len(state.vectors))) * n * itemsize
            ratio = None if t_torch is None else t_ours / t_torch
            rows.append((name, n, t_ours, t_torch, ratio, traffic, t_copy))
            if ratio is not None and n >= 10**5 and ratio > 1.0:
                misses.append(f"{name} n={fmt_n(n)}: {ratio:.2f}x")
            if name == "adam" and n == 10**7:
                floor = traffic / (2 * n * itemsize / t_copy)  # time to move Adam's bytes at copy speed
                adam_target = t_ours / floor
            print(f"{name:>10} n={fmt_n(n)}: ours {fmt_ms(t_ours)} ms, torch {fmt_ms(t_torch)} ms", flush=True)

    lines = [
        f"float32, default hyperparameters, torch on {THREADS} intra-op threads, our kernels serial; "
        f"torch {torch.__version__}, numba {numba.__version__}; "
        f"load average at the end {os.getloadavg()[0]:.1f}. Times are medians per step.",
        "",
        "| optimizer | n | ours (ms) | torch (ms) | ours / torch | ours GB/s | torch GB/s | np.copyto GB/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n, t_ours, t_torch, ratio, traffic, t_copy in rows:
        lines.append(
            f"| {name} | {fmt_n(n)} | {fmt_ms(t_ours)} | {fmt_ms(t_torch)} | "
            f"{'–' if ratio is None else f'{ratio:.2f}'} | {gbps(traffic, t_ours)} | {gbps(traffic, t_torch)} | "
            f"{gbps(2 * n * itemsize, t_copy)} |"
        )
    lines.append("")
    if adam_target is not None:
        lines.append(
            f"Adam at n=1e7: step time / (7 vectors of traffic at np.copyto bandwidth) = "
            f"{adam_target:.2f}x (target <= 3x)."
        )
    lines.append(
        "Slower than torch (ours / torch > 1.0) at n >= 1e5: " + (", ".join(misses) if misses else "none") + "."
    )
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
