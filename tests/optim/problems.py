"""Test problems whose gradient depends on the parameters."""

from __future__ import annotations

import numpy as np


class Quadratic:
    """f(x) = 1/2 x^T A x - b^T x with A symmetric positive definite; minimum at A^-1 b."""

    def __init__(self, dim: int, dtype: np.dtype, seed: int) -> None:
        rng = np.random.default_rng(seed)
        q = rng.normal(size=(dim, dim))
        self.A = (q @ q.T / dim + 0.1 * np.eye(dim)).astype(dtype)
        self.b = rng.normal(size=dim).astype(dtype)
        # Start far from the minimum: 200 steps of any optimizer here stay in the regime
        # where the gradient is large. Near the minimum, sign-like updates (Adam with
        # beta1 = 0, Rprop) amplify last-bit differences chaotically, which tells nothing
        # about the arithmetic.
        self.dtype = np.dtype(dtype)
        self.x0 = (self.solution() + 20.0 * rng.normal(size=dim)).astype(dtype)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return (self.A @ x - self.b).astype(self.dtype)

    def loss(self, x: np.ndarray) -> float:
        x = x.astype(np.float64)
        return float(0.5 * x @ self.A.astype(np.float64) @ x - self.b.astype(np.float64) @ x)

    def solution(self) -> np.ndarray:
        return np.linalg.solve(self.A.astype(np.float64), self.b.astype(np.float64))
