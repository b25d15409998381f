"""Where opened positions would be liquidated (docs/model.md §3 steps 4–5): leverage tiers and bands → liquidation
prices → (side, tier, bucket, USD) slices for the state to add.

With the position notional fixed at entry, a tier's liquidation price is a fixed ratio of its entry price per
(venue, side, tier) — so placing an interval is one multiply per (entry, tier), not a tier-table lookup per
position. ``leverage_spread`` > 0 makes each tier stand for a band of leverages and spreads its mass evenly in
price over the band's liquidation prices.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import buckets
from ..events import VENUES
from ..tiers import TierTable, liq_price_tiered
from .sources import LONG_I, NV, SHORT_I


@dataclass
class BandSlices:
    """Spread-band slices of one open: per slice (entry × tier) its side ``ss``, tier ``kk`` and bucket count
    ``n``; per (slice, bucket) pair, slice-major, its bucket ``b`` and USD ``a``. The per-pair side and tier
    are only expanded (``pairs``) when a caller needs them: the common path keys pairs per slice."""

    ss: np.ndarray
    kk: np.ndarray
    n: np.ndarray
    b: np.ndarray
    a: np.ndarray

    @property
    def total(self) -> int:
        return len(self.b)

    @property
    def b_min(self) -> int:
        return int(self.b.min()) if len(self.b) else 0

    @property
    def b_max(self) -> int:
        return int(self.b.max()) if len(self.b) else -1

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(side, tier, bucket, USD) per pair."""
        return np.repeat(self.ss, self.n), np.repeat(self.kk, self.n), self.b, self.a


