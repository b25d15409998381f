"""Opens waiting to be placed: one state's queue of OI steps, placed together (issue 17 item 5).

Placing one open cost ~40 small numpy calls per state (its leverage bands spread bucket by bucket, summed per
key, scattered into the state), about ¾ of ``model_update``; a busy asset opens about once a second. A queued
open is placed later, with every other open queued since, in one pass of the same arithmetic. That is exact
— not an approximation — as long as nothing could have seen the difference in between:

- its USD is queued in the state's base units (× ``exp(ref − lm)`` at the time of the open), so decay and
  proportional closes that happen while it waits (they only move ``lm``) scale it as if it had been placed;
- a close's side total counts the queue (``totals``), so a close takes the same share;
- the state places the queue before anything reads or rewrites buckets directly: a column boundary (the
  history records bucket values), a sweep or a real liquidation reaching the queue's bucket range (``reaches``),
  a fold of the multipliers, a close that zeroes a side, a recentre, a rebucket, and every read;
- an open whose buckets would leave the window (it may recentre the window, or drop what falls outside) is
  not queued: the queue is placed and that open goes the one-by-one way.

What differs is only the order of float additions (a bucket's sum over opens instead of open by open).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import buckets
from .placement import Placement
from .sources import LONG_I, NS, NV, SHORT_I, pack


_NONE_LO, _NONE_HI = 2**62, -(2**62)  # an empty queue's bucket range


def _inside_share(lo: np.ndarray, hi: np.ndarray, w_lo: float, w_hi: float) -> np.ndarray:
    """Share of each band [lo, hi] inside the window [w_lo, w_hi) (``Placement._clip_to_window``'s rule)."""
    width0 = hi - lo
    lo_c, hi_c = np.clip(lo, w_lo, w_hi), np.clip(hi, w_lo, w_hi)
    return np.where(width0 > 0, (hi_c - lo_c) / np.where(width0 > 0, width0, 1.0),
                    ((lo >= w_lo) & (lo < w_hi)).astype(np.float64))


def open_extent(entries, weights) -> list:
    """Per side of an open, (lowest entry, highest entry, sum of entry weights) — all the queue reads of its
    arrays to decide — or None for a side without entries. Worked out once per open for every state (and once
    for both sides when they share their arrays, as a flow open's do)."""
    out = []
    for s in (LONG_I, SHORT_I):
        e, w = entries[s], weights[s]
        if s == SHORT_I and e is entries[LONG_I] and w is weights[LONG_I]:
            out.append(out[LONG_I])
        elif not len(e) or w.ndim != 1:
            out.append(None)
        else:
            e_min, e_max = (float(e[0]),) * 2 if len(e) == 1 else (float(e.min()), float(e.max()))
            out.append((e_min, e_max, float(w.sum())))
    return out


@dataclass(slots=True)
class QueuedOpen:
    src: int
    ts: float
    entries: tuple[np.ndarray, np.ndarray]
    weights: tuple[np.ndarray, np.ndarray]
    amounts: tuple[float, float]
    gain: list  # [long, short] exp(ref − lm) of (src, side) at the open: USD → the state's base units


class OpenQueue:
    """One state's queued opens, the bucket range they will land in per side, and their USD per (source, side)
    in base units."""

    def __init__(self, placement: Placement, banded: bool) -> None:
        self.placement = placement
        self.banded = banded
        if banded:
            ratio_lo, ratio_hi = placement.ratio_band[..., 0], placement.ratio_band[..., 1]
            ok = np.isfinite(ratio_lo) & np.isfinite(ratio_hi) & (ratio_lo > 0)
        else:
            ratio_lo = ratio_hi = placement.ratio
            ok = np.isfinite(ratio_lo) & (ratio_lo > 0)
        ok &= (placement.w_eff > 0)[:, None, :]
        # per (venue, side): the lowest and highest liquidation price / entry over the tiers that place, and the
        # share of an open's USD they place (the rest is counted as unplaced, as the one-by-one path does)
        self.r_min = np.where(ok, ratio_lo, np.inf).min(axis=-1)
        self.r_max = np.where(ok, ratio_hi, -np.inf).max(axis=-1)
        wk = placement.w_eff[:, None, :]
        self.placed_share = (wk * ok).sum(axis=-1)
        self.unplaced_share = (wk * ~ok).sum(axis=-1)  # tiers without weight add 0 here
        # the same as nested lists: an open reads a handful of them, and a list index is far cheaper
        self._r_min, self._r_max = self.r_min.tolist(), self.r_max.tolist()
        self._placed, self._unplaced = self.placed_share.tolist(), self.unplaced_share.tolist()
        # per (venue, side) of a banded state: the tiers that place (finite, positive band, weight > 0), their band
        # ratios and weights — what an open reaching past the window needs, without masking every slice
        self._band_ok = None
        if banded:
            band, w = placement.ratio_band, placement.w_eff
            self._band_ok = [[(band[v, s, ok[v, s], 0], band[v, s, ok[v, s], 1], w[v][ok[v, s]])
                              for s in (LONG_I, SHORT_I)] for v in range(NV)]
        self.items: list[QueuedOpen] = []
        self.totals = np.zeros((NS, 2))  # queued USD per (source, side), base units
        self.lo = [_NONE_LO, _NONE_LO]  # lowest / highest absolute bucket queued, per side
        self.hi = [_NONE_HI, _NONE_HI]

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, src: int, ts: float, entries, weights, amounts, gain: Callable[[], np.ndarray], step: float,
              b0: int, width: int, may_recentre: Callable[[], bool], stats: dict, ext: list | None = None) -> bool:
        """Queue this open if it can wait (its stats — added, unplaced, dropped USD — counted now); False when it
        cannot: weights per (entry, tier), or buckets outside the window where the one-by-one path would move
        it (thin lines always recentre; bands only when ``may_recentre()``; otherwise the part of a band outside
        is dropped, as one by one). ``gain()``: the source's (2,) base units per USD now; ``ext``: the open's
        :func:`open_extent` when the caller has it."""
        if weights[LONG_I].ndim != 1 or weights[SHORT_I].ndim != 1:
            return False
        if ext is None:
            ext = open_extent(entries, weights)
        v = src % NV
        w_lo, w_hi = b0 * step, (b0 + width) * step
        sides = []
        for s in (LONG_I, SHORT_I):
            amount = amounts[s]
            if not (amount > 0 and math.isfinite(amount)) or ext[s] is None:
                continue
            e_min, e_max, w_sum = ext[s]
            lo, hi = e_min * self._r_min[v][s], e_max * self._r_max[v][s]
            inside = True
            if math.isfinite(lo):  # else no tier places this side: nothing lands anywhere
                if self.banded:
                    inside = lo >= w_lo and hi < w_hi
                    if not inside and may_recentre():
                        return False
                elif not (buckets.index_of(lo, step) >= b0 and buckets.index_of(hi, step) < b0 + width):
                    return False
            sides.append((s, lo, hi, inside, w_sum))
        g = gain().tolist()  # plain floats: the same products, without numpy scalars
        self.items.append(QueuedOpen(src, ts, entries, weights, amounts, g))
        for s, lo, hi, inside, w_sum in sides:
            amount = amounts[s]
            usd = amount * w_sum
            if self._unplaced[v][s] > 0:
                stats["unplaced_usd"] += usd * self._unplaced[v][s]
            if not math.isfinite(lo):
                continue
            placed = usd * self._placed[v][s]
            if not inside:
                # part of a band leaves the window: what stays inside, slice by slice (as the one-by-one path)
                e = entries[s]
                if ext[s][0] > 0 and math.isfinite(ext[s][1]):
                    # positive, finite entries: a slice places where its tier does (the same slices, in the same
                    # row-major (entry, tier) order as masking every slice)
                    r_lo, r_hi, w_ok = self._band_ok[v][s]
                    b_lo, b_hi = (e[:, None] * r_lo).ravel(), (e[:, None] * r_hi).ravel()
                    amt = ((amount * weights[s])[:, None] * w_ok).ravel()
                else:
                    band = self.placement.ratio_band[v, s]
                    b_lo, b_hi = e[:, None] * band[:, 0], e[:, None] * band[:, 1]
                    amt = (amount * weights[s])[:, None] * self.placement.w_eff[v]
                    ok = np.isfinite(b_lo) & np.isfinite(b_hi) & (b_lo > 0) & (self.placement.w_eff[v] > 0)
                    b_lo, b_hi, amt = b_lo[ok], b_hi[ok], amt[ok]
                share = _inside_share(b_lo, b_hi, w_lo, w_hi)
                placed = float((amt * share).sum())
                stats["dropped_usd"] += float((amt * (1.0 - share)).sum())
                lo, hi = max(lo, w_lo), min(hi, w_hi)
            self.totals[src, s] += placed * g[s]
            stats["added_usd"] += placed
            self.lo[s] = min(self.lo[s], buckets.index_of(lo, step))
            self.hi[s] = max(self.hi[s], buckets.index_of(hi, step))
        return True

    def drop(self, src: int, s: int) -> None:
        """Forget side ``s`` of source ``src``'s queued opens: a close zeroes that side outright."""
        for it in self.items:
            if it.src == src and it.amounts[s]:
                it.amounts = (0.0, it.amounts[1]) if s == LONG_I else (it.amounts[0], 0.0)
        self.totals[src, s] = 0.0

    def reaches(self, s: int, lo: int, hi: int) -> bool:
        """Does side ``s`` of the queue hold anything in absolute buckets lo..hi?"""
        return bool(self.items) and self.lo[s] <= hi and self.hi[s] >= lo

    def take(self, base: np.ndarray, occ: np.ndarray, ages: tuple[np.ndarray, np.ndarray] | None, step: float,
             b0: int, history: bool):
        """Empty the queue into a state: add its USD (base units) into ``base`` (NS, K, 2, W), mark the (side,
        window index) cells it reaches in ``occ``, and with ``ages`` = (oldest, newest) fold each open's time into
        the cells it placed in. Returns (the sources placed in, the history keys of the (source, side, bucket)
        cells placed in — only with ``history``, else None), or None when nothing places."""
        items, self.items = self.items, []
        self.totals[:] = 0.0
        self.lo = [_NONE_LO, _NONE_LO]
        self.hi = [_NONE_HI, _NONE_HI]
        pl = self.placement
        width = base.shape[-1]
        # every queued (open, side, entry) as one row
        parts = []
        for it in items:
            for s in (LONG_I, SHORT_I):
                a = it.amounts[s]
                e = it.entries[s]
                if not (a > 0 and math.isfinite(a)) or not len(e):
                    continue
                parts.append((e, a * it.weights[s], it.src, s, it.gain[s], it.ts))
        if not parts:
            return None
        n_row = np.array([len(p[0]) for p in parts])
        ent = np.concatenate([p[0] for p in parts])
        row_amt = np.concatenate([p[1] for p in parts])  # amount × entry weight (the one-by-one order)
        row_src = np.repeat(np.array([p[2] for p in parts]), n_row)
        row_s = np.repeat(np.array([p[3] for p in parts]), n_row)
        row_gain = np.repeat(np.array([p[4] for p in parts]), n_row)
        row_ts = np.repeat(np.array([p[5] for p in parts]), n_row)
        row_v = row_src % NV
        wk = pl.w_eff[row_v]  # (rows, K)
        amt = row_amt[:, None] * wk
        if self.banded:
            band = pl.ratio_band[row_v, row_s]  # (rows, K, 2)
            lo = ent[:, None] * band[:, :, 0]
            hi = ent[:, None] * band[:, :, 1]
            ok = np.isfinite(lo) & np.isfinite(hi) & (lo > 0) & (wk > 0)
            rows, kk = np.nonzero(ok)
            lo, hi, amt = lo[ok], hi[ok], amt[ok]
            w_lo, w_hi = b0 * step, (b0 + width) * step
            if len(lo) and (lo.min() < w_lo or hi.max() >= w_hi):
                # bands reaching past the window (counted as dropped when queued): only their inside part
                inside = _inside_share(lo, hi, w_lo, w_hi)
                keep = inside > 0
                rows, kk = rows[keep], kk[keep]
                lo, hi = np.clip(lo, w_lo, w_hi)[keep], np.clip(hi, w_lo, w_hi)[keep]
                amt = (amt * inside)[keep]
            if len(rows) == 0:
                return None
            # in base units per slice (each open's gain) before the spread: one multiply per slice, not per pair
            return _spread_into(base, occ, ages, row_src[rows], kk, row_s[rows], lo, hi, amt * row_gain[rows],
                                row_ts[rows], b0, step, history)
        lp = ent[:, None] * pl.ratio[row_v, row_s]
        ok = np.isfinite(lp) & (lp > 0) & (wk > 0)
        rows, kk = np.nonzero(ok)
        if len(rows) == 0:
            return None
        b, a = buckets.index(lp[ok], step), amt[ok] * row_gain[rows]
        src, ss = row_src[rows], row_s[rows]
        # per slice (row × tier): its flat (source, tier, side, window index) in base, summed per cell in order
        key = ((src.astype(np.int64) * pl.K + kk) * 2 + ss) * width - b0 + b
        k0 = int(key.min())
        key -= k0
        size = int(key.max()) + 1
        hit = np.flatnonzero(np.bincount(key, minlength=size))
        usd = np.bincount(key, weights=a, minlength=size)[hit]
        base.reshape(-1)[hit + k0] += usd
        sj = ss.astype(np.int64) * width - b0 + b
        occ.reshape(-1)[sj] = True
        if ages is not None:
            ts = row_ts[rows]
            np.minimum.at(ages[0].reshape(-1), sj, ts)
            np.maximum.at(ages[1].reshape(-1), sj, ts)
        return np.unique(src), (pack(src, ss, b) if history else None)


