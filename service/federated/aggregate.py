"""Combining a round's contributions into one vector. Pure numpy, float64.

    mean          sum_i w_i u_i / sum_i w_i   (w_i = num_examples; kept as a running sum,
                  so a mean round stores one vector, not one per contribution)
    median        coordinate-wise median (unweighted; even counts average the middle two)
    trimmed_mean  per coordinate, drop the k = floor(trim_ratio * n) smallest and k largest
                  values, average the rest (Yin et al. 2018)
    krum          Blanchard et al. 2017: score(i) = sum of the squared distances from u_i to
                  its n - f - 2 nearest other contributions; Krum picks the lowest score,
                  Multi-Krum (multi = m) averages the m lowest-scored, unweighted. Ties go to
                  the earlier contribution.

The robust rules ignore num_examples: a Byzantine client could claim any count.
"""

from __future__ import annotations

import numpy as np


def mean(weighted_sum: np.ndarray, total_weight: float) -> np.ndarray:
    return weighted_sum / total_weight


def median(vectors: np.ndarray) -> np.ndarray:
    return np.median(vectors, axis=0)


def trimmed_mean(vectors: np.ndarray, trim_ratio: float) -> np.ndarray:
    n = vectors.shape[0]
    k = int(np.floor(trim_ratio * n))
    ordered = np.sort(vectors, axis=0)
    return ordered[k:n - k].mean(axis=0)


def krum_scores(vectors: np.ndarray, byzantine: int) -> np.ndarray:
    n = vectors.shape[0]
    neighbours = n - byzantine - 2
    if neighbours < 1:
        raise ValueError(f"krum needs n >= f + 3 contributions, got n={n}, f={byzantine}")
    if n * n * vectors.shape[1] <= 4_000_000:  # exact differences while they fit in memory
        diff = vectors[:, None, :] - vectors[None, :, :]
        dist = np.einsum("ijk,ijk->ij", diff, diff)
    else:  # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, one matrix product
        sq = np.einsum("ij,ij->i", vectors, vectors)
        dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (vectors @ vectors.T), 0.0)
    np.fill_diagonal(dist, np.inf)
    return np.sort(dist, axis=1)[:, :neighbours].sum(axis=1)


def krum(vectors: np.ndarray, byzantine: int, multi: int = 1) -> np.ndarray:
    order = np.argsort(krum_scores(vectors, byzantine), kind="stable")
    return vectors[order[:multi]].mean(axis=0)
