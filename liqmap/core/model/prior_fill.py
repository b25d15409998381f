"""The priors (docs/model.md §3 steps 10–11): positions opened before the model saw anything. The cold-start
prior places a share of a venue's first OI sample around the price; the open-interest prior keeps each venue's
prior source topped up to a share of its public OI at entries the price history makes plausible.

Separate from :mod:`.synthetic` because the priors are an assumption about the unseen past, not something an
observed event placed: a reader judging what the map shows wants them in one place, apart from the flow steps.
A mixin of :class:`~liqmap.core.model.synthetic.SyntheticModel` (``self`` is one state of the model).
"""

from __future__ import annotations

import math

import numpy as np

from ..prior import PriceHistory, surviving_weights
from .placement import prior_entries
from .sources import NV

LN2 = math.log(2.0)
_FILL_EVERY_S = 120.0  # the OI prior's top-up runs at most this often per venue (core/prior.py)
_FILL_MIN_REL = 0.01  # ... and only for a gap above this share of the target


class PriorFill:
    """Cold-start prior and open-interest prior top-up of one state."""

    def _prior_sigma(self) -> float:
        """The OI prior's spread of the unseen past: the configured σ, or the realized volatility over the mean
        age of an entry (the prior's half-life / ln 2, at least an hour's)."""
        return self.prior_sigma or self._vol.sigma_hour() * math.sqrt(max(self._prior_hl_s, 3600.0) / 3600.0 / LN2)

    def _top_up_prior(self, row, hist: PriceHistory, sigma: float, last_price: float | None) -> None:
        """Open-interest prior (docs/model.md §3 step 11): hold venue ``v``'s positions at ``prior_oi_fill`` × its
        public OI. The gap between that and what this state holds for the venue (flow and prior, both sides) is
        opened as the venue's prior source at the entries :mod:`liqmap.core.prior` finds plausible and still
        alive, half long, half short. At most once per ``_FILL_EVERY_S`` per venue (the gap moves slowly)."""
        v = int(row["venue"])
        ts = float(row["ts"])
        if ts - self._last_fill[v] < _FILL_EVERY_S or self._W == 0:
            return
        price = last_price or (float(row["mark"]) if row["mark"] > 0 else 0.0)
        if not price > 0:
            return
        self._last_fill[v] = ts
        self._place_queued()  # what the state holds for the venue, queued opens included
        target = self.prior_fill * float(row["oi"]) * price
        mult = np.exp(self._lm[[v, NV + v]] - self._ref[[v, NV + v]])  # (2 sources, 2 sides)
        by_source = (self._base[[v, NV + v]].sum(axis=(1, 3)) * mult).sum(axis=1)  # (flow, prior) USD
        held = float(by_source.sum())
        if self.prior_held_cap > 0:
            # no more than the dollar scale would credit: most of a real OI is low-leverage, far from price
            target = min(target, self.prior_held_cap * float(by_source[0]))
        gap = target - held
        if not (gap > _FILL_MIN_REL * target and math.isfinite(gap)):
            return
        ent, w, lo, hi = hist.entries(ts, price, self._prior_hl_s, sigma)
        wl, ws = surviving_weights(ent, w, lo, hi, self.placement.ratio[v], self.placement.w_eff[v])
        amounts = (gap / 2.0 if wl.sum() > 0 else 0.0, gap / 2.0 if ws.sum() > 0 else 0.0)
        self._open(NV + v, ts, (ent, ent), (wl, ws), amounts)
        self.stats["prior_usd"] += sum(amounts)

    def _place_prior(self, v: int, ts: float, oi: float, mark: float) -> None:
        """Cold-start prior (docs/model.md §3 step 10): the OI open at venue ``v``'s first sample was opened before
        the model saw anything. Place ``prior_weight`` of it (USD at the mark, or the last traded price) as
        source ``NV + v``: half long, half short (no flow to split it by), entries spread log-normally around
        the price with ``prior_entry_sigma_pct`` (0 = all at the price) and the usual leverage tiers. It
        fades with ``prior_half_life_hours``, closes and is consumed like any level, and provenance reports
        it as ``prior_usd``."""
        price = mark if mark > 0 else (self.last_price or 0.0)
        amount = self.prior_weight * oi * price
        if not (amount > 0 and math.isfinite(amount)):
            return
        if self._W == 0:
            self._allocate(price)
        entries, w = prior_entries(price, self.prior_sigma)
        self._open(NV + v, ts, (entries, entries), (w, w), (amount / 2.0, amount / 2.0))
        self.stats["prior_usd"] += amount
