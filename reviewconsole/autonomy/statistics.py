"""Interval estimates for accuracy figures. Pure functions, no database."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """A proportion with its sample size and Wilson 95% interval."""

    n: float
    successes: float
    value: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def wilson(successes: float, n: float, z: float = Z_95) -> Rate:
    """Wilson score interval: honest at small n and near 0 or 1, unlike the normal approximation."""
    if n <= 0:
        return Rate(n=0, successes=0, value=None, low=None, high=None)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Rate(n=n, successes=successes, value=p, low=max(0.0, centre - half), high=min(1.0, centre + half))


def weighted_wilson(weight_sum: float, weighted_successes: float, weight_square_sum: float) -> Rate:
    """Wilson interval for an inverse-probability-weighted proportion.

    The weighted mean is the point estimate; Kish's effective sample size
    (sum w)^2 / sum w^2 stands in for n, so heavily weighted audit samples
    widen the interval as they should.
    """
    if weight_sum <= 0 or weight_square_sum <= 0:
        return Rate(n=0, successes=0, value=None, low=None, high=None)
    p = weighted_successes / weight_sum
    n_eff = weight_sum * weight_sum / weight_square_sum
    rate = wilson(p * n_eff, n_eff)
    return Rate(n=n_eff, successes=p * n_eff, value=p, low=rate.low, high=rate.high)
