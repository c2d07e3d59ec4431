"""Adafactor, as torch.optim.Adafactor on a 1-D parameter (no factorization).

    g     = -grad if maximize else grad
    rho   = min(lr, 1/sqrt(t))
    alpha = max(eps2, ||p|| / sqrt(n)) * rho              (||p|| before weight decay)
    p     = p * (1 - lr*wd)                               if wd != 0
    v     = lerp(v, g*g, t^beta2_decay)                   (variance)
    u     = g / sqrt(max(v, eps1^2))                      (eps1 = None: finfo(dtype).eps)
    p     = p - alpha / max(1, ||u|| / (sqrt(n) * d)) * u

torch factors the variance of 2-D and larger parameters into row and column
statistics; our parameters are one flat vector, so that path never applies (torch's
state then holds `row_var` and `col_var` as None, which we omit).
Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost".
"""

from __future__ import annotations

import numba
import numpy as np

from .errors import HyperparameterError
from .kernel import fma, fused, lerp, run, scalars
from .spec import Hyper, Hyperparameters, Optimizer, zeros_init
from .state import State

# torch's messages differ per element of eps, so every range is checked in `check`.
LR = Hyper("lr", "float", 1e-2, "learning rate (upper bound of the relative step size); >= 0")
BETA2_DECAY = Hyper("beta2_decay", "float", -0.8, "exponent of the second-moment weight t^beta2_decay; <= 0")
EPS = Hyper("eps", "pair", (None, 1e-3),
            "(eps1, eps2): floor of the variance (null: the dtype's machine epsilon) and of the "
            "parameter scale; both >= 0", nullable=True)
D = Hyper("d", "float", 1.0, "clipping threshold of the update's root mean square; >= 1")
WEIGHT_DECAY = Hyper("weight_decay", "float", 0.0, "decoupled weight decay; >= 0")
MAXIMIZE = Hyper("maximize", "bool", False, "maximize the objective instead of minimizing")


def check(hp: Hyperparameters) -> None:
    eps1, eps2 = hp["eps"]
    if eps2 is None:
        raise HyperparameterError("eps", "eps[1] must be a number, got None")
    for ok, name, message in (
        (0.0 <= hp["lr"], "lr", f"Learning rate should be >= 0 but is: {hp['lr']}"),
        (0.0 >= hp["beta2_decay"], "beta2_decay", f"beta2_decay should be <= 0 but is: {hp['beta2_decay']}"),
        (eps1 is None or 0.0 <= eps1, "eps", f"epsilon1 should be >= 0 but is: {eps1}"),
        (0.0 <= eps2, "eps", f"epsilon2 should be >= 0 but is: {eps2}"),
        (1.0 <= hp["d"], "d", f"Clipping threshold d should be >= 1 but is: {hp['d']}"),
        (0.0 <= hp["weight_decay"], "weight_decay", f"weight_decay should be >= 0 but is: {hp['weight_decay']}"),
    ):
        if not ok:
            raise HyperparameterError(name, message)


@numba.njit(cache=True, error_model="numpy")
def _norm(x, lanes):  # type: ignore[no-untyped-def]
    """torch's CPU L2 norm of a contiguous vector, in the same order: `lanes` running
    sums of squares in x's dtype (one SIMD register), folded left to right, then the
    tail, then sqrt. A float32 sum in another order (numpy's) differs from torch's by
    ~2e-5 relative at 1e6 elements, more than the float32 parity tolerance."""
    acc = np.zeros(lanes, x.dtype)
    n = x.shape[0]
    body = n - n % lanes
    for d in range(0, body, lanes):
        for j in range(lanes):
            acc[j] = acc[j] + x[d + j] * x[d + j]
    total = acc[0]
    for j in range(1, lanes):
        total = total + acc[j]
    for d in range(body, n):
        total = total + x[d] * x[d]
    return np.sqrt(total)


def norm(x: np.ndarray) -> float:
    # torch's CPU kernels use 256-bit AVX2 registers (8 float32 or 4 float64 lanes).
    return float(_norm(x, 32 // x.dtype.itemsize))


@fused
def _variance(g_in, v, u, maximize, w, floor, one):  # type: ignore[no-untyped-def]
    for i in range(g_in.shape[0]):
        g = -g_in[i] if maximize else g_in[i]
        v[i] = vi = lerp(v[i], g * g, w, one)
        vi = floor if vi < floor else vi  # clamp(min=floor), NaN passes through
        u[i] = (one / np.sqrt(vi)) * g  # torch's rsqrt is 1/sqrt, both rounded


@fused
def _apply(p, u, decay, scale):  # type: ignore[no-untyped-def]
    for i in range(p.shape[0]):
        p[i] = fma(u[i], scale, p[i] * decay)


def step(p: np.ndarray, g: np.ndarray, state: State, hp: Hyperparameters) -> None:
    lr, wd, t, n = hp["lr"], hp["weight_decay"], float(state.step), p.shape[0]
    eps1, eps2 = hp["eps"]
    if eps1 is None:
        eps1 = float(np.finfo(p.dtype).eps)
    rho = min(lr, 1 / (t**0.5))
    alpha = max(eps2, norm(p) / (n**0.5)) * rho
    u = np.empty_like(p)
    run(_variance, g, state.vectors["variance"], u, hp["maximize"],
        *scalars(p.dtype, t ** hp["beta2_decay"], eps1 * eps1, 1.0))
    denom = max(1.0, norm(u) / ((n**0.5) * hp["d"]))
    run(_apply, p, u, *scalars(p.dtype, 1 - lr * wd if wd != 0 else 1.0, -alpha / denom))


ADAFACTOR = Optimizer(
    name="adafactor", summary="Adafactor: relative step sizes, clipped RMS-normalised updates",
    reference="torch.optim.Adafactor", hypers=(LR, BETA2_DECAY, EPS, D, WEIGHT_DECAY, MAXIMIZE),
    vectors=("variance",), init=zeros_init("variance"), step=step, check=check,
)