def _spread_into(base, occ, ages, src, kk, ss, lo, hi, amt, ts, b0: int, step: float, history: bool):
    """The queue's banded slices (source, tier, side, band [lo, hi], base-unit USD, time), each spread over the
    buckets of its band by overlap and added into ``base``: the pairs of :meth:`Placement._spread`, with the same
    per-pair operations in the same order, and the same per-cell sums in the same order.

    Laid out per (side, tier) as one (slices × longest band) block, so each slice's band edges, width and USD
    broadcast along its row instead of being repeated per pair, and the bucket edges of a row are one
    ``(b_lo + c) · step`` row whose neighbours are each pair's left and right edge. A cell's slices all share
    its (tier, side), so summing the block row by row adds them in the slices' order, as one bincount over
    every pair did; the pads past a slice's band carry 0.0, which adds nothing."""
    width = base.shape[-1]
    b_max = b0 + width - 1
    b_lo = np.clip(buckets.index(lo, step), b0, b_max)
    b_hi = np.clip(np.maximum(buckets.index(hi, step), b_lo), b0, b_max)
    n = b_hi - b_lo + 1
    bw = hi - lo
    pos = bw > 0
    K = base.shape[1]
    group = ss.astype(np.int64) * K + kk
    order = np.argsort(group, kind="stable")  # each (side, tier) contiguous, slices in their order
    edges = np.searchsorted(group[order], np.arange(2 * K + 1))
    for g in range(2 * K):
        if edges[g] == edges[g + 1]:
            continue
        s, k = divmod(g, K)
        sel = order[edges[g]:edges[g + 1]]
        bl, nr, sg = b_lo[sel], n[sel], src[sel]
        j_lo = int(bl.min())
        span = int((bl + nr).max()) - j_lo
        s_lo = int(sg.min())
        n_src = int(sg.max()) - s_lo + 1
        cells = _band_cells(sg - s_lo, bl - j_lo, nr, lo[sel], hi[sel], bw[sel], pos[sel], amt[sel], n_src, j_lo,
                            span, step)
        base[s_lo:s_lo + n_src, k, s, j_lo - b0:j_lo - b0 + span] += cells
        if ages is not None:
            mx = int(nr.max())
            sj = (s * width + bl - b0)[:, None] + np.arange(mx)[None, :]
            t = np.broadcast_to(ts[sel][:, None], sj.shape)
            if mx > int(nr.min()):
                pad = np.arange(mx)[None, :] >= nr[:, None]
                sj, t = sj[~pad], t[~pad]
            np.minimum.at(ages[0].reshape(-1), sj.ravel(), t.ravel())
            np.maximum.at(ages[1].reshape(-1), sj.ravel(), t.ravel())
    # the cells any slice reaches, from each band's first bucket and length (integer counts: exact)
    code = src.astype(np.int64) * 2 + ss if history else ss.astype(np.int64)
    rows = 2 * NS if history else 2
    first = code * (width + 1) + (b_lo - b0)
    cover = np.bincount(first, minlength=rows * (width + 1))
    cover -= np.bincount(first + n, minlength=rows * (width + 1))
    reach = (np.cumsum(cover) > 0).reshape(rows, width + 1)[:, :width]
    occ |= reach.reshape(-1, 2, width).any(axis=0) if history else reach
    keys = None
    if history:
        c, j = np.nonzero(reach)
        keys = pack(c // 2, c % 2, j + b0)
    return np.unique(src), keys


def _band_cells(row, off, nr, lo, hi, bw, pos, amt, n_src: int, j_lo: int, span: int, step: float) -> np.ndarray:
    """(``n_src``, ``span``) USD of a (side, tier) group's slices summed per (source row ``row``, bucket
    ``j_lo + off + c``): :meth:`Placement._spread`'s ``clip(min(hi, (b+1)·step) − max(lo, b·step), 0) / width ×
    USD`` per pair, without building the pairs.

    A band's first and last bucket take the formula as written. Inside a band — once the second bucket's left
    edge is at or above ``lo`` and the last bucket's left edge at or below ``hi`` (edges grow with the bucket) —
    the min and max pick the bucket's own edges, so a pair is the bucket's width ``(b+1)·step − b·step`` times
    the slice's USD per unit of price (``USD / width``): summed over slices that is the bucket's width times the
    running sum of the rates of the bands covering it (a difference array per source row, cut to exactly 0
    where no band covers the bucket, so no rounding leaks past a band). Bands that fail that check (or have no
    width) are spread pair by pair. Sums differ from pair-by-pair sums in the last float digits."""
    edge = np.arange(j_lo, j_lo + span + 2, dtype=np.int64) * step  # bucket b's left edge: b·step
    width_of = edge[1:span + 1] - edge[:span]
    w_safe = np.where(pos, bw, 1.0)
    rate = amt / w_safe
    last = nr - 1
    odd = ~pos | (edge[off + np.minimum(1, last)] < lo) | (edge[off + last] > hi)
    size = n_src * (span + 1)
    cell0 = row * (span + 1) + off  # each slice's first cell in the (source row, bucket) grid
    # first and last bucket of every band (one bucket: once), the formula as written
    first = np.clip(np.minimum(hi, edge[off + 1]) - np.maximum(lo, edge[off]), 0.0, None) * rate
    x_last = np.clip(np.minimum(hi, edge[off + last + 1]) - np.maximum(lo, edge[off + last]), 0.0, None) * rate
    many = ~odd & (nr > 1)
    ends = np.concatenate([cell0[~odd], (cell0 + last)[many]])
    out = np.bincount(ends, weights=np.concatenate([first[~odd], x_last[many]]), minlength=size)
    out = out.astype(np.float64, copy=False)  # no ends at all (every band odd): bincount gives int64 zeros
    # inside buckets (second to second-last): the bucket's width × the rates of the bands covering it
    mid = ~odd & (nr > 2)
    if mid.any():
        a, z, r = cell0[mid] + 1, cell0[mid] + last[mid], rate[mid]
        d_rate = np.bincount(a, weights=r, minlength=size) - np.bincount(z, weights=r, minlength=size)
        d_cnt = np.bincount(a, minlength=size) - np.bincount(z, minlength=size)
        run = np.cumsum(d_rate.reshape(n_src, span + 1), axis=1)
        covered = np.cumsum(d_cnt.reshape(n_src, span + 1), axis=1) > 0
        out += (np.where(covered, run, 0.0) * np.append(width_of, 0.0)).ravel()
    if odd.any():
        r = np.flatnonzero(odd)
        mx = int(nr[r].max())
        c = np.arange(mx)[None, :]
        rr = r[:, None]
        x = np.minimum(hi[rr], edge[np.minimum(off[rr] + c + 1, len(edge) - 1)])
        x -= np.maximum(lo[rr], edge[np.minimum(off[rr] + c, len(edge) - 1)])
        frac = np.where(pos[rr], np.clip(x, 0.0, None) / w_safe[rr], (1.0 / nr[rr]))
        ov = amt[rr] * frac
        inside = c < nr[rr]
        out += np.bincount((cell0[rr] + c)[inside], weights=ov[inside], minlength=size)
    return out.reshape(n_src, span + 1)[:, :span]
