"""Bootstrap over articles, vectorised: resampled count sums are one matrix product.

A resample draws n article indices with replacement (a row of an index matrix); its
count sums are `weights @ counts`, where `weights[b, i]` is how often article i was drawn.
Resamples are drawn in fixed-size chunks from one seeded generator, so results depend
only on the seed, the number of resamples and the number of articles - and a paired
comparison uses exactly the same resamples for both systems.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

CHUNK = 50  # resamples per index matrix: bounds memory at CHUNK x n_articles


def resample_weights(n_articles: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of (resamples x articles) draw counts, from index matrices drawn with `seed`."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < resamples:
        size = min(CHUNK, resamples - done)
        index = rng.integers(0, n_articles, size=(size, n_articles), dtype=np.int64)
        index += (np.arange(size, dtype=np.int64) * n_articles)[:, None]
        yield np.bincount(index.ravel(), minlength=size * n_articles).reshape(size, n_articles).astype(np.float64)
        done += size


def resampled_sums(counts: np.ndarray, resamples: int, seed: int, progress: bool = True) -> np.ndarray:
    """(resamples x columns) sums of `counts` (articles x columns) over bootstrap resamples."""
    n_articles = counts.shape[0]
    if n_articles == 0:
        return np.zeros((resamples, counts.shape[1]))
    matrix = counts.astype(np.float64)
    chunks = resample_weights(n_articles, resamples, seed)
    bar = tqdm(
        chunks,
        total=-(-resamples // CHUNK),
        desc="bootstrap",
        unit="chunk",
        disable=None if progress else True,
        leave=False,
    )
    if not resamples:
        return np.zeros((0, counts.shape[1]))
    # One BLAS thread: the products are small, and threaded OpenBLAS spins badly on a busy 2-core machine
    # (measured 0.5 s single-threaded vs 4.4 s with 2 threads under load, for 10k articles x 1,000 resamples).
    with threadpool_limits(limits=1, user_api="blas"):
        return np.concatenate([weights @ matrix for weights in bar])


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval; None when the figure is undefined in every resample."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return None, None
    alpha = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [alpha, 100 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class Difference:
    """Paired bootstrap comparison of one figure: A - B with its interval and two-sided p-value."""

    a: float | None
    b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool

    def as_dict(self) -> dict[str, float | bool | None]:
        return {
            "a": self.a,
            "b": self.b,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "significant": self.significant,
        }


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def paired_difference(
    point_a: float, point_b: float, resampled_a: np.ndarray, resampled_b: np.ndarray, confidence: float, alpha: float
) -> Difference:
    """Difference A - B; p = twice the smaller share of resamples on either side of zero (add-one smoothed)."""
    observed = point_a - point_b
    deltas = resampled_a - resampled_b
    deltas = deltas[~np.isnan(deltas)]
    if np.isnan(observed) or deltas.size == 0:
        return Difference(_number(point_a), _number(point_b), _number(observed), None, None, None, False)
    low, high = percentile_interval(deltas, confidence)
    below = (np.count_nonzero(deltas <= 0) + 1) / (deltas.size + 1)
    above = (np.count_nonzero(deltas >= 0) + 1) / (deltas.size + 1)
    p_value = float(min(1.0, 2 * min(below, above)))
    return Difference(
        float(point_a), float(point_b), float(observed), low, high, p_value, bool(p_value < alpha and observed != 0)
    )
