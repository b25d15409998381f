"""The column history codec: what the Synthetic mode draws, one column per timeframe period (docs/model.md §4).

For every timeframe the model keeps a sparse keyframe plus one small delta per column boundary — the
per-(source, side) ratio of multipliers and the exact values of the buckets that changed otherwise. Past
columns are reconstructed exactly from that, and memory stays proportional to activity, not to
columns × buckets. :class:`ColumnHistory` is one timeframe's keyframe and deltas (and their compact encoding);
:class:`Histories` is the model's set of them: the mutation log the state writes to, the boundary recording
the clock drives, the replay the map reads and the re-binning a rebucket needs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np

from ..timeframes import TIMEFRAMES
from .sources import CODE_BITS, CODE_MASK, EPS_USD, NS, remap_keys

_NO_KEYS32 = np.empty(0, np.int32)
_NO_VALS16 = np.empty(0, np.float16)


class ColumnHistory:
    """One timeframe's column history: a sparse keyframe at boundary ``kb`` and one delta per later boundary.

    Boundary ``b`` is time ``b·period``: the end of column ``b − 1``. A delta is (ratio per venue·side code,
    keys of buckets that changed other than by that ratio, their USD at the boundary). Deltas are stored
    compactly — keys as int32 offsets from the smallest, values as float16 times a per-delta scale (three
    significant digits: the map's colour ramp needs far less) — so a column costs 6 bytes per changed bucket,
    or ~2 when the changed buckets form runs of adjacent buckets per venue·side (leverage-spread bands), which
    are then stored as runs.
    Untouched buckets are carried by the exact float64 ratios, so rounding never accumulates.
    """

    def __init__(self, period: int, capacity: int):
        self.period = period
        self.capacity = capacity
        self.kb: int | None = None
        self.key_keys = np.empty(0, np.int64)
        self.key_vals = np.empty(0, np.float64)
        self.deltas: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque()
        self.lm_last = np.zeros(2 * NS)
        self.pending: list[np.ndarray] = []

    @property
    def last(self) -> int:
        return (self.kb or 0) + len(self.deltas)

    def push(self, ratio: np.ndarray, keys: np.ndarray, vals: np.ndarray) -> None:
        self.deltas.append(self._encode(ratio, keys, vals))
        while len(self.deltas) > self.capacity:
            self._evict()

    @staticmethod
    def _encode(ratio: np.ndarray, keys: np.ndarray, vals: np.ndarray) -> tuple:
        """(ratio, k0, rel, scale, q, runs). Spread bands touch long runs of adjacent buckets per venue·side
        code, so when that is smaller the keys are stored as runs instead: ``runs`` = (start bucket offset
        int32, code uint8, length int32) per run of consecutive buckets of one code, ``rel`` empty and ``q``
        in run order (code-major). Otherwise ``runs`` is None and ``rel`` holds one int32 offset per key.
        ``keys`` must be sorted and unique."""
        if len(keys) == 0:
            return (ratio, 0, _NO_KEYS32, 1.0, _NO_VALS16, None)
        top = float(np.max(vals))
        scale = top / 32768.0 if top > 0 else 1.0
        b = keys >> CODE_BITS
        b0 = int(b[0])
        if len(keys) > 8 and int(b[-1]) - b0 < 2**31:
            code = (keys & CODE_MASK).astype(np.uint8)
            order = np.argsort(code, kind="stable")  # keys are sorted by bucket: now code-major, bucket-minor
            bo, co = b[order] - b0, code[order]
            brk = np.flatnonzero((np.diff(bo) != 1) | (np.diff(co) != 0)) + 1
            if (len(brk) + 1) * 9 < len(keys) * 4:
                starts = np.concatenate([[0], brk])
                lens = np.diff(np.append(starts, len(keys))).astype(np.int32)
                runs = (bo[starts].astype(np.int32), co[starts], lens)
                return (ratio, b0, _NO_KEYS32, scale, (vals[order] / scale).astype(np.float16), runs)
        k0 = int(keys.min())
        rel = keys - k0
        rel = rel.astype(np.int32) if int(rel.max()) < 2**31 else rel
        return (ratio, k0, rel, scale, (vals / scale).astype(np.float16), None)

    def delta(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ratio, keys int64, USD float64) of delta ``i`` (boundary kb + i → kb + i + 1); keys unique, not
        necessarily sorted."""
        ratio, k0, rel, scale, q, runs = self.deltas[i]
        if runs is not None:
            start, code, length = runs
            first = np.cumsum(length) - length
            b = np.repeat(start.astype(np.int64) + k0 - first, length) + np.arange(len(q), dtype=np.int64)
            keys = (b << CODE_BITS) | np.repeat(code.astype(np.int64), length)
            return ratio, keys, q.astype(np.float64) * scale
        return ratio, rel.astype(np.int64) + k0, q.astype(np.float64) * scale

    def _evict(self) -> None:
        ratio, keys, vals = self.delta(0)
        self.deltas.popleft()
        kk = self.key_keys
        kv = self.key_vals * ratio[kk & CODE_MASK]
        if len(keys):
            pos = np.searchsorted(kk, keys)
            pos_c = np.minimum(pos, max(len(kk) - 1, 0))
            hit = (pos < len(kk)) & (kk[pos_c] == keys) if len(kk) else np.zeros(len(keys), bool)
            kv[pos_c[hit]] = vals[hit]
            kk = np.concatenate([kk, keys[~hit]])
            kv = np.concatenate([kv, vals[~hit].astype(np.float64)])
            order = np.argsort(kk, kind="stable")
            kk, kv = kk[order], kv[order]
        keep = kv > EPS_USD
        self.key_keys, self.key_vals = kk[keep], kv[keep]
        self.kb = (self.kb or 0) + 1

    def skip_empty(self, n: int, ratio: np.ndarray) -> None:
        """Append ``n`` deltas that only apply ``ratio``; beyond capacity, fold them straight into the keyframe."""
        if n <= 0:
            return
        overflow = n - self.capacity
        if overflow > 0:
            while self.deltas:
                self._evict()
            self.key_vals = self.key_vals * (ratio[self.key_keys & CODE_MASK] ** overflow)
            keep = self.key_vals > EPS_USD
            self.key_keys, self.key_vals = self.key_keys[keep], self.key_vals[keep]
            self.kb = (self.kb or 0) + overflow
            n = self.capacity
        empty_k, empty_v = np.empty(0, np.int64), np.empty(0, np.float64)
        for _ in range(n):
            self.push(ratio, empty_k, empty_v)

    def nbytes(self) -> int:
        return int(self.key_keys.nbytes + self.key_vals.nbytes
                   + sum(d[0].nbytes + d[2].nbytes + d[4].nbytes + 16
                         + (sum(x.nbytes for x in d[5]) if d[5] is not None else 0) for d in self.deltas))


def scatter(work: np.ndarray, keys: np.ndarray, vals: np.ndarray, row0: int, nrows: int) -> None:
    """Write ``vals`` into the (2·NS, nrows) per-code rows of ``work`` (rows outside are ignored)."""
    if len(keys) == 0:
        return
    r = (keys >> CODE_BITS) - row0
    ok = (r >= 0) & (r < nrows)
    if ok.any():
        work[(keys[ok] & CODE_MASK), r[ok]] = vals[ok]


def rebin_history(h: ColumnHistory, remap) -> None:
    """Reconstruct every recorded boundary densely, re-bin it, and re-encode keyframe + deltas."""
    if h.kb is None:
        return
    decoded = [h.delta(i) for i in range(len(h.deltas))]
    all_keys = [h.key_keys] + [k for _, k, _ in decoded]
    cat = np.concatenate(all_keys) if all_keys else np.empty(0, np.int64)
    if len(cat) == 0:
        return
    idx = cat >> CODE_BITS
    lo, hi = int(idx.min()), int(idx.max())
    n = hi - lo + 1
    new_of_row = remap(np.arange(lo, hi + 1))
    nlo = int(new_of_row.min())
    nn = int(new_of_row.max()) - nlo + 1

    # remap is monotone: each new bucket gathers one run of consecutive old rows, so a reduceat over the
    # runs does what np.add.at would, without its per-element cost (a rebucket runs under the asset lock)
    starts = np.flatnonzero(np.r_[True, np.diff(new_of_row) != 0])
    cols = new_of_row[starts] - nlo

    def rebin(work: np.ndarray) -> np.ndarray:
        out = np.zeros((2 * NS, nn))
        out[:, cols] = np.add.reduceat(work, starts, axis=1)
        return out

    def sparse(dense: np.ndarray, only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        code, j = np.nonzero(dense > EPS_USD) if only is None else only
        keys = ((j.astype(np.int64) + nlo) << CODE_BITS) | code
        vals = dense[code, j]
        order = np.argsort(keys)
        return keys[order], vals[order]

    work = np.zeros((2 * NS, n))
    scatter(work, h.key_keys, h.key_vals, lo, n)
    kk, kv = sparse(rebin(work))
    new_deltas = deque()
    for ratio, keys, vals in decoded:
        work *= ratio[:, None]
        scatter(work, keys, vals, lo, n)
        dense = rebin(work)
        if len(keys):
            touched = np.zeros((2 * NS, nn), bool)  # the re-binned cells this delta changed (no hashing)
            touched[keys & CODE_MASK, remap(keys >> CODE_BITS) - nlo] = True
            nk, nv_ = sparse(dense, np.nonzero(touched))
        else:
            nk, nv_ = np.empty(0, np.int64), np.empty(0)
        new_deltas.append(h._encode(ratio, nk, nv_))
    h.key_keys, h.key_vals = kk, kv
    h.deltas = new_deltas


class Histories:
    """Every timeframe's :class:`ColumnHistory`, and the mutation log that feeds them.

    The state records each (source, side, bucket) it changes other than by its per-(source, side) multiplier
    (``touch``); at each 1-minute boundary those keys go to every timeframe's pending set (``flush``), and at
    each timeframe boundary the pending buckets' values and the multipliers' ratio become one delta
    (``record``). ``enabled=False`` (the forecast's second state, which is never drawn) keeps no timeframes.
    """

    def __init__(self, columns: int, enabled: bool = True):
        self.by_tf: dict[str, ColumnHistory] = (
            {tf: ColumnHistory(per, columns + 1) for tf, per in TIMEFRAMES.items()} if enabled else {})
        self.mut: list[np.ndarray] = []  # history keys touched since the last 1m boundary
        # replay state at the last boundary reached, per (tf, row0, nrows): a caller asking only for new
        # columns pays only for those
        self.cache: dict = {}

    def start(self, t: float, lm: np.ndarray) -> None:
        for h in self.by_tf.values():
            h.kb = int(math.floor(t / h.period))
            h.lm_last = lm.reshape(-1).copy()

    def touch(self, keys: np.ndarray) -> None:
        self.mut.append(keys)

    def flush(self) -> None:
        if not self.mut:
            return
        keys = np.unique(np.concatenate(self.mut))
        self.mut = []
        for h in self.by_tf.values():
            h.pending.append(keys)
            if len(h.pending) > 64:
                h.pending = [np.unique(np.concatenate(h.pending))]

    def record(self, t0: float, t: float, lm: np.ndarray, k_decay: np.ndarray,
               values_at_keys: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Boundaries crossed moving the clock from ``t0`` to ``t`` (the multipliers ``lm`` at ``t0``, decaying at
        ``k_decay`` per second): the first one records the changes since the last, the rest only decay."""
        for h in self.by_tf.values():
            b_from = int(math.floor(t0 / h.period)) + 1
            b_to = int(math.floor(t / h.period))
            if b_to < b_from:
                continue
            lm_b = lm - k_decay * (b_from * h.period - t0)
            keys = np.unique(np.concatenate(h.pending)) if h.pending else np.empty(0, np.int64)
            h.pending = []
            ratio = np.exp(lm_b.reshape(-1) - h.lm_last)
            vals = values_at_keys(keys, lm_b)
            h.push(ratio, keys, vals)
            n_rest = b_to - b_from
            if n_rest > 0:
                h.skip_empty(n_rest, np.broadcast_to(np.exp(-k_decay * h.period), (NS, 2)).reshape(-1))
            h.lm_last = (lm - k_decay * (b_to * h.period - t0)).reshape(-1)

    def replay(self, tf: str, col_lo: int, col_hi: int, row0: int, nrows: int,
               codes_l: np.ndarray, codes_s: np.ndarray, out_l: np.ndarray, out_s: np.ndarray) -> None:
        """Fill the past columns of ``tf`` in [col_lo, col_hi) (those whose end boundary is recorded) with the
        long / short sums of these codes: keyframe + deltas replayed from the cached state when it can."""
        h = self.by_tf[tf]
        first_b = max(col_lo + 1, h.kb)
        last_b = min(col_hi, h.last)
        if first_b > last_b:
            return
        ck = (tf, int(row0), nrows)
        cache = self.cache.get(ck)
        if cache is not None and h.kb <= cache[0] <= first_b:
            b, work = cache
        else:
            b, work = h.kb, np.zeros((2 * NS, nrows))
            scatter(work, h.key_keys, h.key_vals, row0, nrows)

        def emit(bb: int) -> None:
            if bb >= first_b:
                out_l[:, bb - 1 - col_lo] = work[codes_l].sum(axis=0)
                out_s[:, bb - 1 - col_lo] = work[codes_s].sum(axis=0)

        emit(b)
        while b < last_b:
            ratio, keys, vals = h.delta(b - h.kb)
            work *= ratio[:, None]
            scatter(work, keys, vals, row0, nrows)
            b += 1
            emit(b)
        self.cache.pop(ck, None)
        self.cache[ck] = (b, work)
        while len(self.cache) > 6:
            self.cache.pop(next(iter(self.cache)))

    def rebin(self, remap) -> None:
        """A rebucket: every timeframe's keyframe and deltas, and the pending keys, into the new step."""
        for h in self.by_tf.values():
            rebin_history(h, remap)
        self.mut = [remap_keys(np.concatenate(self.mut), remap)] if self.mut else []
        for h in self.by_tf.values():
            h.pending = [remap_keys(np.concatenate(h.pending), remap)] if h.pending else []
        self.cache.clear()

    def nbytes(self) -> int:
        return sum(h.nbytes() for h in self.by_tf.values())
