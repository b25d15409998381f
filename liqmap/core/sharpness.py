"""How much a liquidation profile looks like levels rather than a wash (issue 20, item 2).

A profile is the USD at risk per price bucket over a range around the price (one time column of the
Synthetic map). Its *sharpness* is the share of the profile's USD held by its top ``share`` of buckets
(10 % by default): a flat profile scores ``share`` (0.10), a profile whose whole mass sits in thin
lines scores close to 1. Reference products draw thin bright lines where leveraged positions would be
liquidated; the simulator's true positions (benchmarks/bench_forecast.py's oracle) show how sharp a
real population's profile is, and the model's should be about as sharp — not a wash, not sharper than
the truth.
"""

from __future__ import annotations

import math

import numpy as np

TOP_SHARE = 0.10


def top_share(values: np.ndarray, share: float = TOP_SHARE) -> float | None:
    """Share of ``sum(values)`` held by the largest ``ceil(share·n)`` entries; None for an empty profile.

    Negative values count as zero (a profile is USD at risk)."""
    v = np.clip(np.asarray(values, dtype=np.float64).ravel(), 0.0, None)
    total = float(v.sum())
    if len(v) == 0 or not (total > 0 and math.isfinite(total)):
        return None
    k = max(1, int(math.ceil(share * len(v))))
    top = np.partition(v, len(v) - k)[len(v) - k:]
    return float(top.sum()) / total
