"""Switching an asset to a new bucket step once price has moved so far that its step is off by more than 2×.

The step is fixed while the app runs (docs/architecture.md §3) so labels and grids stay put, but after a 2×
move a 5 bp step has become 2.5 or 10 bp: maps get coarse or tall. ``buckets.needs_rebucket`` says when; this module
decides the new step and gathers what the engine rebuilds at it:

- ``new_step_for``: the new canonical step, or None. A tick-limited asset (step already the coarsest the
  tick allows, so "off by 2×" for good) keeps its step: rebucketing to the same number would loop.
- ``taken_rows``: the rows of one kind the rings still hold that the engine has already ingested (write
  index below its cursor), and from what time they are complete. The liquidation tapes rebuild the columns
  after that time exactly from these rows and re-bin only the older, condensed columns.

The decision price is the median of the batch's last few trades, so one stray print cannot switch the step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import buckets
from ..market import merge_by_time
from ..timeframes import ORDER as TF_ORDER
from .state import AssetState

DECISION_TRADES = 9  # the median of the batch's last this-many trade prices decides a step change


def decision_price(trades: np.ndarray) -> float | None:
    """Median of the last few trade prices of a batch (None without trades)."""
    if not len(trades):
        return None
    p = float(np.median(trades["price"][-DECISION_TRADES:]))
    return p if p > 0 and math.isfinite(p) else None


def new_step_for(step: float, tick: float, price: float, target_bp: float) -> float | None:
    """The canonical step at ``price`` if ``step`` is off its target by more than 2× and the canonical step
    differs (a tick-limited step that cannot get nearer its target stays), else None."""
    if not (price > 0 and math.isfinite(price)) or not buckets.needs_rebucket(step, price, target_bp):
        return None
    new = buckets.bucket_step(price, tick, target_bp)
    return None if new == step else new


def taken_rows(market, kind: str, asset: str, cursors: dict[tuple[str, str], int],
               retries: int = 3) -> tuple[np.ndarray, float]:
    """(rows, complete_since): the ``kind`` rows still held in ``asset``'s rings that the reader whose
    ``cursors`` these are has already taken, time-sorted across venues; every taken row with ``ts`` at or
    after ``complete_since`` is among them (-inf: all of them; +inf: none can be trusted to be complete).

    Feeds may append while this runs (another thread): a venue whose ring was written during the read is
    read again, and after ``retries`` attempts it makes the result incomplete (+inf) rather than wrong.
    """
    parts: list[np.ndarray] = []
    since = -math.inf
    for venue in market.venues:
        rings = market.rings(kind, asset, (venue,))
        if not rings:
            continue
        ring = rings[0]
        cur = cursors.get((kind, venue), 0)
        for _ in range(retries):
            w0 = ring.written
            lo = max(w0 - ring.capacity, 0)
            rows = ring.since_count(lo)
            if ring.written == w0:  # nothing appended meanwhile: rows are exactly indices [lo, w0)
                break
        else:
            return np.zeros(0, dtype=ring.dtype), math.inf
        take = rows[: max(cur - lo, 0)]
        if lo > 0:  # this venue's oldest rows were overwritten: complete only from its oldest held row
            since = max(since, float(take["ts"].min()) if len(take) else math.inf)
        if len(take):
            parts.append(take)
    return merge_by_time(kind, parts), since


class RebucketMixin:
    """The engine's side of a step change (part of ``Engine``)."""

    def _maybe_rebucket(self, st: AssetState, trades: np.ndarray, now: float) -> bool:
        """Switch the asset to a new bucket step if price has moved so far that its step is off by more
        than 2× (``buckets.needs_rebucket``, checked by the caller on the last price). A tick-limited step
        stays off its target for good: it is re-examined only once price has moved 1 % since."""
        kept = st.step_kept_at
        if kept == kept and abs(st.last_price / kept - 1.0) < 0.01:
            return False
        price = decision_price(trades)
        if price is None:
            return False
        new = new_step_for(st.step, st.tick, price, self.target_bp)
        if new is None:
            st.step_kept_at = price
            return False
        self._rebucket(st, new, price, now)
        return True

    def _rebucket(self, st: AssetState, new_step: float, price: float, now: float) -> None:
        """Move everything bucket-indexed of one asset to ``new_step`` (caller holds the asset's lock).

        The model re-bins its levels and column history (``SyntheticModel.rebucket``); the liquidation tapes
        are rebuilt from the rings where the rings still hold every row and re-binned before that
        (``LiqTape.rebin``); every built view of the asset is forgotten, so its next build is full at the new
        step (the last snapshots stay readable until then); the reports reset their bucket-indexed state
        themselves when the next update brings the new step. Trade tapes hold prices, not buckets.
        """
        old = st.step
        rec: dict[str, Any] = {"ts": now, "asset": st.name, "old_step": old, "new_step": new_step,
                               "price": price}
        model = st.model
        if model is not None:
            dropped = float(model.stats.get("dropped_usd", 0.0))
            # placed USD (before the dollar scale): the same units as the dropped_usd it is checked against
            rec["model_usd_before"] = model.total_long(scaled=False) + model.total_short(scaled=False)
            model.rebucket(new_step)
            rec["model_usd_after"] = model.total_long(scaled=False) + model.total_short(scaled=False)
            rec["model_dropped_usd"] = float(model.stats.get("dropped_usd", 0.0)) - dropped
        st.step = new_step
        st.synth = None  # re-binned: read again
        exact, since = taken_rows(self.market, "liq", st.name, st.cursors)
        since = max(since, st.exact_since)
        rec["liq_exact_since"] = since
        for tf in TF_ORDER:
            st.liqs[tf].rebin(new_step, now, exact, since)
        for d in (self._built, self._hot):
            for k in [k for k in list(d) if k[0] == st.name]:
                d.pop(k, None)
        st.step_kept_at = math.nan
        st.data_version += 1
        st.rebuckets.append(rec)
        self.stats["rebuckets"] += 1