class Placement:
    """The leverage tiers of one asset on every venue, and the liquidation price ratios they imply.

    ``leverage`` / ``weights`` are the configured tiers ``W(L)``; per venue, tiers above the venue's max
    leverage are dropped and the rest renormalized (all weight on the lowest tier, at the cap, if none is
    left); ``typical`` is the position notional a tier stands for (capped by what that leverage allows).
    ``spread`` > 0 builds the leverage bands (``ratio_band``) used instead of the tiers' exact prices."""

    def __init__(self, leverage, weights, tiers: dict[str, TierTable], inverse: np.ndarray, typical: float,
                 spread: float):
        lev = np.asarray(leverage, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        if lev.ndim != 1 or len(lev) == 0 or len(lev) != len(w):
            raise ValueError("model: leverage_tiers and leverage_weights need the same, non-zero length")
        if not (np.all(np.isfinite(lev)) and np.all(lev > 1.0) and np.all(np.isfinite(w)) and np.all(w >= 0)
                and w.sum() > 0):
            raise ValueError("model: leverage tiers must be > 1x and weights non-negative, not all zero")
        self.tiers = tiers
        self.inverse = inverse
        self.leverage = lev
        self.K = len(lev)
        self.lev_eff = np.zeros((NV, self.K))
        self.w_eff = np.zeros((NV, self.K))
        self.notional = np.zeros((NV, self.K))
        for v, name in enumerate(VENUES):
            t = tiers[name]
            ok = lev <= t.max_leverage + 1e-9
            le = lev.copy()
            ww = np.where(ok, w, 0.0)
            if ww.sum() <= 0:
                # every configured tier is above this venue's cap: all weight on the lowest tier, at the cap
                k0 = int(np.argmin(lev))
                ww = np.zeros_like(w)
                ww[k0] = 1.0
                le[k0] = t.max_leverage
            self.lev_eff[v] = le
            self.w_eff[v] = ww / ww.sum()
            cap = np.asarray(t.max_notional_at(le), dtype=np.float64)
            self.notional[v] = np.clip(np.minimum(typical, cap * (1 - 1e-9)), 1e-6, None)
        # Liquidation price / entry for each (venue, side, tier). With the position notional N fixed at entry,
        # LP/E = ((1 − s/L) − s·cum/N)/(1 − s·m) (linear) or 1/(1 + s(1/L − m + cum/N)) (inverse), and the
        # tier at the liquidation price (notional N·LP/E) does not depend on E either: so it is one number.
        self.ratio = np.full((NV, 2, self.K), np.nan)
        for v, name in enumerate(VENUES):
            for s, side in ((LONG_I, 1.0), (SHORT_I, -1.0)):
                self.ratio[v, s] = liq_price_tiered(1.0, self.lev_eff[v], side, self.notional[v],
                                                    tiers[name], inverse=bool(inverse[v]))
        self.ratio[self.w_eff[:, None, :].repeat(2, axis=1) <= 0] = np.nan
        self.spread = spread
        self.ratio_band = self._leverage_bands(spread) if spread > 0 else None

    def _leverage_bands(self, spread: float) -> np.ndarray:
        """(NV, 2, K, 2) liquidation price / entry at the low and high edge of each tier's leverage band.

        Tier k stands for the leverages between the geometric midpoints to its neighbours; ``spread`` (0..1)
        narrows that band around the tier as an exponent (1 = the whole band, 0.2 = a fifth of it in log
        leverage). Edges are capped by the venue's max leverage for the position; NaN where a tier is unused."""
        lev = self.leverage
        order = np.argsort(lev)
        ls = lev[order]
        mids = np.sqrt(ls[1:] * ls[:-1]) if len(ls) > 1 else np.empty(0)
        lo_edge = np.concatenate([[ls[0] ** 2 / mids[0]] if len(mids) else [ls[0] / 1.5], mids])
        hi_edge = np.concatenate([mids, [ls[-1] ** 2 / mids[-1]] if len(mids) else [ls[-1] * 1.5]])
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        lo_edge, hi_edge = lo_edge[inv], hi_edge[inv]
        band = np.full((NV, 2, self.K, 2), np.nan)
        for v, name in enumerate(VENUES):
            t = self.tiers[name]
            le = self.lev_eff[v]
            l_lo = np.maximum(le * (lo_edge / lev) ** spread, 1.0 + 1e-6)
            l_hi = np.minimum(le * (hi_edge / lev) ** spread,
                              np.maximum(np.asarray(t.max_leverage_for(self.notional[v])), le))
            for s, side in ((LONG_I, 1.0), (SHORT_I, -1.0)):
                for e, l_e in enumerate((l_lo, l_hi)):
                    band[v, s, :, e] = liq_price_tiered(1.0, l_e, side, self.notional[v], t,
                                                        inverse=bool(self.inverse[v]))
        band[~np.isfinite(band)] = np.nan
        band[self.w_eff[:, None, :].repeat(2, axis=1) <= 0] = np.nan
        return np.sort(band, axis=-1)

    def thin_slices(self, v: int, entries, weights, amounts, step: float, stats: dict):
        """(side, tier, bucket, USD) of each (entry, tier) at the tier's exact liquidation bucket, or None when
        neither side has anything to place. Unpriceable slices are counted as ``unplaced_usd``."""
        parts_s, parts_k, parts_idx, parts_a = [], [], [], []
        for s in (LONG_I, SHORT_I):
            amount = amounts[s]
            if not (amount > 0 and math.isfinite(amount)):
                continue
            rho = self.ratio[v, s]  # (K,)
            wk = self.w_eff[v]
            lp = entries[s][:, None] * rho[None, :]  # (n, K)
            amt = amount * weights[s][:, None] * wk[None, :]
            ok = np.isfinite(lp) & (lp > 0) & (wk[None, :] > 0)
            if not ok.all():
                stats["unplaced_usd"] += float(amt[~ok & (wk[None, :] > 0)].sum())
            kk = np.nonzero(ok)[1]  # the tier of each kept (entry, tier), row-major like ``lp[ok]``
            parts_s.append(np.full(len(kk), s))
            parts_k.append(kk)
            parts_idx.append(buckets.index(lp[ok], step))
            parts_a.append(amt[ok])
        if not parts_s:
            return None
        return tuple(np.concatenate(x) for x in (parts_s, parts_k, parts_idx, parts_a))

    def band_slices(self, v: int, entries, weights, amounts, step: float, b0: int, width: int,
                    window_for: Callable[[np.ndarray, np.ndarray], int], stats: dict):
        """(side, tier, bucket, USD) with each (entry, tier) slice spread evenly over its band of prices.

        ``b0`` / ``width`` are the state window's first bucket and length; ``window_for(lo, hi)`` returns the
        window's first bucket for a side's band edges (it may move the window to the price first). The window
        clipping is per side (a side may recenter the window); the per-bucket expansion — the part proportional
        to the band widths — runs once over both sides' slices. Returns :class:`BandSlices`."""
        sides = [s for s in (LONG_I, SHORT_I) if amounts[s] > 0 and math.isfinite(amounts[s])]
        if not sides:
            none = np.empty(0, np.int64)
            return BandSlices(none, none, none, none, np.empty(0))
        # both sides' (entry, tier) slices as one (rows, K) table, rows side-major
        row_s = np.concatenate([np.full(len(entries[s]), s) for s in sides])
        ent = np.concatenate([entries[s] for s in sides]) if len(sides) > 1 else entries[sides[0]]
        wgt = np.concatenate([weights[s] for s in sides]) if len(sides) > 1 else weights[sides[0]]
        row_amt = np.array([amounts[s] for s in sides])[np.searchsorted(sides, row_s)]
        wk = self.w_eff[v]
        band = self.ratio_band[v][row_s]  # (rows, K, 2)
        lo = ent[:, None] * band[:, :, 0]
        hi = ent[:, None] * band[:, :, 1]
        amt = row_amt[:, None] * wgt[:, None] * wk[None, :]
        ok = np.isfinite(lo) & np.isfinite(hi) & (lo > 0) & (wk[None, :] > 0)
        bad = ~ok & (wk[None, :] > 0)
        if bad.any():
            for s in sides:
                r = row_s == s
                stats["unplaced_usd"] += float(amt[r][bad[r]].sum())
        if ok.all():
            ss, kk = np.repeat(row_s, self.K), np.tile(np.arange(self.K), len(row_s))
            lo, hi, amt = lo.ravel(), hi.ravel(), amt.ravel()
        else:
            rows, kk = np.nonzero(ok)  # row-major, like ``lo[ok]``
            ss = row_s[rows]
            lo, hi, amt = lo[ok], hi[ok], amt[ok]
        if len(lo) and lo.min() >= b0 * step and hi.max() < (b0 + width) * step:
            # the usual case: every band inside the window as it stands. Nothing recentres, clips or drops, so
            # the window bookkeeping below would return these same arrays (an inside share of exactly 1)
            b_min, b_max = b0, b0 + width - 1
        else:
            ss, kk, lo, hi, amt, b_min, b_max = self._clip_to_window(sides, ss, kk, lo, hi, amt, step, width,
                                                                     window_for, stats)
        return self._spread(ss, kk, lo, hi, amt, b_min, b_max, step)

    @staticmethod
    def _clip_to_window(sides, ss, kk, lo, hi, amt, step, width, window_for, stats):
        """The slices clipped to the window (each side checks it in turn, and may recentre it), with the
        part outside counted as ``dropped_usd``; (ss, kk, lo, hi, amt, first bucket, last bucket)."""
        edges = [0, *np.searchsorted(ss, sides[1:]).tolist(), len(ss)]  # each side's elements: contiguous
        parts = [slice(edges[i], edges[i + 1]) for i in range(len(sides))]
        # a band can be far wider than the window in buckets (tiny steps): only the window's part is
        # spread, the rest is counted as dropped (as a level outside the window would be). Each side checks
        # the window in turn (the first may recenter it for the second).
        win_lo = np.empty(len(lo))
        win_hi = np.empty(len(lo))
        b_min = np.empty(len(lo), np.int64)
        for part in parts:
            b0 = window_for(lo[part], hi[part])
            win_lo[part], win_hi[part], b_min[part] = b0 * step, (b0 + width) * step, b0
        width0 = hi - lo
        lo_c, hi_c = np.clip(lo, win_lo, win_hi), np.clip(hi, win_lo, win_hi)
        inside_share = np.where(width0 > 0, (hi_c - lo_c) / np.where(width0 > 0, width0, 1.0),
                                ((lo >= win_lo) & (lo < win_hi)).astype(np.float64))
        lost = amt * (1.0 - inside_share)
        for part in parts:
            stats["dropped_usd"] += float(lost[part].sum())
        keep = inside_share > 0
        ss, kk, lo, hi, amt = ss[keep], kk[keep], lo_c[keep], hi_c[keep], (amt * inside_share)[keep]
        return ss, kk, lo, hi, amt, b_min[keep], b_min[keep] + width - 1

    @staticmethod
    def _spread(ss, kk, lo, hi, amt, b_min, b_max, step) -> BandSlices:
        """Each slice's USD over the buckets of [lo, hi] (clamped to [b_min, b_max]), by overlap."""
        b_lo = np.clip(buckets.index(lo, step), b_min, b_max)
        b_hi = np.clip(np.maximum(buckets.index(hi, step), b_lo), b_min, b_max)
        n = b_hi - b_lo + 1
        total = int(n.sum())
        first = np.cumsum(n) - n
        b = np.repeat(b_lo - first, n)
        b += np.arange(total)  # bucket of each (slice, bucket) pair
        bw = hi - lo
        pos = bw > 0
        # each pair's share of its slice: the overlap of the bucket with the band over the band's width (a
        # zero-width band: 1/n). The per-pair arithmetic is most of an open's cost, so it runs in place, in
        # the same operations and order as written out: min(hi, right edge) − max(lo, left edge), clipped at
        # 0, ÷ width, × the slice's USD.
        ov = np.minimum(np.repeat(hi, n), (b + 1) * step)
        ov -= np.maximum(np.repeat(lo, n), b * step)
        if pos.all():
            np.clip(ov, 0.0, None, out=ov)
            ov /= np.repeat(bw, n)
            ov *= np.repeat(amt, n)
            a = ov
        else:
            w_safe = np.where(pos, bw, 1.0)
            frac = np.where(np.repeat(pos, n), np.clip(ov, 0.0, None) / np.repeat(w_safe, n), np.repeat(1.0 / n, n))
            a = np.repeat(amt, n) * frac
        return BandSlices(ss, kk, n, b, a)


def prior_entries(price: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Entries of a cold-start prior around ``price``: log-normal with ``sigma`` over 25 points (or the price
    alone when ``sigma`` is 0), and their weights."""
    if sigma > 0:
        z = np.linspace(-3.0, 3.0, 25)
        entries = price * np.exp(z * sigma)
        w = np.exp(-0.5 * z * z)
        w /= w.sum()
        return entries, w
    return np.array([price]), np.ones(1)
