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
import concurrent.futures
import itertools
import math
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np

from .. import buckets, codec
from ..assets import universe
from ..events import KINDS, VENUE_ID
from ..grids.modes import model_layers, model_levels
from ..grids.window import Window, make_window
from ..params import CoreParams, core_params
from ..reports.records import Forecast, restate
from ..modes import MODES, GridInputs
from ..modes import spec as mode_spec
from ..snapshot import MapGrid, Snapshot
from ..tiers import TierTable
from ..timeframes import ORDER as TF_ORDER
from ..timeframes import TIMEFRAMES
from ..view import View
from .capacity import ring_capacities
from .rebucket import decision_price, new_step_for, taken_rows
from .tape import LiqTape, TradeTape

__all__ = ["Engine", "View", "TierSource", "ring_capacities"]

#: Where the engine gets each venue's margin tiers for a new synthetic model: ``fn(asset, venue, price)`` or a
#: mapping ``{(asset, venue): ...}``, giving a :class:`~liqmap.core.tiers.TierTable`, rows of
#: (floor, cap, mmr, max_leverage, cum) with notionals in USD, or None (no table: the model's fallback,
#: ``tiers.table_for``). ``price`` is the asset's price when the model is built (a ladder in contracts
#: of a linear contract needs it to become USD). Built by the command layer from the feeds' metadata, so
#: the core never imports the feeds.
TierSource = Callable[[str, str, float], Any] | Mapping[tuple[str, str], Any]

RECENT_SCREENS = 4  # previous screen views kept (going back to one is instant)
# Decoded background snapshots kept for quick re-reads (the UI flipping between a few assets).
HOT_DECODED = 16
# Background cadence per timeframe (seconds between rebuilds of a view that is not on screen).
BACKGROUND_EVERY = {"1m": 5.0, "5m": 15.0, "15m": 30.0, "1h": 60.0, "4h": 120.0}
# A view with no new data is still re-published this often (decay, health, the clock moves on).
IDLE_EVERY = 10.0
SNAPSHOT_SAVE_EVERY = 60.0


@dataclass(frozen=True)
class PackedSnapshot:
    """A background view's snapshot kept encoded (``liqmap.core.codec``): ~15 kB instead of ~0.5 MB of
    float32 layers, decoded on the first ``latest()`` (a few ms) and written to disk as is."""

    version: int
    blob: bytes
    asset: str
    mode: str
    timeframe: str
    venues: tuple[str, ...]


@dataclass
class _Built:
    """What was last built for a view, to decide between skip, incremental and full rebuild."""

    win: Window | None = None
    data_version: int = -1
    built_at: float = -math.inf
    full_builds: int = 0
    incremental: int = 0
    syn: tuple[np.ndarray, np.ndarray] | None = None  # the model's per-column layers for ``win``
    version: int = 0  # snapshot version built from ``syn`` (the heatmap's snapshot file stores ``syn``)
    open_col: int | None = None  # newest column when ``syn`` was read: it and newer ones are re-read
    reports: Any = None  # the reports dict the snapshot carries (a new one means the books or reports moved)


@dataclass
class AssetState:
    name: str
    ref_price: float
    tick: float
    step: float | None = None
    last_price: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    cursors: dict[tuple[str, str], int] = field(default_factory=dict)
    trades: dict[str, TradeTape] = field(default_factory=dict)
    liqs: dict[str, LiqTape] = field(default_factory=dict)
    model: Any = None
    reports: Any = None
    records: Any = None  # the typed reports + forecast of the last ingest (``reports.ReportRecords``)
    report_dicts: dict[str, Any] = field(default_factory=dict)  # their JSON form
    # venues → (the all-venue records they were restated from, the restated records) for filtered views
    restated: dict[tuple, tuple[Any, Any]] = field(default_factory=dict)
    verdict: str = ""
    data_version: int = 0  # bumps whenever new rows were ingested
    rows_ingested: int = 0
    last_ingest: float = -math.inf
    wall_status: dict[tuple, str] = field(default_factory=dict)
    oi_slot: dict[int, int] = field(default_factory=dict)  # venue → last OI time slot written to history
    # The liquidation tapes before this time may hold rows the rings never had (history restored from the
    # store): a rebucket re-bins those columns instead of rebuilding them from the rings.
    exact_since: float = -math.inf
    rebuckets: list[dict] = field(default_factory=list)  # step changes (``Engine._rebucket``), oldest first
    step_kept_at: float = math.nan  # last price where a step change was ruled out (tick-limited step)
    synth: Any = None  # the model's all-venue levels as of the last ingest (the model changes only there)


