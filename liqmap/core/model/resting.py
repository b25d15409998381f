"""The resting layer (docs/model.md §3 step 13): most of a venue's open interest is low-leverage and held for days.

The model places what the OI *steps* it sees open, at the flow's leverage tiers (5–100×). That is what a normal hour
liquidates, but not what most of a venue's open interest is: positions at 1.5–4× held for days, whose liquidation
prices sit 20–50 % away, opened long before any history the model fetched. They matter the day price runs that far
(seed 8's BTC at real size fell 30 %: four checkpoints held 82 % of the truth's USD within ±5 %, and the forecast,
sized by the flow it saw, showed 3–7 % of it — docs/benchmarks.md, session 15).

This layer says where they are and how many, without keeping state:

- **How many:** ``resting_share`` of each venue's public OI (USD, one side: each side holds it), the number a
  trader can check.
- **Where they were entered:** the price path (:class:`~liqmap.core.prior.PriceHistory`) weighted by the holding
  time (``2^(−age/half-life)`` with the half-life of an exponential hold of ``resting_hold_hours``), and the unseen
  past before it, log-normal around the first price seen with the volatility over a holding time.
- **At what leverage:** ``resting_leverage_tiers`` / ``_weights``, each tier's exact liquidation price per venue (its
  own margin table).
- **Which are still open:** every (entry, tier) whose liquidation price the path since its entry crossed is gone,
  and the share is spread over the survivors (:func:`~liqmap.core.prior.surviving_weights`): the OI is there, so its
  holders are among the positions still open. When price runs through them, the venue's OI falls by what was
  liquidated, and the layer with it.

Computed when read, from the model's own price history and OI samples: nothing here is consumed, decays or is
reconciled, because the path and the OI already say what was. Its USD is real (the OI's), so it is not put on the
flow's dollar scale (step 12).
"""

from __future__ import annotations

import math

import numpy as np

from .. import buckets
from ..prior import PriceHistory, surviving_weights
from .placement import Placement

LN2 = math.log(2.0)
# the unseen past's entries: a finer log-normal grid than the OI prior's (a day's volatility is several buckets wide)
UNSEEN_Z = np.linspace(-3.0, 3.0, 41)


class RestingLayer:
    """One asset's resting layer: the leverage tiers per venue and the last levels read (cached per minute,
    price bucket and OI)."""

    def __init__(self, params: dict, tiers, inverse: np.ndarray, typical: float):
        self.share = max(float(params.get("resting_share", 0.0)), 0.0)
        hold_h = float(params.get("resting_hold_hours", 24.0))
        # an exponential hold of mean H: the share still open after age a is e^(−a/H), a half-life of H·ln 2
        self.hold_s = hold_h * 3600.0 if hold_h > 0 and math.isfinite(hold_h) else 0.0
        self.placement = (Placement(params["resting_leverage_tiers"], params["resting_leverage_weights"], tiers,
                                    inverse, typical, 0.0) if self.share > 0 else None)
        self._key: tuple | None = None
        self._out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def on(self) -> bool:
        return self.placement is not None and self.hold_s > 0

    def levels(self, hist: PriceHistory | None, now: float | None, price: float | None, oi_usd: np.ndarray,
               sigma_hour: float, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bucket, long USD, short USD) of the resting positions still open, over the venues whose ``oi_usd``
        (per venue, NaN = no sample or not asked for) is known."""
        empty = (np.empty(0, np.int64), np.empty(0), np.empty(0))
        ok = np.isfinite(oi_usd) & (oi_usd > 0)
        if not self.on or hist is None or not hist.minute or now is None or not price or not ok.any():
            return empty
        key = (hist.minute[-1], len(hist.minute), buckets.index_of(price, step), step,
               tuple(np.round(np.where(ok, oi_usd, 0.0), -3).tolist()))
        if key == self._key and self._out is not None:
            return self._out
        # the unseen entries' spread: a holding time's walk at the market's usual volatility (the bars' median move,
        # not this hour's: a cascade's 3-4 %/h spread entries 18 % wide and piled the survivors at the path's edge)
        usual = hist.sigma_hour()
        sigma = (usual if usual is not None else sigma_hour) * math.sqrt(self.hold_s / 3600.0)
        ent, w, lo, hi = hist.entries(now, price, self.hold_s * LN2, sigma, z=UNSEEN_Z)
        parts_b, parts_l, parts_s = [], [], []
        for v in np.flatnonzero(ok):
            ratio, tier_w = self.placement.ratio[v], self.placement.w_eff[v]
            wl, ws = surviving_weights(ent, w, lo, hi, ratio, tier_w)
            amount = self.share * float(oi_usd[v])
            for s, ws_ in ((0, wl), (1, ws)):
                lp = ent[:, None] * ratio[s][None, :]
                keep = (ws_ > 0) & np.isfinite(lp) & (lp > 0)
                if not keep.any():
                    continue
                parts_b.append(buckets.index(lp[keep], step))
                usd = ws_[keep] * amount
                parts_l.append(usd if s == 0 else np.zeros_like(usd))
                parts_s.append(usd if s == 1 else np.zeros_like(usd))
        if not parts_b:
            out = empty
        else:
            b, inv = np.unique(np.concatenate(parts_b), return_inverse=True)
            out = (b.astype(np.int64), np.bincount(inv, np.concatenate(parts_l), len(b)),
                   np.bincount(inv, np.concatenate(parts_s), len(b)))
        self._key, self._out = key, out
        return out


def add_levels(a: tuple[np.ndarray, np.ndarray, np.ndarray],
               b: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two (bucket, long, short) level sets summed bucket by bucket (sorted buckets out)."""
    if not len(b[0]):
        return a
    if not len(a[0]):
        return b
    keys, inv = np.unique(np.concatenate([a[0], b[0]]), return_inverse=True)
    lo = np.bincount(inv, np.concatenate([a[1], b[1]]), len(keys))
    sh = np.bincount(inv, np.concatenate([a[2], b[2]]), len(keys))
    return keys.astype(np.int64), lo, sh
