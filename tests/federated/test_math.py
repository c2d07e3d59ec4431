"""The pure pieces: aggregation rules, staleness weights, DP clipping and noise, each
against a formula or hand-computed numbers written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.federated import aggregate, privacy, staleness
from service.federated.config import Staleness

# Five 2-D contributions, the last a Byzantine outlier. Squared distances, by hand:
#   u1-u2 1, u1-u3 4, u1-u4 2, u1-u5 200, u2-u3 5, u2-u4 1, u2-u5 181,
#   u3-u4 2, u3-u5 164, u4-u5 162.
# Krum with f = 1 sums the n - f - 2 = 2 smallest distances of each:
#   u1: 1+2 = 3, u2: 1+1 = 2, u3: 2+4 = 6, u4: 1+2 = 3, u5: 162+164 = 326.
U = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [10.0, 10.0]])


def test_weighted_mean_is_sum_of_weighted_over_sum_of_weights() -> None:
    rng = np.random.default_rng(0)
    vectors, weights = rng.normal(size=(4, 6)), np.array([10.0, 1.0, 3.0, 6.0])
    running = sum(w * v for w, v in zip(weights, vectors))
    expected = [sum(weights[i] * vectors[i, j] for i in range(4)) / 20.0 for j in range(6)]
    np.testing.assert_allclose(aggregate.mean(running, weights.sum()), expected, rtol=1e-14)


def test_median_per_coordinate() -> None:
    odd = aggregate.median(U)
    assert odd.tolist() == [sorted(U[:, 0])[2], sorted(U[:, 1])[2]] == [1.0, 1.0]
    even = aggregate.median(U[:4])  # middle two averaged
    assert even.tolist() == [(0.0 + 1.0) / 2, (0.0 + 1.0) / 2]


def test_trimmed_mean_cuts_k_from_each_end_per_coordinate() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(10, 5))
    vectors[3] = 1e6  # an outlier in every coordinate
    for ratio in (0.0, 0.1, 0.25, 0.49):
        k = math.floor(ratio * 10)
        expected = []
        for j in range(5):
            column = sorted(vectors[:, j])
            kept = column[k:10 - k]
            expected.append(sum(kept) / len(kept))
        np.testing.assert_allclose(aggregate.trimmed_mean(vectors, ratio), expected, rtol=1e-12)
    assert np.all(np.abs(aggregate.trimmed_mean(vectors, 0.1)) < 10)  # the outlier is gone


def test_krum_scores_and_choice_with_a_byzantine_outlier() -> None:
    assert aggregate.krum_scores(U, byzantine=1).tolist() == [3.0, 2.0, 6.0, 3.0, 326.0]
    assert aggregate.krum(U, byzantine=1).tolist() == [1.0, 0.0]  # u2
    # Multi-Krum: the m lowest scores, ties to the earlier (u1 before u4), averaged.
    assert aggregate.krum(U, byzantine=1, multi=2).tolist() == [0.5, 0.0]
    np.testing.assert_allclose(aggregate.krum(U, byzantine=1, multi=3), [2 / 3, 1 / 3])
    # The plain mean is dragged far off by the outlier; Krum never picks it.
    assert aggregate.mean(U.sum(axis=0), 5).tolist() == [12 / 5, 13 / 5]


def test_krum_large_inputs_use_the_gram_form_with_the_same_result() -> None:
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(7, 100_000))
    vectors[6] += 50
    scores = aggregate.krum_scores(vectors, byzantine=2)  # 7*7*1e5 > the exact-difference budget
    exact = [sorted(float(np.sum((vectors[i] - vectors[j]) ** 2)) for j in range(7) if j != i)[:3] for i in range(7)]
    np.testing.assert_allclose(scores, [sum(e) for e in exact], rtol=1e-9)
    assert int(np.argmax(scores)) == 6


def test_krum_needs_enough_contributions() -> None:
    with pytest.raises(ValueError):
        aggregate.krum(U[:3], byzantine=1)


@pytest.mark.parametrize(("function", "a", "b", "tau", "expected"), [
    ("constant", 0.5, 4, 0, 1.0), ("constant", 0.5, 4, 9, 1.0),
    ("polynomial", 0.5, 4, 0, 1.0), ("polynomial", 0.5, 4, 3, 0.5), ("polynomial", 1.0, 4, 4, 0.2),
    ("polynomial", 2.0, 4, 1, 0.25),
    ("hinge", 10.0, 4, 0, 1.0), ("hinge", 10.0, 4, 4, 1.0),
    ("hinge", 10.0, 4, 5, 1 / 11), ("hinge", 10.0, 4, 6, 1 / 21),
    ("hinge", 0.5, 0, 2, 0.5),
])
def test_staleness_functions(function: str, a: float, b: int, tau: int, expected: float) -> None:
    assert staleness.weight(Staleness(function=function, a=a, b=b), tau) == pytest.approx(expected, rel=1e-15)


def test_clip_scales_to_the_norm_and_leaves_small_ones() -> None:
    assert privacy.clip(np.array([3.0, 4.0]), 1.0).tolist() == pytest.approx([0.6, 0.8])
    small = np.array([0.3, 0.4])
    assert privacy.clip(small, 1.0) is small
    rng = np.random.default_rng(3)
    for _ in range(20):
        u = rng.normal(size=50) * rng.uniform(0.1, 10)
        c = privacy.clip(u, 2.0)
        assert np.linalg.norm(c) <= 2.0 + 1e-12
        assert np.allclose(c / np.linalg.norm(c), u / np.linalg.norm(u))  # direction kept


def test_noise_is_reproducible_per_seed_and_round_with_the_stated_std() -> None:
    a = privacy.gaussian_noise(200_000, 0.3, seed=7, round_=0)
    assert np.array_equal(a, privacy.gaussian_noise(200_000, 0.3, seed=7, round_=0))
    assert not np.array_equal(a, privacy.gaussian_noise(200_000, 0.3, seed=7, round_=1))
    assert not np.array_equal(a, privacy.gaussian_noise(200_000, 0.3, seed=8, round_=0))
    assert abs(a.mean()) < 0.005 and a.std() == pytest.approx(0.3, rel=0.01)