def _to_dict(x: Any) -> Any:
    if hasattr(x, "to_dict"):
        return x.to_dict()
    if isinstance(x, (list, tuple)):
        return [_to_dict(i) for i in x]
    if isinstance(x, dict):
        return {k: _to_dict(v) for k, v in x.items()}
    return x


class Engine:
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
        self._built: dict[tuple, _Built] = {}
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
        self._held: set[str] = set()  # assets whose history is still being written (see ``hold``)
        self._last_saved = -math.inf
        self._saved: dict[tuple, int] = {}  # view key → version last written to disk

    # ------------------------------------------------------------ views

    def _norm_venues(self, venues) -> tuple[str, ...]:
        vs = tuple(self.market.venues) if not venues else tuple(v for v in venues if v in VENUE_ID)
        return vs

    def set_view(self, asset: str, mode: str, tf: str, venues=None, rows: int = 60,
                 center: float | None = None) -> tuple:
        """Mark the view on screen; returns its key for ``latest``. The other assets and timeframes of the
        same mode, venues and rows become the background views."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if tf not in TIMEFRAMES:
            raise ValueError(f"unknown timeframe {tf!r}")
        view = View(asset, mode, tf, self._norm_venues(venues), max(1, int(rows)), center, self.columns)
        changed = self._screen is None or self._screen.key != view.key
        if self._screen is not None and changed:
            self._recent.append(self._screen.key)
            del self._recent[:-RECENT_SCREENS]
        self._screen = view
        self._prune()
        if changed:
            self._kick()
        return view.key

    def _kick(self) -> None:
        """Wake the fast loop now (from any thread): the view on screen changed."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the loop is closed: nothing to wake
            pass

    def _prune(self) -> None:
        """Forget views that are neither on screen, nor background, nor one of the last few screens: panning
        and zooming make a new view per step, and each would otherwise keep its grid forever."""
        keep = {v.key for v in self.background_views()} | set(self._recent)
        if self._screen is not None:
            keep.add(self._screen.key)
        for d in (self._latest, self._built, self._hot, self._saved):
            for k in [k for k in list(d) if k not in keep]:
                d.pop(k, None)

    def add_view(self, asset: str, mode: str, tf: str, venues=None, rows: int = 60,
                 center: float | None = None) -> tuple:
        """Register a view computed in the background without putting it on screen (headless, export)."""
        view = View(asset, mode, tf, self._norm_venues(venues), max(1, int(rows)), center, self.columns)
        self._views[view.key] = view
        return view.key

    def background_views(self) -> list[View]:
        """Every asset × timeframe in the screen's mode/venues/rows (following the price), every mode × timeframe
        of the screen's asset (a mode key shows a built map at once, issue 20), plus added views."""
        out: dict[tuple, View] = {}
        scr = self._screen
        if scr is not None:
            for a in self.assets:
                for tf in TF_ORDER:
                    v = View(a, scr.mode, tf, scr.venues, scr.rows, None, self.columns)
                    if v.key != scr.key:
                        out[v.key] = v
            for mode in MODES:
                if mode == scr.mode:
                    continue
                for tf in TF_ORDER:
                    v = View(scr.asset, mode, tf, scr.venues, scr.rows, None, self.columns)
                    out[v.key] = v
        for k, v in self._views.items():
            if scr is None or k != scr.key:
                out.setdefault(k, v)
        return list(out.values())

    def is_hot(self, key: tuple) -> bool:
        """Views kept decoded: the one on screen and those added with ``add_view``; the rest are packed."""
        return (self._screen is not None and key == self._screen.key) or key in self._views

    def latest(self, key: tuple) -> Snapshot | None:
        """The newest snapshot of a view (lock-free), or the one restored from disk until it is rebuilt.

        A packed background snapshot is decoded here on first read and kept in a small cache, so switching
        to another asset or timeframe shows its map at once.
        """
        snap = self._latest.get(key)
        if snap is None:
            return self._restored.get(key[:4])
        if isinstance(snap, Snapshot):
            return snap
        hot = self._hot.get(key)
        if hot is not None and hot.version == snap.version:
            return hot
        out = codec.decode(snap.blob)
        self._hot[key] = out
        while len(self._hot) > HOT_DECODED:
            try:
                self._hot.pop(next(iter(self._hot)))
            except (StopIteration, KeyError, RuntimeError):  # another reader trimmed it first
                break
        return out

    def health(self) -> dict:
        if self.health_provider is None:
            return {}
        try:
            return dict(self.health_provider())
        except Exception as e:  # a health probe must never stop the engine
            return {"error": repr(e)}

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

    def build_screen(self, now: float | None = None) -> Snapshot | None:
        """Ingest the asset on screen (unless held) and build its view at once, off the 1 Hz cadence (the first
        frame, or right after its history arrived). Returns the new snapshot, or None (no view, unchanged)."""
        scr = self._screen
        if scr is None:
            return None
        now = self.clock() if now is None else now
        if scr.asset not in self._held:
            self.ingest(scr.asset, now)
        return self.build(scr, now, force=True)

    # ------------------------------------------------------------ per-asset state

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
        synth = st.synth = st.model.levels() if st.model is not None else None
        if st.reports is not None:
            rec = st.reports.update(now, books or {}, trades, liqs, st.step, synth=synth)
            m = st.model
            if synth is not None and hasattr(m, "sigma_hour"):  # next-hour forecast, computed once here
                rec = replace(rec, forecast=Forecast.compute(synth, st.step, st.last_price, m.sigma_hour,
                                                              m.horizon_hours, m.tails))
            st.records, st.report_dicts, st.verdict = rec, rec.to_dict(), rec.verdict
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
            rec["model_usd_before"] = model.total_long() + model.total_short()
            model.rebucket(new_step)
            rec["model_usd_after"] = model.total_long() + model.total_short()
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

    def _thin_oi(self, st: AssetState, oi: np.ndarray) -> np.ndarray:
        """One open-interest sample per venue per ``store.oi_every_seconds`` for the history: venues send one
        every second or three, which for 325 pairs would be millions of rows a day that no chart needs."""
        every = self.oi_every
        if not every > 0:
            return oi
        slot = np.floor(oi["ts"] / every).astype(np.int64)
        keep = np.zeros(len(oi), dtype=bool)
        for vid in np.unique(oi["venue"]):
            idx = np.flatnonzero(oi["venue"] == vid)
            s = slot[idx]
            last = st.oi_slot.get(int(vid), -1)
            first = np.ones(len(s), dtype=bool)
            first[1:] = s[1:] != s[:-1]  # rows are time-sorted: the first row of each slot
            ok = first & (s > last)
            keep[idx[ok]] = True
            if ok.any():
                st.oi_slot[int(vid)] = int(s[ok].max())
        return oi[keep]

    def _persist_reports(self, st: AssetState, now: float) -> None:
        """Finished sweeps and settled absorptions once each; a wall row whenever a wall's status changes."""
        for table, recs in st.reports.drain_history().items():
            rows = [_to_dict(r) for r in recs]
            if rows:
                self.store.append_records(table, st.name, rows)
        changes = []
        for w in st.report_dicts.get("walls") or ():
            key = (w.get("side"), w.get("bucket"), w.get("first_seen"))
            status = str(w.get("status", "active"))
            if st.wall_status.get(key) != status:
                st.wall_status[key] = status
                changes.append({"ts": now, **w})
        if len(st.wall_status) > 4000:  # walls end within minutes; forget the oldest keys
            st.wall_status = dict(list(st.wall_status.items())[-2000:])
        if changes:
            self.store.append_records("walls", st.name, changes)

    # ------------------------------------------------------------ building

    def _window(self, view: View, st: AssetState, now: float, prev: Window | None) -> Window:
        step = st.step
        if view.center is not None:
            row0 = int(buckets.index(view.center, step)) - view.rows // 2
        else:
            price = st.last_price or st.ref_price
            r = int(buckets.index(price, step))
            # Follow the price with hysteresis: recentre only when it leaves the middle half of the rows,
            # so the window (and with it the cheap incremental path) stays put while price wanders.
            if prev is not None and prev.nrows == view.rows and prev.step == step and \
                    prev.row0 + view.rows // 4 <= r < prev.row0 + view.rows - view.rows // 4:
                row0 = prev.row0
            else:
                row0 = r - view.rows // 2
        return make_window(now, view.tf, view.columns, step, row0, view.rows)

    def build(self, view: View, now: float, force: bool = False) -> Snapshot | None:
        """(Re)build one view if its data or window changed; publish and return the new snapshot.

        Incremental when the rows are unchanged and time only moved forward: the model's closed columns
        are kept (shifted when the window slides) and only the open column onwards is re-read; the real
        liquidations and the trace are re-binned from the compact tapes (hundreds of rows, not rings).
        Anything else (new view, recentred rows, new step) is a full rebuild.
        """
        st = self.state(view.asset)
        with st.lock:
            if st.step is None:
                self._ensure_step(st, None)
            built = self._built.setdefault(view.key, _Built())
            win = self._window(view, st, now, built.win)
            # Nothing new to draw: same window, same rows, and (for the view on screen) the same reports —
            # a wall pulled from a book with no trade since must still reach the screen at once.
            if (not force and built.win == win and built.data_version == st.data_version
                    and now - built.built_at < IDLE_EVERY and view.key in self._latest
                    and (built.reports is st.report_dicts or not self.is_hot(view.key))):
                self.stats["skipped"] += 1
                return None
            prev = built.win
            incremental = (prev is not None and prev.row0 == win.row0 and prev.nrows == win.nrows
                           and prev.step == win.step and prev.ncols == win.ncols and win.col0 >= prev.col0
                           and view.asset not in self._held)
            grid, syn = self._grid(view, st, win, now, built if incremental else None)
            kind = "incremental" if incremental else "full_builds"
            setattr(built, kind, getattr(built, kind) + 1)
            self.stats[kind] += 1
            built.win, built.data_version, built.built_at = win, st.data_version, now
            built.reports = st.report_dicts
            records, reports, verdict = self._view_reports(view, st, now)
            snap = Snapshot(version=next(self._versions), created=now, grid=grid, reports=reports,
                            verdict=verdict, health=self.health(), source=self.source, last_price=st.last_price,
                            records=records)
            built.version = snap.version
            hot = self.is_hot(view.key)
            if not hot and view.tf != "1m":
                built.syn = None  # cheap to rebuild in full; not worth its memory for hundreds of views
        if hot:
            self._latest[view.key] = snap
        else:
            source = None
            if view.mode == "heatmap" and syn is not None:
                source = (*syn, self.params.heatmap_sigma_buckets)
            blob = codec.encode(snap, compressor="zlib", heatmap=self._heat, heatmap_source=source)
            self._latest[view.key] = PackedSnapshot(snap.version, blob, view.asset, view.mode, view.tf,
                                                    view.venues)
        self.version = max(self.version, snap.version)
        return snap

    def _view_reports(self, view: View, st: AssetState, now: float) -> tuple[Any, dict, str]:
        """(records, their JSON, verdict) for ``view``: the asset's all-venue reports, or for a view filtered to
        some venues those restated for them (``reports.restate``, with the model's levels for the same
        venues), once per new all-venue read and venue set. Computed here, on the worker that holds the
        asset's lock, so front ends only read snapshots. Caller holds ``st.lock``."""
        rec = st.records
        if rec is None or set(view.venues) >= set(self.market.venues):
            return rec, st.report_dicts, st.verdict
        cached = st.restated.get(view.venues)
        if cached is not None and cached[0] is rec:
            out = cached[1]
        else:
            try:
                out = restate(rec, view.venues, now=now, step=st.step, mid=st.last_price,
                              synth=model_levels(st.model, view.venues) if st.model is not None else None,
                              params=self.core.reports)
            except Exception as e:  # never lie: no restated read means no verdict, not the all-venue one
                out = replace(rec, verdict=f"verdict unavailable for {', '.join(view.venues)}: {type(e).__name__}")
                object.__setattr__(out, "_json", st.report_dicts)
            st.restated[view.venues] = (rec, out)
        return out, out.to_dict(), out.verdict

    def _model_layers(self, view: View, st: AssetState, win: Window, built: _Built,
                      prev: _Built | None, venues) -> tuple[np.ndarray, np.ndarray]:
        if prev is not None and prev.syn is not None and prev.open_col is not None and st.model is not None:
            lo, sh = prev.syn
            k = win.col0 - prev.win.col0
            if k:
                lo, sh = _shift_left(lo, k), _shift_left(sh, k)
            col_lo = max(prev.open_col, win.col0)
            j = col_lo - win.col0
            nlo, nsh = model_layers(st.model, view.tf, win, venues, col_lo=col_lo)
            lo, sh = lo.astype(np.float64), sh.astype(np.float64)  # copies: never touch a cached array
            lo[:, j:], sh[:, j:] = nlo, nsh
        else:
            lo, sh = model_layers(st.model, view.tf, win, venues)
        # Kept as float32 (what the grid holds anyway): half the memory over the views that keep it.
        built.syn, built.open_col = (lo.astype(np.float32), sh.astype(np.float32)), win.col1 - 1
        return lo, sh

    def _grid(self, view: View, st: AssetState, win: Window, now: float,
              prev: _Built | None) -> tuple[MapGrid, tuple[np.ndarray, np.ndarray] | None]:
        built = self._built[view.key]
        vids = None
        if set(view.venues) != set(self.market.venues):
            vids = np.array([VENUE_ID[v] for v in view.venues], dtype=np.uint8)
        mode = mode_spec(view.mode)  # what the mode reads, and its builder (``liqmap.core.modes``)
        venues = view.venues
        model_venues = None if vids is None else venues
        inp = GridInputs(view.asset, view.tf, win, st.trades[view.tf].select(vids), now, self.params, venues)
        if mode.liqs:
            inp = replace(inp, liqs=st.liqs[view.tf].select(vids))
        if mode.model:
            lo, sh = self._model_layers(view, st, win, built, prev, model_venues)
            inp = replace(inp, lo=lo, sh=sh)
        if mode.levels:
            # all venues: the levels read at the last ingest (the model has not changed since)
            inp = replace(inp, levels=st.synth if model_venues is None and st.synth is not None
                          else model_levels(st.model, model_venues))
        return mode.build(inp), ((inp.lo, inp.sh) if mode.model else None)

    # ------------------------------------------------------------ synchronous stepping

    def _due(self, view: View, now: float, on_screen: bool) -> bool:
        b = self._built.get(view.key)
        if b is None or view.key not in self._latest:
            return True
        every = 1.0 / self.fast_hz if on_screen else BACKGROUND_EVERY[view.tf]
        return now - b.built_at >= every - 1e-9

    def step(self, now: float | None = None, background: bool = True) -> int:
        """Ingest every asset, then build every due view (screen first). Deterministic; returns builds."""
        now = self.clock() if now is None else now
        for a in self.assets:
            if a not in self._held:
                self.ingest(a, now)
        built = 0
        if self._screen is not None and self._due(self._screen, now, True):
            built += self.build(self._screen, now) is not None
        if background:
            for v in self.background_views():
                if v.asset not in self._held and self._due(v, now, False):
                    built += self.build(v, now) is not None
        self._maybe_save(now)
        return built

    def _maybe_save(self, now: float, force: bool = False) -> None:
        if self.store is None or not (force or now - self._last_saved >= SNAPSHOT_SAVE_EVERY):
            return
        self._last_saved = now
        self.save_snapshots()

    def save_snapshots(self) -> int:
        """Write the latest snapshot of every follow-the-price view (the ones a restart shows at once);
        packed background snapshots are written as they are, without decoding."""
        if self.store is None:
            return 0
        n = 0
        for key, snap in list(self._latest.items()):
            if key[5] is not None or self._saved.get(key) == snap.version:
                continue
            if isinstance(snap, PackedSnapshot):
                self.store.save_snapshot_bytes(snap.asset, snap.mode, snap.timeframe, snap.venues, snap.blob)
            else:
                source = None
                built = self._built.get(key)
                if key[1] == "heatmap" and built is not None and built.version == snap.version and built.syn:
                    source = (*built.syn, self.params.heatmap_sigma_buckets)
                self.store.save_snapshot(snap, heatmap=self._heat, heatmap_source=source)
            self._saved[key] = snap.version
            n += 1
        return n

    def restore(self) -> int:
        """Load history and the latest snapshots from the store so the map is full at once."""
        if self.store is None:
            return 0
        n = 0
        for snap in self.store.load_snapshots():
            g = snap.grid
            self._restored[(g.asset, g.mode, g.timeframe, tuple(g.venues))] = snap
            n += 1
        now = self.clock()
        horizon = self.columns * TIMEFRAMES["4h"]
        by_asset = self.store.load_events_by_asset("liquidations", since=now - horizon)
        for a in self.assets:
            liqs = by_asset.get(a)
            if liqs is not None and len(liqs):
                st = self.state(a)
                with st.lock:
                    self._ensure_step(st, float(liqs["price"][-1]))
                    for tf in TF_ORDER:
                        st.liqs[tf].merge(liqs, now, step=st.step)
                    st.exact_since = max(st.exact_since, now)  # these rows are in no ring
                    st.data_version += 1
        return n

    # ------------------------------------------------------------ the async loop

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Fast loop for the view on screen + background pool; never blocks the event loop."""
        loop = asyncio.get_running_loop()
        self._loop, self._wake = loop, asyncio.Event()
        fast = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="liqmap-fast")
        pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="liqmap-bg")
        period = 1.0 / self.fast_hz
        pending: set[asyncio.Future] = set()
        try:
            while stop is None or not stop.is_set():
                t0 = time.perf_counter()
                now = self.clock()
                scr = self._screen
                self._wake.clear()
                if scr is not None:
                    try:
                        snap = await loop.run_in_executor(fast, self._fast_work, scr, now)
                    except Exception as e:  # one bad tick must not kill the loop; say it
                        snap = None
                        self.status = f"engine error on {scr.asset} {scr.tf}: {e!r}"
                    if snap is not None and self.on_screen is not None:
                        try:
                            self.on_screen()
                        except Exception as e:  # the UI's hook must never stop the engine
                            self.status = f"screen update hook failed: {e!r}"
                pending = {f for f in pending if not f.done()}
                self._schedule_background(loop, pool, pending, now, scr)
                elapsed = time.perf_counter() - t0
                self.stats["fast_ticks"] += 1
                self.stats["last_fast_ms"] = elapsed * 1000
                if elapsed > period:
                    self.stats["fast_overruns"] += 1
                await self._pause(max(0.001, period - elapsed), stop)
        finally:
            self._loop = self._wake = None
            for f in pending:
                f.cancel()
            fast.shutdown(wait=True, cancel_futures=True)
            pool.shutdown(wait=True, cancel_futures=True)
            self._maybe_save(self.clock(), force=True)

    async def _pause(self, seconds: float, stop: asyncio.Event | None) -> None:
        """Sleep until the next fast tick, a new view on screen (``_kick``) or ``stop``, whichever comes first."""
        waits = [asyncio.ensure_future(self._wake.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _fast_work(self, scr: View, now: float) -> Snapshot | None:
        if scr.asset not in self._held:
            self.ingest(scr.asset, now)
        snap = self.build(scr, now)
        self._maybe_save(now)
        return snap

    def _schedule_background(self, loop, pool, pending: set, now: float, scr: View | None) -> None:
        """Queue due background work, at most ``workers`` jobs deep; count and report what is shed."""
        screen_asset = scr.asset if scr is not None else None
        due_by_asset: dict[str, list[View]] = {}
        held = self._held
        for v in self.background_views():
            if v.asset not in held and (v.key not in self._inflight) and self._due(v, now, False):
                due_by_asset.setdefault(v.asset, []).append(v)
        # Assets with nothing due are still ingested now and then, so their ring cursors keep up.
        for a in self.assets:
            if a != screen_asset and a not in held and a not in due_by_asset and self._ingest_stale(a, now):
                due_by_asset[a] = []
        capacity = self.max_queue - len(pending)
        overloaded = self.stats["last_fast_ms"] > 1000.0 / self.fast_hz
        behind = 0
        jobs = sorted(due_by_asset.items(), key=lambda kv: (kv[0] != screen_asset, kv[0]))
        for asset, views in jobs:
            if capacity <= 0 or (overloaded and views):
                behind += len(views)
                continue
            keys = [v.key for v in views]
            self._inflight.update(keys)
            fut = loop.run_in_executor(pool, self._background_work, asset, views, now)
            fut.add_done_callback(lambda f, keys=keys: self._done(f, keys))
            pending.add(fut)
            capacity -= 1
        if behind:
            self.stats["shed"] += behind
            self.status = f"shedding background work: {behind} views behind"
        elif self.status.startswith("shedding"):
            self.status = ""

    def _ingest_stale(self, asset: str, now: float) -> bool:
        st = self._states.get(asset)
        return now - (st.last_ingest if st else -math.inf) >= 30.0

    def _background_work(self, asset: str, views: list[View], now: float) -> None:
        self.ingest(asset, now)
        for v in views:
            self.build(v, now)
            self.stats["background_done"] += 1

    def _done(self, fut, keys: list[tuple]) -> None:
        self._inflight.difference_update(keys)
        if not fut.cancelled() and fut.exception() is not None:
            self.status = f"background error: {fut.exception()!r}"


def _shift_left(a: np.ndarray, k: int) -> np.ndarray:
    """A copy of ``a`` moved left by ``k`` columns; the new columns are empty."""
    out = np.zeros_like(a)
    if k < a.shape[1]:
        out[:, : a.shape[1] - k] = a[:, k:]
    return out
