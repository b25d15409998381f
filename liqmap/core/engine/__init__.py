"""The engine: market rings → (synthetic model, reports, condensed tapes) → immutable versioned snapshots.

Per asset it keeps one ``AssetState``: ring cursors (so each tick reads only the rows appended since the
last one, never whole rings), the synthetic model, the reports aggregate, and per timeframe a condensed
trade tape and liquidation tape (``tape.py``) that the grid builders read. Per view (asset, mode, timeframe,
venues, rows, centre) it publishes the newest ``Snapshot``; ``latest(key)`` is one dict lookup, no lock,
no copy — snapshots are immutable and replaced whole.

Views: the one on screen (``set_view``) and any added with ``add_view`` are kept decoded ("hot"). Every other
asset × timeframe in the screen's mode, venues and rows, and every other mode × timeframe of the screen's asset
(so a mode key finds its map built too), is a background view, kept *packed* (the snapshot
codec's bytes, ~15 kB instead of ~0.5 MB of float32 layers: 325 of them would otherwise be most of the
process's memory); ``latest`` decodes one on first read (a few ms) so switching asset or timeframe shows a
full map at once, and the fast loop makes it hot within a second. Snapshot files are written from the same
bytes. Panning and zooming make a new view per step; views that are neither on screen, background nor one of
the last few screens are forgotten.

Builds: incremental when the rows are unchanged and time only moved forward (the model's closed columns are
kept and only the open column onwards is re-read; the real liquidations and the trace are re-binned from
the compact tapes), full otherwise.

Scheduling (``run``): the view on screen is refreshed at ``engine.fast_hz`` (≥ 1 Hz) on its own one-thread
executor, so background work can never queue in front of it; a new view on screen wakes the loop at once
(``set_view``), and ``on_screen`` tells the UI each time the view on screen has a new snapshot, so a switch
does not wait for either side's next tick. Every other asset and the higher timeframes
go to a worker pool at slower cadences (``BACKGROUND_EVERY``), one job per asset (ingest, then its due
views). When more than ``engine.max_queue`` jobs are waiting, or the fast tick overran its period, new
background work is shed (counted in ``stats["shed"]`` and said in ``status``: "shedding background work:
N views behind") — the view on screen keeps its cadence. ``step(now)`` does the same work synchronously and
deterministically (replay, tests, benchmarks).

Bucket step: fixed per asset at its first price, until price moves so far that the step is off its target
by more than 2× (``buckets.needs_rebucket``; decided on the median of a batch's last trades): then the
asset switches to the new canonical step in the middle of an ingest — the model re-bins its levels and
history, the liquidation tapes are rebuilt from the rings (re-binned where only condensed rows are left),
and every view of the asset is rebuilt in full (``rebucket.py``; each switch is recorded in
``AssetState.rebuckets``).

Margin tiers: ``tiers`` (a ``TierSource``, built by the command layer from the fetched venue ladders) gives
each new model its per-venue tables; venues without one keep the model's fallback (``tiers.table_for``).
A model keeps the tables it was built with.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, Mapping

import numpy as np

from .. import buckets
from ..assets import universe
from ..calibration import calibration_for, regime_of
from ..grids.modes import report_levels
from ..params import CoreParams, core_params
from ..reports.records import Forecast
from ..snapshot import Snapshot
from ..tiers import TierTable
from ..timeframes import ORDER as TF_ORDER
from ..timeframes import TIMEFRAMES
from ..view import View
from .build import IDLE_EVERY, BuildMixin
from .capacity import ring_capacities
from .persistence import SNAPSHOT_SAVE_EVERY, PersistenceMixin
from .rebucket import RebucketMixin
from .schedule import BACKGROUND_EVERY, ScheduleMixin
from .state import AssetState, Built, PackedSnapshot
from .tape import LiqTape, TradeTape
from .views import HOT_DECODED, RECENT_SCREENS, ViewsMixin

# An alert evaluated on data this much older than the engine's clock fired on history (the demo's pre-roll writes
# 90+ minutes at start; a bus viewer catches up on the stream): logged, but it wakes nobody (``Alert.replayed``).
# Live ingests run at the clock; two minutes leaves room for a slow loop.
REPLAYED_AFTER_S = 120.0

__all__ = ["Engine", "View", "TierSource", "AssetState", "PackedSnapshot", "ring_capacities"]

#: Where the engine gets each venue's margin tiers for a new synthetic model: ``fn(asset, venue, price)`` or a
#: mapping ``{(asset, venue): ...}``, giving a :class:`~liqmap.core.tiers.TierTable`, rows of
#: (floor, cap, mmr, max_leverage, cum) with notionals in USD, or None (no table: the model's fallback,
#: ``tiers.table_for``). ``price`` is the asset's price when the model is built (a ladder in contracts
#: of a linear contract needs it to become USD). Built by the command layer from the feeds' metadata, so
#: the core never imports the feeds.
TierSource = Callable[[str, str, float], Any] | Mapping[tuple[str, str], Any]

class Engine(ViewsMixin, BuildMixin, ScheduleMixin, PersistenceMixin, RebucketMixin):
    """Per asset: ingest (rings → tapes, model, reports, store); per view: snapshots. The seams live in their
    own modules — ``views`` (which views, ``latest``), ``build`` (one view's snapshot), ``schedule`` (``step``,
    ``run``), ``persistence`` (store writes, ``restore``), ``rebucket`` (step changes), ``state`` (what is
    kept); this class holds the state and the per-asset ingest."""

    def __init__(self, cfg: "CoreParams | Mapping[str, Any]", market, books_provider: Callable[[str], dict] | None = None,
                 source: str = "LIVE", clock: Callable[[], float] = time.time, store=None,
                 tiers: TierSource | None = None) -> None:
        # Typed once (``config.core_params`` builds them; a plain settings mapping is filled from the defaults).
        self.core = core = core_params(cfg)
        self.tiers = tiers
        # (asset, venue) → where its model's tier table came from: "provided" or why the fallback is used.
        self.tier_origin: dict[tuple[str, str], str] = {}
        self.market = market
        self.books_provider = books_provider
        self.source = source
        self.clock = clock
        self.store = store
        self.health_provider: Callable[[], dict] | None = None
        # Alerts (core/alerts.py): the runtime sets the evaluator from the config's rules; fired alerts wait
        # in ``fired`` for the front ends (TUI toasts, collect lines, hooks), newest last.
        self.alerts = None
        self.fired: deque = deque(maxlen=1000)
        self._venues_checked = -math.inf
        e = core.engine
        self.columns = int(e.columns)
        self.workers = max(1, int(e.workers))
        self.fast_hz = max(1.0, float(e.fast_hz))
        self.max_queue = max(1, int(e.max_queue))
        self.oi_every = float(core.store.oi_every_seconds)
        self.target_bp = float(core.buckets.target_bp)
        self.params = core.grid
        self._model_params = core.model_dict()
        self._heat = (self.params.heatmap_clip_pct, self.params.heatmap_decades)
        self.assets = tuple(market.assets)
        self._meta = universe(list(self.assets))
        self._states: dict[str, AssetState] = {}
        self._versions = itertools.count(1)
        self.version = 0
        self._latest: dict[tuple, Snapshot | PackedSnapshot] = {}  # view key → newest snapshot
        self._restored: dict[tuple, Snapshot] = {}  # snapshots loaded from disk, by (asset, mode, tf, venues)
        self._hot: dict[tuple, Snapshot] = {}  # packed background snapshots decoded on read (bounded)
        self._recent: list[tuple] = []  # previous screen views, newest last
        self._views: dict[tuple, View] = {}
        self._built: dict[tuple, Built] = {}
        self._screen: View | None = None
        self.status = ""
        self.stats = {"full_builds": 0, "incremental": 0, "skipped": 0, "shed": 0, "fast_ticks": 0,
                      "fast_overruns": 0, "last_fast_ms": 0.0, "background_done": 0, "rebuckets": 0}
        self._inflight: set[tuple] = set()
        # Switching (issue 20): ``set_view`` wakes the fast loop, so a new screen view is built at once instead
        # of at the loop's next 1 Hz tick; ``on_screen`` (set by the UI's source) is called on the loop after
        # each new snapshot of the view on screen, so the UI draws it without waiting for its own tick.
        self.on_screen: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        # The screen view the fast loop last built: a view it has not built yet is built with ``force``. The
        # background pool may have built it a moment before the switch (the screen asset's other modes are
        # background views), and an unforced build would then find nothing new, publish nothing and leave the
        # UI untold until the next tick.
        self._fast_key: tuple | None = None
        self._held: set[str] = set()  # assets whose history is still being written (see ``hold``)
        # Set by a source that ingests every asset itself at its own clock's ticks (a replay: every
        # ``replay.tick_seconds`` of recording time, headless and in the TUI alike, so both give the same
        # reports). The loop then only builds, and builds nothing of an asset before its first ingest (a build
        # would fix its bucket step at the reference price instead of the first traded one).
        self.ingest_by_source = False
        self._last_saved = -math.inf
        self._saved: dict[tuple, int] = {}  # view key → version last written to disk
        # Exact positions (``exact.py``): a venue's tracked wallets, attached by the runtime where it polls them.
        self.positions = None
        self.exact_venue = "hyperliquid"
        self.exact_every_s = 300.0

    # ------------------------------------------------------------ views

    def health(self) -> dict:
        if self.health_provider is None:
            return {}
        try:
            return dict(self.health_provider())
        except Exception as e:  # a health probe must never stop the engine
            return {"error": repr(e)}

    def attach_positions(self, book, venue: str = "hyperliquid", every_s: float = 300.0) -> None:
        """Exact positions of ``venue``'s tracked wallets (``core/positions.PositionBook``): the Positions mode,
        the verdict's exact magnets and the live accuracy check (every ``every_s``) read it."""
        self.positions, self.exact_venue, self.exact_every_s = book, venue, float(every_s)

    def _exact(self, st: AssetState, oi: np.ndarray, now: float, trades: np.ndarray | None = None):
        from .exact import ExactState, exact_view

        if st.exact is None:
            st.exact = ExactState(self.exact_every_s)
        if trades is not None and len(trades):
            # bands price traded through end at that trade, not at their wallet's next poll (Positions body)
            self.positions.cross(st.name, trades["ts"], trades["price"])
        # While an asset's past is still being written (the demo's pre-roll, a live back-fill: ``hold``), ``now`` is
        # the history's time but the book holds the wallets as polled now: a comparison then scores the model's
        # past against positions it could not yet have seen, so none is made until the asset is released.
        return exact_view(self.positions, self.exact_venue, st.name, st.exact, oi, st.model, st.last_price,
                          st.step, now, compare=not self.held(st.name))

    # ------------------------------------------------------------ history being written

    def hold(self, assets) -> None:
        """Assets whose past is still being written into the market (the demo's pre-roll): the engine's own
        loop neither ingests nor background-builds them, because ingesting with the present as ``now``
        would move the model's clock past history that has not arrived yet. Whoever holds an asset feeds it
        with ``ingest(asset, t)`` at the history's own times; its builds are full (closed columns may still
        change) until ``release``."""
        self._held.update(assets)

    def release(self, asset: str) -> None:
        """The asset's history is complete: back to normal scheduling; its next build of every view is full."""
        st = self.state(asset)
        with st.lock:
            self._held.discard(asset)
            for k in [k for k in list(self._built) if k[0] == asset]:
                self._built.pop(k, None)

    def held(self, asset: str) -> bool:
        return asset in self._held


    # ------------------------------------------------------------ per-asset state

    def screener(self, now: float | None = None) -> list:
        """One ``core.screener.ScreenRow`` per asset of the universe (call off the UI thread)."""
        from ..screener import row

        now = self.clock() if now is None else now
        # An asset's row is the same object until its next ingest (or its sweep's age text moves): see row()
        cache = self.__dict__.setdefault("_screener_cache", {})
        want = math.floor(now / 60.0) - 60  # the minute an hour ago
        out = []
        for a in self.assets:
            st = self._states.get(a)
            if st is None:
                out.append(row(a, now, None, None, None, None, None, "no data yet", cache))
                continue
            with st.lock:
                ago = next((p for m, p in reversed(st.price_marks) if m <= want), None)  # newest mark that old
                state = "history loading" if a in self._held else "ok"
                out.append(row(a, now, st.last_price, ago, st.records, st.synth, st.step, state, cache))
        return out

    def states(self) -> list[AssetState]:
        """Every asset's state made so far (a snapshot of the list: assets are added from the worker)."""
        return list(self._states.values())

    def state(self, asset: str) -> AssetState:
        st = self._states.get(asset)
        if st is None:
            m = self._meta.get(asset)
            st = AssetState(asset, m.ref_price if m else 1.0, m.tick if m else 0.0)
            self._states[asset] = st
        return st

    def _ensure_step(self, st: AssetState, price: float | None) -> None:
        if st.step is not None:
            return
        p = price if (price and price > 0 and math.isfinite(price)) else st.ref_price
        st.step = buckets.bucket_step(p, st.tick, self.target_bp)
        for tf, period in TIMEFRAMES.items():
            st.trades[tf] = TradeTape(period, self.columns)
            st.liqs[tf] = LiqTape(period, self.columns)
        st.model = self._make_model(st, p)
        st.reports = self._make_reports(st)

    def _make_model(self, st: AssetState, price: float):
        from ..synthetic import SyntheticModel

        m = self._meta.get(st.name)
        return SyntheticModel(st.name, st.step, params=self._model_params, markets=m.markets if m else None,
                              columns=self.columns, tiers=self.venue_tiers(st.name, price) or None)

    def venue_tiers(self, asset: str, price: float) -> dict[str, TierTable]:
        """The tier tables the ``tiers`` source provides for ``asset`` at ``price``, by venue. A venue it has
        no table for, or whose table is unusable (bad rows, the source failing), is left out, so the model
        falls back to its default for that venue; ``tier_origin`` says which and why."""
        src = self.tiers
        out: dict[str, TierTable] = {}
        if src is None:
            return out
        for venue in self.market.venues:
            key = (asset, venue)
            try:
                got = src.get(key) if isinstance(src, Mapping) else src(asset, venue, price)
                if got is None:
                    self.tier_origin[key] = "fallback: no table provided"
                    continue
                table = got if isinstance(got, TierTable) else TierTable.from_rows(got, name=f"{venue}:{asset}")
            except Exception as e:  # a bad ladder costs that venue its own table, never the model
                self.tier_origin[key] = f"fallback: {type(e).__name__}: {e}"
                continue
            out[venue] = table
            self.tier_origin[key] = "provided"
        return out

    def _make_reports(self, st: AssetState):
        from ..reports import Reports

        return Reports(st.name, self.core.reports, tick=st.tick or None)

    def _new_rows(self, st: AssetState, kind: str) -> np.ndarray:
        """Rows appended to this asset's rings of ``kind`` since the last ingest, time-sorted."""
        return self.market.take_new(kind, st.name, st.cursors)

    def ingest(self, asset: str, now: float) -> int:
        """Feed new ring rows into the tapes, the model, the reports and the store. Returns rows taken."""
        st = self.state(asset)
        with st.lock:
            return self._ingest_locked(st, now)

    def backfill(self, asset: str, oi: np.ndarray | None = None, trades: np.ndarray | None = None,
                 now: float | None = None) -> int:
        """History for the synthetic model only (docs/model.md §3 step 10: a live start replays public OI history
        and klines through the model). Nothing goes into the rings, tapes or reports — those show what was
        observed — and the asset should be held meanwhile (``hold``) so live rows reach the model after its
        history. Returns the rows fed."""
        st = self.state(asset)
        n = (len(oi) if oi is not None else 0) + (len(trades) if trades is not None else 0)
        if n == 0:
            return 0
        with st.lock:
            price = (float(trades["price"][-1]) if trades is not None and len(trades) else
                     float(oi["mark"][-1]) if oi is not None and len(oi) else None)
            self._ensure_step(st, price)
            if st.model is None:
                return 0
            st.model.update(oi=oi, trades=trades, liqs=None)
            if now is not None:
                st.model.advance(now)
            st.synth = None  # read again at the next ingest
            st.data_version += 1
        return n

    def _deliver(self, alerts: list) -> None:
        """Fired alerts to the front ends' queue and (their keys too) to the history."""
        if not alerts:
            return
        self.fired.extend(alerts)
        if self.store is not None:
            self.store.append_records("alerts", "*", [a.to_dict() for a in alerts])

    def check_venues(self, now: float, every: float = 5.0) -> None:
        """``venue_down`` alerts from the venues' health, at most every ``every`` seconds (the engine loop)."""
        if self.alerts is None or self.health_provider is None or now - self._venues_checked < every:
            return
        self._venues_checked = now
        try:
            health = dict(self.health_provider())
        except Exception:  # a health probe must never stop the engine
            return
        self._deliver(self.alerts.evaluate_venues(now, health))

    def drain_alerts(self) -> list:
        """The alerts fired since the last call (one reader: the front end)."""
        out = []
        while self.fired:
            out.append(self.fired.popleft())
        return out

    def _score_forecast(self, st: AssetState, liqs: np.ndarray, trades: np.ndarray, now: float) -> tuple[dict, bool]:
        """Score the open forecasts against the new liquidations (and their clusters' chance of reach against
        the new trades), settle the ones whose hour passed, and every 15 minutes fix a new one
        (``liqmap.core.hitrate``, ``liqmap.core.calibration``). Returns the score for the snapshot and whether
        a new forecast was fixed (its clusters are then logged by the caller)."""
        hr = st.hitrate
        hr.observe(liqs)
        settled = hr.settle(now)
        if settled and self.store is not None:  # a live run's hit rate accumulates over days (restore())
            self.store.append_records("forecast_scores", st.name, [
                {"ts": s.t, "model_usd": s.model_usd, "base_usd": s.base_usd, "realized_usd": s.realized_usd}
                for s in settled])
        rl = st.reachlog
        if len(trades):
            rl.observe(trades["ts"], trades["price"])
        reached = rl.settle(now)
        if reached and self.store is not None:  # the reliability table accumulates with the history too
            self.store.append_records("reach_scores", st.name, [
                {"ts": t, "reach": r, "reach_raw": raw, "reached": hit} for t, r, raw, hit in reached])
        fixed = False
        if hr.due(now) and st.model is not None and st.last_price and st.step:
            b, lu, su, _ = st.model.forecast(price=st.last_price)
            hr.add_forecast(now, st.last_price, st.step, b, lu + su)
            fixed = True
        return hr.score().to_dict(), fixed

    def _ingest_locked(self, st: AssetState, now: float) -> int:
        trades = self._new_rows(st, "trade")
        liqs = self._new_rows(st, "liq")
        oi = self._new_rows(st, "oi")
        n = len(trades) + len(liqs) + len(oi)
        st.last_ingest = now
        first_price = (float(trades["price"][-1]) if len(trades) else
                       float(oi["mark"][-1]) if len(oi) else float(liqs["price"][-1]) if len(liqs) else None)
        self._ensure_step(st, first_price)
        if len(trades):
            st.last_price = float(trades["price"][-1])
            minute = math.floor(float(trades["ts"][-1]) / 60.0)
            if not st.price_marks or st.price_marks[-1][0] != minute:
                st.price_marks.append((minute, st.last_price))
        elif st.last_price is None and first_price:
            st.last_price = first_price
        for tf in TF_ORDER:
            st.trades[tf].merge(trades, now)
            st.liqs[tf].merge(liqs, now, step=st.step)
        if st.model is not None and n:
            st.model.update(oi=oi, trades=trades, liqs=liqs)
        if len(trades) and buckets.needs_rebucket(st.step, st.last_price, self.target_bp):
            self._maybe_rebucket(st, trades, now)
        if st.model is not None:
            st.model.advance(now)
        books = self.books_provider(st.name) if self.books_provider is not None else None
        # the levels the reports, the screener and the forward profile weigh: the map's and the resting layer's
        # (docs/model.md §3 step 13; the map's columns are the flow's history)
        synth = st.synth = report_levels(st.model) if st.model is not None else None
        exact = self._exact(st, oi, now, trades) if self.positions is not None else None
        if st.reports is not None:
            rec = st.reports.update(now, books or {}, trades, liqs, st.step, synth=synth,
                                    exact=exact.levels if exact is not None else None)
            if exact is not None:
                rec = replace(rec, exact=exact.to_dict())
            m = st.model
            if synth is not None and hasattr(m, "sigma_hour"):  # next-hour forecast, computed once here
                hit, fixed = self._score_forecast(st, liqs, trades, now)
                # the forecast weighs each tier over its leverage band (the map's levels are thin lines)
                fsynth = m.forecast_levels() if hasattr(m, "forecast_levels") else synth
                regime = regime_of(m)  # the calibrated chance is read in the market's regime (core/calibration.py)
                fc = Forecast.compute(fsynth, st.step, st.last_price, m.sigma_hour, m.horizon_hours, m.tails,
                                      calibration=calibration_for(getattr(m, "params", None), st.reachlog, regime),
                                      drift_hour=getattr(m, "drift_hour", 0.0),
                                      resting=m.resting_levels() if hasattr(m, "resting_levels") else None)
                if fixed:  # the clusters printed with the forecast the hit rate just fixed: checked over its hour
                    st.reachlog.add(now, fc.clusters, st.step, regime)
                rec = replace(rec, forecast=replace(fc, hit=hit))
            st.records, st.report_dicts, st.verdict = rec, rec.to_dict(), rec.verdict
            if self.alerts is not None:
                fired = self.alerts.evaluate(st.name, now, rec, st.last_price, liqs,
                                             oi_usd=getattr(st.model, "open_interest_usd", None))
                if fired and now < self.clock() - REPLAYED_AFTER_S:  # history being caught up on, not news
                    fired = [replace(a, replayed=True) for a in fired]
                self._deliver(fired)
            if self.store is not None:
                self._persist_reports(st, now)
        if self.store is not None:
            if len(liqs):
                self.store.append_events("liquidations", st.name, liqs)
            if len(oi):
                kept = self._thin_oi(st, oi)
                if len(kept):
                    self.store.append_events("open_interest", st.name, kept)
        if n:
            st.data_version += 1
            st.rows_ingested += n
        return n
