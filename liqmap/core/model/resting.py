"""The resting layer (docs/model.md §3 step 13): most of a venue's open interest is low-leverage and held for days.

The model places what the OI *steps* it sees open, at the flow's leverage tiers (5–100×). That is what a normal hour
liquidates, but not what most of a venue's open interest is: positions at a few × held for days, whose liquidation
prices sit a third or more away (33–67 % at the default 1.5–3×), opened long before any history the model fetched. They matter the day price runs that far
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
- **Which are still open:** every (entry, tier) whose liquidation price the path since its entry crossed is gone
  (:func:`~liqmap.core.prior.surviving_weights`), and what was liquidated has been replaced by positions opened
  since at today's price (the OI is there, so someone holds it), whose liquidation prices are a third or more away.
  When price runs through them, the venue's OI falls by what was liquidated, and the layer with it.

Computed when read, from the model's own price history and OI samples: nothing here is consumed, decays or is
reconciled, because the path and the OI already say what was. Its USD is real (the OI's), so it is not put on the
flow's dollar scale (step 12).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import buckets
from ..prior import PriceHistory, surviving_weights
from ..timeframes import TIMEFRAMES
from .placement import Placement

LN2 = math.log(2.0)
# The unseen past's entries: a log-normal grid over ±3σ with about one point per bucket (at most this many). Each
# point is one line per tier; a coarser grid (41 points) drew combs, and the tooth just beyond the path's extreme
# stood 25x above every other row of the NEXT 1H strip twenty minutes into the demo.
MAX_UNSEEN_POINTS = 2001


class RestingLayer:
    """One asset's resting layer: the leverage tiers per venue and the shapes last read (cached per bar; the OI only
    weighs them)."""

    def __init__(self, params: dict, tiers, inverse: np.ndarray, typical: float):
        self.share = max(float(params.get("resting_share", 0.0)), 0.0)
        hold_h = float(params.get("resting_hold_hours", 24.0))
        # an exponential hold of mean H: the share still open after age a is e^(−a/H), a half-life of H·ln 2
        self.hold_s = hold_h * 3600.0 if hold_h > 0 and math.isfinite(hold_h) else 0.0
        self.placement = (Placement(params["resting_leverage_tiers"], params["resting_leverage_weights"], tiers,
                                    inverse, typical, 0.0) if self.share > 0 else None)
        self._key: tuple | None = None
        self._built: tuple[float, float] | None = None  # (time, step) the cached shapes were built at
        self._shapes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._read: tuple[np.ndarray, tuple] | None = None  # (OI amounts, levels) of the last read
        self._rec: tuple[float, float, tuple] | None = None  # (time, step, shapes) the column records re-weigh

    @property
    def on(self) -> bool:
        return self.placement is not None and self.hold_s > 0

    def levels(self, hist: PriceHistory | None, now: float | None, price: float | None, oi_usd: np.ndarray,
               step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bucket, long USD, short USD) of the resting positions still open, over the venues whose ``oi_usd``
        (per venue, NaN = no sample or not asked for) is known."""
        amount = self._amount(hist, now, price, oi_usd)
        if amount is None:
            return _EMPTY
        # The layer is linear in each venue's OI: the per-venue shapes (USD per unit of OI) are cached until the
        # path moves (a new bar, or the last bar's range by a bucket: the traded price is in it), and an OI sample
        # only re-weighs them (the engine reads the forecast at every ingest; a shape costs ~11 ms with five
        # venues and a day of bars). The price's own bucket is not in the key: within the last bar's range it
        # changes no survival, and it places only what was reopened today, a third or more away.
        key = _path_key(hist, step)
        if key != self._key:
            self._shapes = self._unit_shapes(hist, now, price, step)
            self._key, self._read, self._built = key, None, (now, step)
        # one ingest reads the layer several times with the same OI (the forecast's levels, the reports' levels, the
        # clusters' resting part): the last read is kept for the same shapes and amounts
        if self._read is not None and np.array_equal(self._read[0], amount):
            return self._read[1]
        out = _weigh(self._shapes, amount)
        for x in out:  # handed to every reader of this OI: none may change it
            x.flags.writeable = False
        self._read = (amount, out)
        return out

    def record_levels(self, hist: PriceHistory | None, now: float | None, price: float | None, oi_usd: np.ndarray,
                      step: float, stale_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`levels` for the map's column record (:class:`RestingColumns`): shapes built within ``stale_s``
        will do, the forecast's own if they are that fresh, else the record's (kept apart, so that what the forecast
        reads never depends on when a column ended)."""
        amount = self._amount(hist, now, price, oi_usd)
        if amount is None:
            return _EMPTY
        if self._key == _path_key(hist, step) or (self._built is not None and self._built[1] == step
                                                  and now - self._built[0] < stale_s):
            return _weigh(self._shapes, amount)
        if self._rec is None or self._rec[1] != step or now - self._rec[0] >= stale_s:
            self._rec = (now, step, self._unit_shapes(hist, now, price, step))
        return _weigh(self._rec[2], amount)

    def reaches(self, hist: PriceHistory | None, price: float | None, frac: float) -> bool:
        """Whether any of the layer can sit within ±``frac`` of ``price``: a bound from the extreme entries (the
        path's low and high, the unseen past's ±3σ) and the tiers' extreme ratios, no shape built. The column
        records ask it first; in a market that has not run a fifth of the price the answer is no."""
        if not self.on or hist is None or not hist.minute or not price:
            return False
        usual = hist.sigma_hour()
        if usual is None:
            return False
        sigma = usual * math.sqrt(self.hold_s / 3600.0)
        first = hist.first_price or price
        top = max(max(hist.high), first * math.exp(3.0 * sigma), price)
        bottom = min(min(hist.low), first * math.exp(-3.0 * sigma), price)
        ratio = self.placement.ratio
        if not np.isfinite(ratio).any():
            return False
        long_hi = float(np.nanmax(ratio[:, 0])) * top  # the highest a long's liquidation price can be
        short_lo = float(np.nanmin(ratio[:, 1])) * bottom  # the lowest a short's
        return long_hi >= price * (1.0 - frac) or short_lo <= price * (1.0 + frac)

    def _amount(self, hist, now, price, oi_usd) -> np.ndarray | None:
        ok = np.isfinite(oi_usd) & (oi_usd > 0)
        if not self.on or hist is None or not hist.minute or now is None or not price or not ok.any():
            return None
        return self.share * np.where(ok, oi_usd, 0.0)

    def _unit_shapes(self, hist: PriceHistory, now: float, price: float,
                     step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(buckets, (NV, n) long share, (NV, n) short share): where one USD of each venue's resting positions
        per side sits now (each venue's own liquidation prices)."""
        # the unseen entries' spread: a holding time's walk at the market's usual volatility (the bars' median move,
        # not this hour's: a cascade's 3-4 %/h spread entries 18 % wide and piled the survivors at the path's edge)
        usual = hist.sigma_hour()
        nv = len(self.placement.ratio)
        if usual is None:
            # under half an hour of bars there is no usual volatility to spread the unseen past by; the last
            # minutes' realized one spread it 15-30 % wide, and in a 90-second replay its smooth mass outweighed the
            # flow 50:1, so no cluster reached NEXT 1H's 2 % floor and the forecast printed none
            return np.empty(0, np.int64), np.zeros((nv, 0)), np.zeros((nv, 0))
        sigma = usual * math.sqrt(self.hold_s / 3600.0)
        first = hist.first_price or price
        n = int(min(max(math.ceil(first * (math.exp(3.0 * sigma) - math.exp(-3.0 * sigma)) / step), 13),
                    MAX_UNSEEN_POINTS)) | 1  # odd: the first price itself is a point
        ent, w, lo, hi = hist.entries(now, price, self.hold_s * LN2, sigma, z=np.linspace(-3.0, 3.0, n))
        ent_s = np.r_[ent, price]
        parts_v, parts_b, parts_l, parts_s = [], [], [], []
        for v in range(nv):
            ratio, tier_w = self.placement.ratio[v], self.placement.w_eff[v]
            if not np.isfinite(ratio).any():
                continue
            wl, ws = surviving_weights(ent, w, lo, hi, ratio, tier_w, renormalize=False)
            for s, ws_ in ((0, wl), (1, ws)):
                # what price liquidated was replaced by positions opened since, at today's price: the OI is
                # there (spreading it over the survivors instead multiplied the few left just beyond a rally's
                # high by up to 30x: seed 1's BTC doubled, and the layer held $1.5-8bn of shorts within 5 % where
                # the truth had $40-720M)
                ws_ = np.vstack([ws_, max(1.0 - float(ws_.sum()), 0.0) * tier_w[None, :]])
                lp = ent_s[:, None] * ratio[s][None, :]
                keep = (ws_ > 0) & np.isfinite(lp) & (lp > 0)
                if not keep.any():
                    continue
                parts_b.append(buckets.index(lp[keep], step))
                parts_v.append(np.full(int(keep.sum()), v))
                share = ws_[keep]
                parts_l.append(share if s == 0 else np.zeros_like(share))
                parts_s.append(share if s == 1 else np.zeros_like(share))
        if not parts_b:
            return np.empty(0, np.int64), np.zeros((nv, 0)), np.zeros((nv, 0))
        b, inv = np.unique(np.concatenate(parts_b), return_inverse=True)
        cell = np.concatenate(parts_v) * len(b) + inv
        unit_l = np.bincount(cell, np.concatenate(parts_l), nv * len(b)).reshape(nv, len(b))
        unit_s = np.bincount(cell, np.concatenate(parts_s), nv * len(b)).reshape(nv, len(b))
        return b.astype(np.int64), unit_l, unit_s


_EMPTY = (np.empty(0, np.int64), np.empty(0), np.empty(0))


def _path_key(hist: PriceHistory, step: float) -> tuple:
    return (hist.minute[-1], len(hist.minute), buckets.index_of(hist.low[-1], step),
            buckets.index_of(hist.high[-1], step), step)


def _weigh(shapes: tuple[np.ndarray, np.ndarray, np.ndarray],
           amount: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b, unit_l, unit_s = shapes
    if not len(b):
        return _EMPTY
    lo, sh = amount @ unit_l, amount @ unit_s
    keep = (lo > 0) | (sh > 0)
    return b[keep], lo[keep], sh[keep]


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


# How old the shapes a column record re-weighs may be. A record is taken at every minute's boundary, and a shape is
# 5-11 ms: rebuilt each minute it took the 6-hour back-fill of 65 assets from 7 s to minutes. The layer sits a third
# of the price or more from its entries, so a quarter-hour's path changes which of it is near price very little;
# live the forecast's reads rebuild the shapes at each new bar anyway, and a record reuses those.
RECORD_STALE_S = 900.0
# a record keeps, per side, the span of buckets holding more than this share of the layer's whole USD (the venues'
# amounts): in a market that has not run a third of the price, what reaches within 15 % is the unseen past's far tail
# (the demo: $9k over 700 buckets beside $38M of flow), which no colour would show
RECORD_FLOOR = 1e-5


class RestingColumns:
    """The resting layer as the map's columns draw it (docs/model.md §3 step 13): what it held near price at the
    end of each column, for every timeframe. The flow's column history (``history.py``) replays the model's state;
    this layer has no state to replay (it is read from the path and the OI), so each boundary keeps the read itself:
    ``((first bucket, long USD ÷ scale as float16, scale), (the same for shorts), per-venue USD)``, each side over the
    span near price that holds anything, one record shared by every timeframe whose boundary it is. Usually empty:
    the layer sits a third of the price from its entries and comes near only after a run that far."""

    def __init__(self, columns: int):
        self.capacity = max(1, int(columns)) + 1
        self.by_tf: dict[str, tuple[int, dict[int, tuple]]] = {tf: (per, {}) for tf, per in TIMEFRAMES.items()}

    def record(self, t0: float, t: float, read: Callable[[], tuple | None]) -> None:
        """The clock moved from ``t0`` to ``t``: every boundary crossed gets the layer as ``read()`` gives it now
        (one read, however many boundaries; None: nothing near price)."""
        rec: tuple | None = None
        done = False
        for per, recs in self.by_tf.values():
            b_from, b_to = int(math.floor(t0 / per)) + 1, int(math.floor(t / per))
            if b_to < b_from:
                continue
            if not done:
                rec, done = read(), True
            if rec is not None:
                for b in range(max(b_from, b_to - self.capacity + 1), b_to + 1):
                    recs[b] = rec
            old = b_to - self.capacity
            for b in [b for b in recs if b <= old]:
                del recs[b]

    def fill(self, tf: str, col_lo: int, col_hi: int, row0: int, nrows: int, venue_mask: np.ndarray,
             out_l: np.ndarray, out_s: np.ndarray) -> None:
        """Add the recorded layer into the past columns of ``tf`` in [col_lo, col_hi) (rows ``row0 ..``). A venue
        subset takes its share of the record by the venues' OI (their margin tables differ by far less than a
        bucket at the layer's 1.5-3x)."""
        per, recs = self.by_tf[tf]
        if not recs:
            return
        for b, rec in recs.items():
            c = b - 1
            if not col_lo <= c < col_hi:
                continue
            *sides, amount = rec
            tot = float(amount.sum())
            k = float(amount[venue_mask[:len(amount)]].sum()) / tot if tot > 0 else 0.0
            if k <= 0:
                continue
            for (b0, q, scale), out in zip(sides, (out_l, out_s)):
                a, z = max(b0, row0), min(b0 + len(q), row0 + nrows)
                if a < z:
                    out[a - row0:z - row0, c - col_lo] += (k * scale) * q[a - b0:z - b0].astype(out.dtype)

    def rebin(self, old_step: float, new_step: float) -> None:
        """A rebucket: every record into the new step (each shared record once)."""
        done: dict[int, tuple] = {}
        for _, recs in self.by_tf.values():
            for b, rec in recs.items():
                if id(rec) not in done:
                    done[id(rec)] = _rebin_record(rec, old_step, new_step)
                recs[b] = done[id(rec)]

    def nbytes(self) -> int:
        seen = {id(r): r for _, recs in self.by_tf.values() for r in recs.values()}
        return sum(r[0][1].nbytes + r[1][1].nbytes + r[2].nbytes + 32 for r in seen.values())


def column_record(b: np.ndarray, lo: np.ndarray, sh: np.ndarray, amount: np.ndarray) -> tuple | None:
    """A column record from (bucket, long, short) levels and the per-venue USD they were read with: per side, the
    dense span between its first and last bucket above ``RECORD_FLOOR`` of the whole, as float16 × a scale (three
    significant digits, as the flow's column history keeps: the colour ramp needs far less); None if neither side
    has one."""
    amount = np.asarray(amount, np.float32)
    floor = RECORD_FLOOR * float(amount.sum())
    sides = []
    for v in (lo, sh):
        keep = np.flatnonzero(v > floor) if len(b) else np.empty(0, np.int64)
        if not len(keep):
            sides.append((0, _NO_Q, 0.0))
            continue
        b0 = int(b[keep[0]])
        dense = np.zeros(int(b[keep[-1]]) - b0 + 1)
        dense[b[keep] - b0] = v[keep]
        sides.append(_quantized(b0, dense))
    if not len(sides[0][1]) and not len(sides[1][1]):
        return None
    return sides[0], sides[1], amount


_NO_Q = np.zeros(0, np.float16)


def _quantized(b0: int, dense: np.ndarray) -> tuple[int, np.ndarray, float]:
    scale = float(dense.max()) / 1024.0  # the largest at 1024: float16's full precision, far from its 65504 top
    if not scale > 0:
        return b0, _NO_Q, 0.0
    return b0, (dense / scale).astype(np.float16), scale


def _rebin_record(rec: tuple, old_step: float, new_step: float) -> tuple:
    *sides, amount = rec
    out = []
    for b0, q, scale in sides:
        if not len(q):
            out.append((b0, q, scale))
            continue
        nb = buckets.index((np.arange(len(q)) + b0 + 0.5) * old_step, new_step)
        keys, inv = np.unique(nb, return_inverse=True)
        dense = np.zeros(int(keys[-1] - keys[0]) + 1)
        np.add.at(dense, keys[inv] - keys[0], q.astype(np.float64) * scale)
        out.append(_quantized(int(keys[0]), dense))
    return out[0], out[1], amount
