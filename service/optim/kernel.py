"""How element-wise kernels are compiled and called.

Every optimizer's update is one fused loop compiled by numba: one pass over memory
instead of numpy's one pass per operation. The loops are plain IEEE arithmetic (no
fastmath), so they round exactly as the element-wise formula written in them.

Rules for kernels, so that float32 math stays float32 as in torch:
- scalar hyperparameters are computed in Python floats (float64, as torch does) and
  converted with `scalars(dtype, ...)` before the call; never use a float literal
  inside a kernel (numba types it float64 and would promote the whole expression);
- flags are passed as bools; they are loop-invariant, so the branches cost nothing.

How torch's CPU kernels round (measured against torch 2.13, AVX2; `fma` = one rounding):

    a.add(b, alpha=s)          fma(b, s, a)
    a.lerp(b, w)               fma(w, b - a, a) if |w| < 0.5 else fma(-(b - a), 1 - w, b)
    a.addcmul(b, c, value=s)   fma(s * b, c, a)
    a.addcdiv(b, c, value=s)   a + (s * b) / c
    a * s, a / s, a + s, maximum, sign, clamp: plain IEEE

`sqrt` is the one place we cannot match bit for bit: torch calls MKL's vector sqrt,
which is within 1 ulp but not correctly rounded; we use the correctly rounded one.
"""

from __future__ import annotations

from typing import Any, Callable

import numba
import numpy as np

_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

# Kernels are compiled once per dtype and cached on disk next to the sources. They are
# serial on purpose: one fused pass already runs at memory speed (Adam at 1e7 float32:
# ~8 ms, torch's step 25-60 ms), while numba's parallel launches stalled ~8 ms whenever
# the 2-core machine was busy (measured in bench/optim.py, OpenMP active and passive).
# nogil: the service runs large steps in worker threads.
fused = numba.njit(**_OPTIONS)
# Scalar helpers inlined into kernels.
inline = numba.njit(inline="always", **_OPTIONS)


def run(kernel: Callable[..., Any], *args: Any) -> None:
    """Call a compiled kernel (one place to hook timing or dispatch)."""
    kernel(*args)


def scalars(dtype: np.dtype, *values: float) -> tuple[Any, ...]:
    """Python floats -> numpy scalars of the session dtype (torch casts them the same way)."""
    t = np.dtype(dtype).type
    return tuple(t(v) for v in values)


@numba.extending.intrinsic
def _llvm_fma(typingctx, a, b, c):  # type: ignore[no-untyped-def]
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.fma(*args)

    return sig, codegen


@inline
def fma(a, b, c):  # type: ignore[no-untyped-def]
    """a*b + c with one rounding: torch's CPU kernels (vec::fmadd, and GCC's contraction
    of a*b+c) round this way, so we must too to agree to the last bit."""
    return _llvm_fma(a, b, c)


@inline
def lerp(start, end, weight, one):  # type: ignore[no-untyped-def]
    """torch.lerp(start, end, weight), rounded as torch's CPU kernel does."""
    if abs(weight) < 0.5:
        return fma(weight, end - start, start)
    return fma(-(end - start), one - weight, end)


@inline
def adam_prologue(g_in, x, maximize, wd, decay, decoupled):  # type: ignore[no-untyped-def]
    """The gradient and parameter the Adam family starts from (torch's order):
    negate for maximize, then decay the weight (decoupled) or add wd*p to the gradient."""
    g = -g_in if maximize else g_in
    if decoupled:
        x = x * decay
    elif wd != 0:
        g = fma(x, wd, g)
    return g, x


@inline
def adam_moments(m, v, g, w1, beta2, one_m_beta2, one):  # type: ignore[no-untyped-def]
    """m.lerp_(g, 1 - beta1); v.mul_(beta2).addcmul_(g, g, value=1 - beta2)."""
    return lerp(m, g, w1, one), fma(one_m_beta2 * g, g, v * beta2)
