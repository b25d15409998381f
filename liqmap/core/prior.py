"""The open-interest prior (docs/model.md §3 step 11): positions the model never saw open must still be somewhere.

The synthetic model places positions only from the OI *steps* it sees. Open interest is public, so the part of it
the model has not placed (the positions open before it started watching, turnover hidden inside a flat OI, and
what consumption or decay removed while the OI stayed) is known in size but not in place. This module says where
such positions would plausibly have been entered and which of them can still be open:

- Entries: time at price over the minutes the model has seen (each minute's traded range, weighted
  ``2^(−age/half_life)``: a position opened long ago is more likely closed), plus the unseen past before the
  first minute, weighted by the tail of the same age weighting and spread log-normally around the first price
  the model saw (``sigma``).
- Survival: a position entered at a minute is still open only if price has not crossed its liquidation price
  since — for each entry the low and high of the path after it (the current price included) are kept, and every
  (entry, leverage tier) whose liquidation price that path crossed is dropped; the amount is renormalized over
  the survivors (the OI is there, so its holders are among the positions that survive).

The model (``liqmap.core.synthetic``) tops up its per-venue prior source to ``fill × OI`` with these weights;
the prior then closes, decays, is consumed and reconciled like any level. Pure numpy, no model state here.
"""

from __future__ import annotations

import math

import numpy as np

MINUTE = 60.0
MAX_MINUTES = 24 * 60  # history kept: a day of minute bars (older entries weigh 2^-(24 h / half-life): nothing)
_Z = np.linspace(-3.0, 3.0, 13)  # log-normal grid of the unseen past's entries
_ZW = np.exp(-0.5 * _Z * _Z) / np.exp(-0.5 * _Z * _Z).sum()


