"""Writes to one state's levels (docs/model.md §3 steps 5–7, 9): opening placed positions into the window,
proportional closes, consumption by trades (with the ``consumed`` ledger rows) and reconciliation with real
liquidations.

Separate from :mod:`.synthetic` because these run once per state (the map's levels and the forecast's wider
bands) while the flow that feeds them is worked out once per model: :mod:`.synthetic` holds the order events
arrive in, this module what each state does with them. A mixin of
:class:`~liqmap.core.model.synthetic.SyntheticModel` (``self`` is one state).
"""

from __future__ import annotations

import math

import numpy as np

from .. import buckets
from .ledger import CONSUMED_DTYPE
from .sources import EPS_USD, LONG_I, NV, SHORT_I
from .window import _FOLD_AT

_ZERO_FACTOR = 1e-12  # a close leaving less than this share zeroes the side outright


class TradeReach:
    """Where a column's trades went, in absolute buckets (the same for every state of a model): the running
    low (negated, ascending for ``searchsorted``) and high after each trade, and the trades' times."""

    __slots__ = ("ts", "neg_run_min", "run_max", "low", "high")

    def __init__(self, tr: np.ndarray, step: float):
        tb = buckets.index(tr["price"], step)
        self.ts = tr["ts"]
        self.neg_run_min = -np.minimum.accumulate(tb)
        self.run_max = np.maximum.accumulate(tb)
        self.low, self.high = -int(self.neg_run_min[-1]), int(self.run_max[-1])


