"""The dense state's window, clock and decay (docs/model.md §3 step 8): where the ``base[source, tier, side,
bucket]`` window sits in price and how it moves with price, the per-(source, side) log multiplier that decay
advances, and the history keys a change is recorded under.

Separate from :mod:`.synthetic` because this is the storage the steps write into, not a step itself: sizing,
recentring, folding the multiplier and mapping history keys back to USD are bookkeeping a reader of the model's
steps can skip. A mixin of :class:`~liqmap.core.model.synthetic.SyntheticModel` (``self`` is the model).
"""

from __future__ import annotations

import math

import numpy as np

from .. import buckets
from ..events import VENUES
from .sources import CODE_BITS, CODE_MASK, EPS_USD, NS, pack

_FOLD_AT = -300.0  # fold the multiplier into base once it is below e^-300


class StateWindow:
    """The window of buckets around the price, the model clock with decay, and history key bookkeeping."""

    # --- state window ----------------------------------------------------------------------------------

    def _allocate(self, price: float) -> None:
        """(Re)size the dense window around ``price``: ± track_pct of price, capped at max_buckets."""
        track = max(float(self.params["track_pct"]), 1.0) / 100.0
        half = int(math.ceil(track * price / self.step)) + 8
        w = int(min(max(2 * half + 1, 64), int(self.params["max_buckets"])))
        self._W = w
        self._b0 = int(buckets.index(price, self.step)) - w // 2
        self._base = np.zeros((NS, self.K, 2, w))
        self._sums[:] = np.nan
        self._oldest = np.full((2, w), np.inf)
        self._newest = np.full((2, w), -np.inf)
        self._occ = np.zeros((2, w), bool)

    def _recenter(self) -> None:
        """Move the window to centre the last price; levels falling outside are dropped (and counted)."""
        if self.last_price is None:
            return
        self._place_queued()
        nb0 = int(buckets.index(self.last_price, self.step)) - self._W // 2
        shift = nb0 - self._b0
        if shift == 0:
            return
        w = self._W
        keep_old = slice(max(shift, 0), min(w, w + shift))
        keep_new = slice(max(-shift, 0), min(w, w - shift))
        lost = self._base.copy()
        lost[..., keep_old] = 0.0
        mult = np.exp(self._lm - self._ref)
        self.stats["dropped_usd"] += float((lost.sum(axis=1) * mult[:, :, None]).sum())
        self._touch_nonzero(lost.sum(axis=1), self._b0)
        for name, fill in (("_base", 0.0), ("_oldest", np.inf), ("_newest", -np.inf), ("_occ", False)):
            arr = getattr(self, name)
            new = np.full_like(arr, fill)
            if keep_old.start < keep_old.stop:
                new[..., keep_new] = arr[..., keep_old]
            setattr(self, name, new)
        self._sums[:] = np.nan
        self._b0 = nb0

    def _window_for(self, lo: np.ndarray, hi: np.ndarray) -> int:
        """The window's first bucket for placing prices ``lo``..``hi``: recentred on the last price first when
        they fall outside it and it has drifted off the price (more than an eighth of its width)."""
        w_lo, w_hi = self._b0 * self.step, (self._b0 + self._W) * self.step
        if not (len(lo) and (lo.min() < w_lo or hi.max() >= w_hi)):
            return self._b0
        if self._off_centre():
            self._recenter()
        return self._b0

    def _off_centre(self) -> bool:
        """Has the window drifted off the last price (more than an eighth of its width)?"""
        return (self.last_price is not None and abs(buckets.index_of(self.last_price, self.step)
                                                    - (self._b0 + self._W // 2)) > self._W // 8)

    # --- clock, decay, history -------------------------------------------------------------------------

    @property
    def _lm(self) -> np.ndarray:
        """Log-multipliers per (source, side), decayed to the clock. The clock only adds up the seconds to decay
        (``_lm_due``); they are applied here, at the next read — one array operation per read instead of one per
        clock step (most steps are read by nobody before the next)."""
        if self._lm_due:
            self._lm_arr -= self._k_decay * self._lm_due
            self._lm_due = 0.0
        return self._lm_arr

    @_lm.setter
    def _lm(self, value: np.ndarray) -> None:
        self._lm_arr = value
        self._lm_due = 0.0

    def _start_clock(self, t: float) -> None:
        self._t = t
        self._histories.start(t, self._lm)

    def _clock_to(self, t: float) -> None:
        if self._t is None:
            self._start_clock(t)
            return
        if t <= self._t:
            return
        t0 = self._t
        m0, m1 = int(math.floor(t0 / 60.0)), int(math.floor(t / 60.0))
        if m1 > m0:
            self._place_queued()  # the boundary records bucket values: the queue lands first
            self._histories.flush()
            self._histories.record(t0, t, self._lm, self._k_decay, self._values_at_keys)
        self._lm_due += t - t0  # applied at the next read of ``_lm``
        self._t = t
        if self._decays and t >= self._fold_check_at:
            if np.any(self._lm - self._ref < _FOLD_AT):
                self._fold()
            self._next_fold_check()

    def _next_fold_check(self) -> None:
        """When the clock must next ask whether a multiplier needs folding: decay lowers ``lm − ref`` by at most
        ``k_max`` per second, so none can pass ``_FOLD_AT`` before the closest has used up its margin at that
        rate; the check comes at half that time (float rounding of the steps is far below it). The fold itself
        happens at the same step as checking every step would (``_close`` brings the check forward)."""
        margin = float((self._lm - self._ref).min()) - _FOLD_AT
        self._fold_check_at = self._t + 0.5 * margin / self._k_max if margin > 0 else -math.inf

    def _fold(self) -> None:
        self._place_queued()  # queued USD is in base units of the reference the fold moves
        for v in range(NS):
            for s in (0, 1):
                if self._lm[v, s] - self._ref[v, s] < _FOLD_AT:
                    self._base[v, :, s, :] *= math.exp(self._lm[v, s] - self._ref[v, s])
                    self._sums[v, s] = np.nan
                    self._ref[v, s] = self._lm[v, s]

    def _touch(self, v: int | np.ndarray, s: int | np.ndarray, idx: np.ndarray) -> None:
        """Record that these (source, side, absolute bucket) values changed other than by decay/close ratio."""
        if not self._histories.by_tf:
            return  # the forecast's state keeps no column history: nothing reads these keys
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size:
            self._histories.touch(pack(v, s, idx))

    def _touch_nonzero(self, vs_w: np.ndarray, b0: int) -> None:
        """Touch every nonzero (source, side, bucket) of a (NS, 2, W) array."""
        v, s, j = np.nonzero(vs_w > 0)
        if len(j):
            self._touch(v, s, j + b0)

    def _values_at_keys(self, keys: np.ndarray, lm: np.ndarray) -> np.ndarray:
        """USD at these history keys with the multipliers ``lm`` (a boundary's, not necessarily now's)."""
        if len(keys) == 0:
            return np.empty(0)
        self._place_queued()
        idx = keys >> CODE_BITS
        code = keys & CODE_MASK
        v, s = code // 2, code % 2
        j = idx - self._b0
        ok = (j >= 0) & (j < self._W)
        out = np.zeros(len(keys))
        if ok.any():
            sums = self._base[v[ok], :, s[ok], j[ok]].sum(axis=-1)
            out[ok] = sums * np.exp(lm[v[ok], s[ok]] - self._ref[v[ok], s[ok]])
        return np.where(out > EPS_USD, out, 0.0)

    # --- per-source state helpers ----------------------------------------------------------------------

    def _actual_by_venue(self) -> np.ndarray:
        """(NS, 2, W) USD."""
        self._place_queued()
        return self._base.sum(axis=1) * np.exp(self._lm - self._ref)[:, :, None]

    def _venue_mask(self, venues: tuple[str, ...] | None) -> np.ndarray:
        """(NS,) mask of the sources (flow and prior) of these venues."""
        if venues is None:
            return np.ones(NS, bool)
        names = set(venues)
        m = np.array([v in names for v in VENUES])
        return np.concatenate([m, m])