class PriceHistory:
    """Minute bars (low, high) of the traded price the model has seen, oldest first."""

    def __init__(self) -> None:
        self.minute: list[int] = []
        self.low: list[float] = []
        self.high: list[float] = []
        self.first_price: float | None = None

    def add(self, ts: np.ndarray, price: np.ndarray) -> None:
        """Fold trades (time order) into the minute bars."""
        if len(ts) == 0:
            return
        if self.first_price is None:
            self.first_price = float(price[0])
        m0, m1 = math.floor(float(ts[0]) / MINUTE), math.floor(float(ts[-1]) / MINUTE)
        if m0 == m1:  # the usual call: one model column, one minute — no per-trade arrays
            self._bar(m0, float(price.min()), float(price.max()))
            return
        m = np.floor(np.asarray(ts, np.float64) / MINUTE).astype(np.int64)
        cut = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
        lows = np.minimum.reduceat(price, cut)
        highs = np.maximum.reduceat(price, cut)
        for mi, lo, hi in zip(m[cut].tolist(), lows.tolist(), highs.tolist()):
            self._bar(mi, lo, hi)

    def _bar(self, mi: int, lo: float, hi: float) -> None:
        """One minute's (low, high) appended, or the last bar widened (the same minute again, or a late trade)."""
        if self.minute and mi <= self.minute[-1]:
            self.low[-1] = min(self.low[-1], lo)
            self.high[-1] = max(self.high[-1], hi)
            return
        self.minute.append(mi)
        self.low.append(lo)
        self.high.append(hi)
        if len(self.minute) > MAX_MINUTES:
            k = len(self.minute) - MAX_MINUTES
            del self.minute[:k], self.low[:k], self.high[:k]

    def sigma_hour(self) -> float | None:
        """The usual volatility per hour over the bars held: 1.4826 × the median absolute change of the bars' mid
        prices (log) between consecutive minutes, × √60. The median, not the standard deviation, so that a burst
        (a cascade's minutes) does not stand for the days before it; None with fewer than 30 changes."""
        if len(self.minute) < 31:
            return None
        mid = np.log(np.sqrt(np.asarray(self.low) * np.asarray(self.high)))
        gap = np.diff(np.asarray(self.minute, np.float64))
        r = np.diff(mid) / np.sqrt(np.maximum(gap, 1.0))  # a gap of g minutes is g minutes of walk
        return float(1.4826 * np.median(np.abs(r)) * math.sqrt(60.0))

    def entries(self, now: float, price: float, half_life_s: float, sigma: float, z: np.ndarray = _Z
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(entry price, weight, path low since, path high since) of the plausible entries of positions still
        open now; weights sum to 1. Seen minutes enter at their bar's mid price; the unseen past at the first
        price on a log-normal grid ``z`` (in σ) of width ``sigma`` (0 = at the first price)."""
        first = self.first_price if self.first_price is not None else price
        if self.minute:
            mins = np.asarray(self.minute, np.float64)
            lo = np.asarray(self.low)
            hi = np.asarray(self.high)
            age = np.maximum(now - (mins + 0.5) * MINUTE, 0.0)
            k = math.log(2.0) / half_life_s if half_life_s > 0 else 0.0
            w_seen = np.exp(-k * age) * MINUTE  # each minute stands for a minute of opens
            t_seen = float(now - mins[0] * MINUTE)
            # the path after each minute: its own later bars and the current price (suffix min / max)
            lo_after = np.minimum(np.minimum.accumulate(np.r_[lo[1:], price][::-1])[::-1], price)
            hi_after = np.maximum(np.maximum.accumulate(np.r_[hi[1:], price][::-1])[::-1], price)
            # a position entered within a minute's range may have seen its own bar's extremes too
            lo_after = np.minimum(lo_after, lo)
            hi_after = np.maximum(hi_after, hi)
            ent = np.sqrt(lo * hi)
            path_lo, path_hi = min(float(lo.min()), price), max(float(hi.max()), price)
        else:
            ent = lo_after = hi_after = w_seen = np.empty(0)
            t_seen = 0.0
            path_lo = path_hi = price
        # the unseen past: every age beyond what was seen, ∫ e^(−k·a) da from t_seen to ∞
        if half_life_s > 0:
            k = math.log(2.0) / half_life_s
            w_unseen = math.exp(-k * t_seen) / k
        else:
            w_unseen = 0.0 if len(ent) else 1.0
        if sigma > 0:
            zw = _ZW if z is _Z else np.exp(-0.5 * z * z) / np.exp(-0.5 * z * z).sum()
            u_ent = first * np.exp(z * sigma)
            u_w = zw * w_unseen
        else:
            u_ent, u_w = np.array([first]), np.array([w_unseen])
        entries = np.r_[ent, u_ent]
        weights = np.r_[w_seen, u_w]
        lows = np.r_[lo_after, np.full(len(u_ent), path_lo)]
        highs = np.r_[hi_after, np.full(len(u_ent), path_hi)]
        # the unseen entries' own price is part of their path (a long entered above today's low saw it)
        tot = weights.sum()
        if not tot > 0:
            return np.array([price]), np.ones(1), np.array([price]), np.array([price])
        return entries, weights / tot, np.minimum(lows, entries), np.maximum(highs, entries)


def surviving_weights(entries: np.ndarray, weights: np.ndarray, path_lo: np.ndarray, path_hi: np.ndarray,
                      ratio: np.ndarray, tier_w: np.ndarray, renormalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per side, an (entries, tiers) weight table of the positions that can still be open: the entry's weight ×
    the tier's, zero where the path since the entry crossed that tier's liquidation price (``entry × ratio``),
    renormalized to sum to 1 over the survivors (all zero if none survive; ``renormalize=False``: as they are,
    summing to the share that survived). ``ratio`` is (2, K): liquidation price ÷ entry for longs and shorts."""
    out = []
    for s in (0, 1):
        lp = entries[:, None] * ratio[s][None, :]
        if s == 0:
            alive = np.isfinite(lp) & (lp < path_lo[:, None])  # a long survives while price stayed above it
        else:
            alive = np.isfinite(lp) & (lp > path_hi[:, None])
        w = np.where(alive, weights[:, None] * tier_w[None, :], 0.0)
        tot = w.sum()
        out.append(w / tot if tot > 0 and renormalize else w)
    return out[0], out[1]
