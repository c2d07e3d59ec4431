"""Differential privacy for the mean aggregate, as DP-FedAvg (McMahan et al. 2018, ICLR).

    clip(u)  = u * min(1, C / ||u||_2)            each contribution, before it is counted
    noise    ~ N(0, (z * C / K)^2) per coordinate  added once to the mean of the K clipped
                                                   contributions, at the round's close

where C = clip_norm and z = noise_multiplier. With noise, the mean weighs every
contribution equally (num_examples ignored): that bounds one client's influence on the
mean by C / K, the sensitivity the noise is calibrated to. The noise generator is
seeded by (session seed, round number), so a run with a fixed seed reproduces exactly,
and a retry of the close on another worker adds the very same noise.
"""

from __future__ import annotations

import numpy as np


def clip(u: np.ndarray, clip_norm: float) -> np.ndarray:
    norm = float(np.linalg.norm(u))
    if norm <= clip_norm:
        return u
    return u * (clip_norm / norm)


def gaussian_noise(dim: int, std: float, seed: int, round_: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, round_])))
    return rng.normal(0.0, std, size=dim)
