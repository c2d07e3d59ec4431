"""How element-wise kernels are compiled and called.

Every optimizer's update is one fused loop compiled by numba: one pass over memory
instead of numpy's one pass per operation, and both cores for large vectors. The
loops are plain IEEE arithmetic (no fastmath), so they round exactly as the
element-wise formula written in them.

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

import os
import threading
import types
from typing import Any, Callable

# Parallel kernels run on numba's OpenMP layer. OpenMP's default wait policy spins idle
# threads, which on a busy 2-core server (uvicorn, Redis, other workers) turned a 0.6 ms
# step into 12-16 ms; passive threads sleep instead. Must be set before OpenMP loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np

_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}
# Below this length a parallel launch (waking a second thread) costs more than the loop,
# and far more when the machine is oversubscribed; the serial kernel runs instead.
PARALLEL_MIN = 65_536


class Kernel:
    """One element-wise loop, compiled twice: serial for short vectors, parallel for long."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.parallel = numba.njit(parallel=True, **_OPTIONS)(fn)
        # A distinct qualname keeps the two variants apart in numba's on-disk cache.
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
        twin.__qualname__ = fn.__qualname__ + "_serial"
        self.serial = numba.njit(**_OPTIONS)(twin)


def fused(fn: Callable[..., Any]) -> Kernel:
    """Decorator for an optimizer's update loop (`for i in prange(n)`)."""
    return Kernel(fn)


# Scalar helpers inlined into kernels.
inline = numba.njit(inline="always", **_OPTIONS)

# numba's default "workqueue" threading layer aborts when two threads launch parallel
# kernels at once; the service steps from a thread pool, so parallel launches are
# serialised here. A parallel kernel already uses every core, so nothing is lost.
_launch = threading.Lock()


def run(kernel: Kernel, *args: Any) -> None:
    """Call `kernel`; its first argument is a vector whose length picks the variant."""
    if args[0].shape[0] < PARALLEL_MIN:
        kernel.serial(*args)
        return
    with _launch:
        kernel.parallel(*args)


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
