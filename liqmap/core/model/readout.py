"""Reads of one model state: the levels now, what built one bucket, totals per side, and the level profile per
history column (docs/model.md §3).

Separate from :mod:`.synthetic` because nothing here changes the state: these are the questions the engine and
the map ask between updates, and a reader looking for "what does the model report" should find them apart from
the event handling that writes the state. A mixin of :class:`~liqmap.core.model.synthetic.SyntheticModel`
(``self`` is the model: ``_base``, ``_lm``, ``_ref``, ``_b0``, ``_W``, ``_histories``).
"""

from __future__ import annotations

import math

import numpy as np

from ..events import VENUES
from .scale import dollar_scale
from .sources import EPS_USD, LONG_I, NS, NV, SHORT_I


def lev_label(lev: float) -> str:
    return f"{lev:g}x"


class LevelReadout:
    """The model's read-only questions (levels, provenance, totals, column profiles)."""

    def levels(self, venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Current (bucket index int64, long USD, short USD) of every nonzero bucket."""
        if self._W == 0:
            return np.empty(0, np.int64), np.empty(0), np.empty(0)
        abv = self._actual_by_venue()
        act = abv[self._venue_mask(venues)].sum(axis=0)  # (2, W)
        nz = np.flatnonzero((act[LONG_I] > EPS_USD) | (act[SHORT_I] > EPS_USD))
        lo = np.where(act[LONG_I, nz] > EPS_USD, act[LONG_I, nz], 0.0)
        sh = np.where(act[SHORT_I, nz] > EPS_USD, act[SHORT_I, nz], 0.0)
        k = self.usd_scale(venues, abv)
        if k != 1.0:
            lo, sh = lo * k, sh * k
        return (nz + self._b0).astype(np.int64), lo, sh

    def usd_scale(self, venues: tuple[str, ...] | None = None, actual: np.ndarray | None = None) -> float:
        """The factor every USD this model reports is multiplied by (core/model/scale.py): public OI ÷ the OI
        the model holds over these venues, in [1, ``dollar_scale_cap``]. The same for every bucket, so it never
        changes which levels rank first. 1 for the forecast's inner state (its parent scales it). ``actual``: the
        state's ``_actual_by_venue()`` when the caller already has it (a sum over every tier and slice)."""
        if self.dollar_cap <= 1.0 or self._W == 0 or not self.last_price:
            return 1.0
        held = (self._actual_by_venue() if actual is None else actual).sum(axis=(1, 2))  # (NS,)
        held = held[:NV] + held[NV:]
        mask = self._venue_mask(venues)[:NV]
        return dollar_scale(self._oi_now * self.last_price, held, mask, self.dollar_cap)

    @property
    def open_interest_usd(self) -> float:
        """The venues' latest open interest (one side, summed over venues) in USD at the last price: what the
        status reads and the dollar scale divides; NaN before any sample."""
        oi = self._oi_now[np.isfinite(self._oi_now)]
        if not len(oi) or not self.last_price:
            return math.nan
        return float(oi.sum()) * float(self.last_price)

    @property
    def consumed(self) -> np.ndarray:
        """Ledger of swept levels (CONSUMED_DTYPE rows, oldest first; the newest CONSUMED_CAPACITY kept)."""
        return self._ledger.rows

    def total_long(self, venues: tuple[str, ...] | None = None, scaled: bool = True) -> float:
        """USD of every long level (``scaled=False``: as placed, before the dollar scale — what ``stats`` count)."""
        if not self._W:
            return 0.0
        abv = self._actual_by_venue()
        k = self.usd_scale(venues, abv) if scaled else 1.0
        return float(abv[self._venue_mask(venues), LONG_I].sum()) * k

    def total_short(self, venues: tuple[str, ...] | None = None, scaled: bool = True) -> float:
        """USD of every short level (``scaled=False``: as placed, before the dollar scale)."""
        if not self._W:
            return 0.0
        abv = self._actual_by_venue()
        k = self.usd_scale(venues, abv) if scaled else 1.0
        return float(abv[self._venue_mask(venues), SHORT_I].sum()) * k

    draws_resting = True  # ``column_profiles`` can hand the resting layer's part apart (``rest_out``)

    def column_profiles(self, tf: str, col_lo: int, col_hi: int, row0: int, nrows: int,
                        venues: tuple[str, ...] | None = None,
                        rest_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(long, short) float32 arrays of shape (nrows, col_hi − col_lo): the level profile as it stood at the
        end of each column of ``tf`` (the current column: as it stands now; later columns and columns before
        the model had data: zero). Row ``i`` is bucket ``row0 + i``. ``rest_out`` (float32, the same shape,
        zeros): receives the resting layer's part of long + short, which the map draws in a hue of its own."""
        ncols = max(0, int(col_hi) - int(col_lo))
        nrows = max(0, int(nrows))
        out_l = np.zeros((nrows, ncols), np.float32)
        out_s = np.zeros((nrows, ncols), np.float32)
        h = self._hist.get(tf)
        if h is None:
            raise ValueError(f"unknown timeframe {tf!r}")
        if self._t is None or ncols == 0 or nrows == 0 or h.kb is None:
            return out_l, out_s
        vmask = self._venue_mask(venues)
        codes_l = np.array([2 * v for v in range(NS) if vmask[v]], np.int64)
        codes_s = codes_l + 1
        cur = int(math.floor(self._t / h.period))
        # past columns (their end boundary recorded): replay keyframe + deltas
        self._histories.replay(tf, col_lo, col_hi, row0, nrows, codes_l, codes_s, out_l, out_s)
        # the current column: the live state
        if col_lo <= cur < col_hi and self._W:
            act = self._actual_by_venue()[vmask].sum(axis=0)  # (2, W)
            lo_j, hi_j = int(row0) - self._b0, int(row0) + nrows - self._b0
            a, z = max(lo_j, 0), min(hi_j, self._W)
            if a < z:
                out_l[a - lo_j:z - lo_j, cur - col_lo] = act[LONG_I, a:z]
                out_s[a - lo_j:z - lo_j, cur - col_lo] = act[SHORT_I, a:z]
        np.maximum(out_l, 0, out=out_l)
        np.maximum(out_s, 0, out=out_s)
        k = self.usd_scale(venues)  # past columns at today's scale: the map's colours stay one scale
        if k != 1.0:
            out_l *= np.float32(k)
            out_s *= np.float32(k)
        rest = getattr(self, "_rest_cols", None)
        if rest is not None:  # the resting layer near price (docs/model.md §3 step 13), in the OI's own USD
            # the layer alone, then into the totals: each cell gets one record (or the current read), so the
            # totals are the same to the bit as adding it in place
            rl, rs = (out_l, out_s) if rest_out is None else (np.zeros_like(out_l), np.zeros_like(out_s))
            rest.fill(tf, col_lo, min(col_hi, cur), row0, nrows, vmask, rl, rs)
            if col_lo <= cur < col_hi:
                b, lo, sh = self.near_resting_levels(venues)
                j = b - int(row0)
                ok = (j >= 0) & (j < nrows)
                rl[j[ok], cur - col_lo] += lo[ok].astype(np.float32)
                rs[j[ok], cur - col_lo] += sh[ok].astype(np.float32)
            if rest_out is not None:
                out_l += rl
                out_s += rs
                rest_out += rl + rs
        return out_l, out_s


    def provenance(self, bucket: int) -> dict:
        """What built the level in ``bucket``: USD per side, per venue, per leverage tier, and its age."""
        out = {"long_usd": 0.0, "short_usd": 0.0, "venues": {}, "leverage": {}, "prior_usd": 0.0,
               "oldest": None, "newest": None}
        self._place_queued()
        j = int(bucket) - self._b0
        if not (0 <= j < self._W):
            return out
        vals = self._base[:, :, :, j] * np.exp(self._lm - self._ref)[:, None, :]  # (NS, K, 2)
        vals = np.where(vals > EPS_USD, vals, 0.0) * self.usd_scale()
        out["long_usd"] = float(vals[:, :, LONG_I].sum())
        out["short_usd"] = float(vals[:, :, SHORT_I].sum())
        # "prior": the part that is the cold-start prior (an assumption about OI opened before the model
        # started), not something an observed OI step placed here; it is included in long/short/venues/leverage
        out["prior_usd"] = float(vals[NV:].sum())
        per_v = vals[:NV].sum(axis=(1, 2)) + vals[NV:].sum(axis=(1, 2))
        out["venues"] = {VENUES[v]: float(per_v[v]) for v in range(NV) if per_v[v] > 0}
        per_k = vals.sum(axis=(0, 2))
        out["leverage"] = {lev_label(self.leverage[k]): float(per_k[k]) for k in range(self.K) if per_k[k] > 0}
        if out["long_usd"] + out["short_usd"] > 0:
            sides = [s for s in (LONG_I, SHORT_I) if vals[:, :, s].sum() > 0]
            old = min(self._oldest[s, j] for s in sides)
            new = max(self._newest[s, j] for s in sides)
            out["oldest"] = float(old) if math.isfinite(old) else None
            out["newest"] = float(new) if math.isfinite(new) else None
        return out