class LevelBook:
    """Open, close, consume and reconcile the levels of one state."""

    def _add_band(self, src: int, ts: float, bs) -> None:
        """:meth:`_open`'s dense path for spread bands that fit the window: the (tier, side, bucket) keys come
        from each slice's code plus the pair's bucket, so the per-pair side, tier and window index arrays are
        never built. Same sums in the same order as the general path."""
        w = self._W
        code = (bs.kk.astype(np.int64) * 2 + bs.ss) * w - self._b0  # per slice
        key = np.repeat(code, bs.n)
        key += bs.b
        k0 = int(key.min())
        key -= k0
        size = int(key.max()) + 1
        hit = np.flatnonzero(np.bincount(key, minlength=size))
        a = np.bincount(key, weights=bs.a, minlength=size)[hit]
        hit += k0  # = the flat index into base[src] (K, 2, W): (tier·2 + side)·W + window index
        ss, j = (hit // w) % 2, hit % w
        # one gather/scatter on the flat views instead of three-index fancy indexing (same values, same adds)
        gain = np.exp(self._ref[src] - self._lm[src])[ss]
        flat = self._base[src].reshape(-1)
        self._sums[src] = np.nan
        flat[hit] += a * gain
        self._held[src] = True
        sj = ss * w + j  # flat index into the (2, W) side × bucket arrays
        old, new = self._oldest.reshape(-1), self._newest.reshape(-1)
        old[sj] = np.minimum(old[sj], ts)
        new[sj] = np.maximum(new[sj], ts)
        self._occ.reshape(-1)[sj] = True
        self._touch(src, ss, j + self._b0)
        self.stats["added_usd"] += float(a.sum())

    def _open(self, v: int, ts: float, entries: tuple[np.ndarray, np.ndarray], weights: tuple[np.ndarray, np.ndarray],
              amounts: tuple[float, float], ext: list | None = None) -> None:
        """Place new positions of source ``v``: per side, entries × leverage tiers at their liquidation buckets
        (``ext``: the open's :func:`~.pending.open_extent`, when the caller worked it out for every state)."""
        src, v = v, v % NV  # ``v`` may be a prior source (NV + venue): same venue contract and tiers
        q = self._queue
        if q is not None and self._W and q.offer(src, ts, entries, weights, amounts,
                                                 lambda: np.exp(self._ref[src] - self._lm[src]), self.step,
                                                 self._b0, self._W, self._off_centre, self.stats, ext):
            return
        self._place_queued()  # this one may move the window: everything before it lands first
        pl = self.placement
        if pl.ratio_band is not None:
            bs = pl.band_slices(v, entries, weights, amounts, self.step, self._b0, self._W, self._window_for,
                                self.stats)
            if bs.total and bs.b_min >= self._b0 and bs.b_max < self._b0 + self._W and bs.total > 64:
                self._add_band(src, ts, bs)
                return
            ss, kk, idx, a = bs.pairs()
        else:
            sl = pl.thin_slices(v, entries, weights, amounts, self.step, self.stats)
            if sl is None:
                return
            ss, kk, idx, a = sl
        if len(idx) == 0:
            return
        j = idx - self._b0
        if len(idx) > 64 and int(j.min()) >= 0 and int(j.max()) < self._W:
            # many slices per bucket (spread bands): sum them per (tier, side, bucket) with a dense bincount
            # over the window — no sort; same order of additions as summing per unique key
            key = (kk.astype(np.int64) * 2 + ss) * self._W + j
            size = self.K * 2 * self._W
            hit = np.flatnonzero(np.bincount(key, minlength=size))
            a = np.bincount(key, weights=a, minlength=size)[hit]
            kk, ss, j = hit // (2 * self._W), (hit // self._W) % 2, hit % self._W
            idx = j + self._b0
        elif len(idx) > 64:  # many slices per bucket: sum them first (np.add.at is slow per element)
            key = (kk.astype(np.int64) * 2 + ss) * (1 << 40) + (idx - idx.min())
            u, inv = np.unique(key, return_inverse=True)
            a = np.bincount(inv, weights=a, minlength=len(u))
            kk, ss, idx = (u >> 40) // 2, (u >> 40) % 2, (u & ((1 << 40) - 1)) + idx.min()
            j = idx - self._b0
        if np.any((j < 0) | (j >= self._W)):
            self._recenter()
            j = idx - self._b0
            inside = (j >= 0) & (j < self._W)
            if not inside.all():
                self.stats["dropped_usd"] += float(a[~inside].sum())
                ss, kk, j, a, idx = ss[inside], kk[inside], j[inside], a[inside], idx[inside]
            if len(j) == 0:
                return
        self._place(src, ts, kk, ss, j, idx, a, summed=len(idx) > 64)

    def _place(self, src: int, ts: float, kk, ss, j, idx, a, summed: bool) -> None:
        """Add USD ``a`` at (tier, side, window index) into source ``src`` (``summed``: keys are unique)."""
        gain = np.exp(self._ref[src, ss] - self._lm[src, ss])
        self._sums[src] = np.nan
        if summed:  # summed per (tier, side, bucket) above: no duplicates, plain indexing adds
            self._base[src][kk, ss, j] += a * gain
        else:
            np.add.at(self._base[src], (kk, ss, j), a * gain)
        self._held[src] = True
        self._oldest[ss, j] = np.minimum(self._oldest[ss, j], ts)  # one ts for all: duplicates agree
        self._newest[ss, j] = np.maximum(self._newest[ss, j], ts)
        self._occ[ss, j] = True
        self._touch(src, ss, idx)
        self.stats["added_usd"] += float(a.sum())

    def _place_queued(self) -> None:
        """Place every queued open (pending.py) in one pass: the same adds as :meth:`_add_band` / :meth:`_place`
        open by open, summed per bucket over the opens."""
        q = self._queue
        if q is None or not q.items:
            return
        history = bool(self._histories.by_tf)
        # the forecast's state keeps no history and nobody asks it for provenance: it keeps no ages either
        out = q.take(self._base, self._occ, (self._oldest, self._newest) if history else None, self.step,
                     self._b0, history)
        if out is None:
            return
        src, keys = out
        self._sums[src] = np.nan
        self._held[src] = True
        if keys is not None and len(keys):
            self._histories.touch(keys)

    def _close(self, v: int, s: int, usd: float) -> None:
        """Close ``usd`` of venue ``v``'s side ``s`` proportionally over its levels (flow and prior alike:
        a position opened before the model started closes as readily as one it saw open)."""
        if usd <= 0:
            return
        srcs = (v, NV + v)
        queued = self._queue.totals if self._queue is not None else None
        totals = []
        for x in srcs:
            qx = float(queued[x, s]) if queued is not None else 0.0
            # a source nothing was ever placed in (the prior, when off) holds exact zeros: skip its W·K cells
            totals.append((self._side_sum(x, s) + qx) * math.exp(self._lm[x, s] - self._ref[x, s])
                          if self._held[x] or qx else 0.0)
        total = sum(totals)
        if total <= EPS_USD:
            return
        factor = max(0.0, 1.0 - usd / total)
        self.stats["closed_usd"] += total * (1.0 - factor)
        for x, tot in zip(srcs, totals):
            if tot <= 0:
                continue
            if factor < _ZERO_FACTOR:
                if self._queue is not None:
                    self._queue.drop(x, s)  # zeroed before it was ever placed
                j = np.flatnonzero(self._base[x, :, s, :].sum(axis=0) > 0)
                self._base[x, :, s, :] = 0.0
                self._sums[x, s] = 0.0
                self._touch(x, s, j + self._b0)
                self._ref[x, s] = self._lm[x, s]
                continue
            self._lm[x, s] += math.log(factor)
            margin = self._lm[x, s] - self._ref[x, s]
            if margin < _FOLD_AT:
                self._fold()
            elif self._decays and self._t is not None:
                # the clock's fold check (window.py): this side is now closer to folding
                self._fold_check_at = min(self._fold_check_at,
                                          self._t + 0.5 * (float(margin) - _FOLD_AT) / self._k_max)

    def _venue_side_usd(self, v: int, s: int) -> float:
        """USD venue ``v`` holds on side ``s``: its observed levels and its prior, queued opens included."""
        queued = self._queue.totals if self._queue is not None else None
        total = 0.0
        for x in (v, NV + v):
            qx = float(queued[x, s]) if queued is not None else 0.0
            if self._held[x] or qx:
                total += (self._side_sum(x, s) + qx) * math.exp(self._lm[x, s] - self._ref[x, s])
        return total

    def _side_sum(self, x: int, s: int) -> float:
        """Sum of ``base`` over source ``x``'s side ``s`` (kept in ``_sums`` until that part of base changes)."""
        v = self._sums[x, s]
        if v != v:  # NaN: changed since last summed
            v = self._sums[x, s] = float(self._base[x, :, s, :].sum())
        return float(v)

    def _consume(self, reach: TradeReach) -> None:
        """Levels the trades reached: longs in buckets ≥ the low's bucket, shorts in buckets ≤ the high's."""
        b0 = self._b0
        low, high = reach.low, reach.high  # absolute buckets
        q = self._queue
        if q is not None and (q.reaches(LONG_I, low, b0 + self._W) or q.reaches(SHORT_I, b0 - 1, high)):
            self._place_queued()  # the trades reach queued levels: they must be there to be swept
        ts = reach.ts
        lo = max(low - b0, 0)
        if lo < self._W:
            cand = self._occ[LONG_I, lo:].nonzero()[0] + lo
            if len(cand):
                first = np.searchsorted(reach.neg_run_min, -b0 - cand, side="left")
                self._ledger.append(self._sweep(LONG_I, cand, ts[np.minimum(first, len(ts) - 1)]))
        hi = min(high - b0, self._W - 1)
        if hi >= 0:
            cand = self._occ[SHORT_I, :hi + 1].nonzero()[0]
            if len(cand):
                first = np.searchsorted(reach.run_max, cand + b0, side="left")
                self._ledger.append(self._sweep(SHORT_I, cand, ts[np.minimum(first, len(ts) - 1)]))

    def _sweep(self, s: int, cand: np.ndarray, when_all: np.ndarray) -> np.ndarray:
        """Zero side ``s`` at window positions ``cand`` and return ledger rows for those that held USD."""
        base = self._base[:, :, s, :][:, :, cand]  # (NS, K, n)
        per_all = base.sum(axis=1) * np.exp(self._lm[:, s] - self._ref[:, s])[:, None]
        self._occ[s, cand] = False
        keep = per_all.sum(axis=0) > EPS_USD
        j, per_venue, when = cand[keep], per_all[:, keep], when_all[keep]
        self._base[:, :, s, cand] = 0.0
        # only the sources that held something here changed (zeroing a zero changes nothing): the others keep
        # their side sums, which a close would otherwise add up again over the whole window
        self._sums[base.any(axis=(1, 2)), s] = np.nan
        history = bool(self._histories.by_tf)
        if history:  # ages and history keys: only a state with a history (the forecast's keeps neither)
            self._oldest[s, cand] = np.inf
            self._newest[s, cand] = -np.inf
        if len(j) == 0:
            return np.empty(0, CONSUMED_DTYPE)
        if history:
            vv, jj = np.nonzero(per_venue > 0)
            self._touch(vv, s, j[jj] + self._b0)
        out = np.zeros(len(j), CONSUMED_DTYPE)
        out["ts"] = when
        out["bucket"] = j + self._b0
        out["price"] = (j + self._b0 + 0.5) * self.step
        out["side"] = 1 if s == LONG_I else -1
        out["usd"] = per_venue.sum(axis=0)
        by_venue = per_venue[:NV] + per_venue[NV:]
        bits = (1 << np.arange(NV, dtype=np.int64))[:, None]
        out["venues"] = ((by_venue > EPS_USD) * bits).sum(axis=0).astype(np.uint8)
        self.stats["consumed_usd"] += float(out["usd"].sum())
        return out

    def _reconcile(self, row) -> None:
        """A real liquidation removes up to its USD from the same venue's same-side levels, nearest first."""
        q = float(row["usd"])
        v = int(row["venue"])
        s = LONG_I if int(row["side"]) > 0 else SHORT_I
        b = buckets.index_of(float(row["price"]), self.step) - self._b0
        k = self.reconcile_k
        cand = b + self._reconcile_order  # nearest first; ties: lower bucket first
        cand = cand[(cand >= 0) & (cand < self._W)]
        if len(cand) == 0 or q <= 0:
            return
        if self._queue is not None and self._queue.reaches(s, self._b0 + b - k, self._b0 + b + k):
            self._place_queued()
        srcs = (v, NV + v)  # the venue's observed levels and its prior, bucket by bucket
        # (2, n, K) in one gather, each bucket's tiers summed as a row of their own as before
        have_src = self._base[np.array(srcs)[:, None], :, s, cand[None, :]].sum(axis=-1)
        have_src *= np.array([math.exp(self._lm[x, s] - self._ref[x, s]) for x in srcs])[:, None]  # (2, n)
        have = have_src.sum(axis=0)
        if self._sampled[v] and cand[0] == b:
            # A sampled venue (Binance: the latest liquidation per symbol per second, core/venues.py) printed one
            # order of a burst of unknown size: its same-side positions liquidating in the print's bucket were hit
            # in that second, so the level there is explained whole, not only the printed USD; what the print
            # itself exceeds it by goes to the neighbours nearest first, as for any venue.
            q = max(q, float(have[0]))
        before = np.concatenate([[0.0], np.cumsum(have)[:-1]])
        take = np.clip(q - before, 0.0, have)
        sel = take > 0
        if not sel.any():
            return
        c, tk, hv = cand[sel], take[sel], have[sel]
        keep = np.where(hv > 0, 1.0 - tk / hv, 0.0)
        keep = np.where(keep < 1e-12, 0.0, keep)
        for i, x in enumerate(srcs):
            if have_src[i, sel].any():
                self._base[x, :, s, c] *= keep[:, None]
                self._sums[x, s] = np.nan
                self._touch(x, s, c + self._b0)
        self.stats["reconciled_usd"] += float(tk.sum())
