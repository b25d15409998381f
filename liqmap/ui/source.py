"""What the UI reads from: a source of immutable snapshots, whatever produces them.

The app never computes market data. It tells its source which view it wants (``set_view``) and, on each UI
tick, asks for the newest snapshot of that view (``latest``) — a cheap dictionary lookup on the engine's
side. ``status`` says why there is nothing to draw yet (connecting, no data for this asset, a venue down).

``EngineSource`` adapts ``liqmap.core.engine.Engine`` (``set_view(asset, mode, tf, venues, rows, center)``,
``latest(view_key)``, ``version``, ``async run()``) to this protocol; tests use small sources that hand out
real ``Snapshot`` objects.

Venue filter: the engine filters the map to the view's venues but (today) computes the reports and the
verdict over every venue. ``EngineSource`` therefore hands out a filtered view's snapshot with its reports
and verdict restated for those venues by ``liqmap.core.reports.for_venues`` (the core does the arithmetic;
this adapter only supplies the model's levels for the same venues). A snapshot whose reports already say
which venues they speak for (``reports["venues"]``) is passed through untouched.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from ..core.snapshot import Snapshot


@dataclass(frozen=True)
class View:
    """One view of the map: what the engine has to compute for the screen.

    ``rows`` is how many price buckets the screen needs (screen rows × zoom) and ``center`` the price in the
    middle (None: follow the last price). ``venues`` None means all venues.
    """

    asset: str
    mode: str
    timeframe: str
    venues: tuple[str, ...] | None = None
    rows: int = 60
    center: float | None = None
    columns: int = 240

    @property
    def key(self) -> tuple:
        return (self.asset, self.mode, self.timeframe, self.venues, self.rows, self.center, self.columns)


@dataclass
class SourceStatus:
    """The source's own state, shown when no snapshot can be drawn and in the status bar."""

    state: str = "connecting"  # connecting | running | stopped | error
    label: str = "LIVE"  # LIVE | REPLAY | DEMO
    message: str = ""
    health: dict[str, Any] = field(default_factory=dict)  # venue → health record (when no snapshot yet)


@runtime_checkable
class SnapshotSource(Protocol):
    def set_view(self, view: View) -> None: ...

    def latest(self, view: View) -> Snapshot | None: ...

    def status(self) -> SourceStatus: ...


class EngineSource:
    """A ``SnapshotSource`` over the engine. ``start()`` runs the engine as a task on the app's loop."""

    def __init__(self, engine: Any, label: str = "LIVE", stop=None, run=None) -> None:
        self.engine = engine
        self.label = label
        self._stop = stop
        self._run = run  # what to run on the loop (feeds + engine); default: engine.run()
        self.on_view = None  # called with each new view (e.g. the demo market's focus set)
        self.on_update = None  # set by the app: "a snapshot is ready, tick now" (first frame fast)
        self._keys: dict[tuple, Any] = {}
        self._task = None
        self._error = ""
        self._filtered: tuple[Any, tuple, Snapshot] | None = None  # (engine snapshot, venues, restated)
        self._levels: dict[tuple, Any] = {}  # (asset, venues) → the model's levels last read for them
        if hasattr(engine, "on_screen"):
            engine.on_screen = self._screen_built  # the view on screen has a new snapshot: draw it now

    def _screen_built(self) -> None:
        if self.on_update is not None:
            self.on_update()

    def _engine_key(self, view: View) -> Any:
        key = self._keys.get(view.key)
        if key is None:
            key = self.engine.set_view(view.asset, view.mode, view.timeframe, view.venues, view.rows, view.center)
            if key is None:  # an engine that keys views by their arguments
                key = (view.asset, view.mode, view.timeframe, view.venues, view.rows, view.center)
            self._remember(view.key, key)
        return key

    def _remember(self, view_key, key) -> None:
        """Every pan or zoom is a new view: keep the newest few (the engine itself keeps a few screens)."""
        self._keys.pop(view_key, None)
        self._keys[view_key] = key
        while len(self._keys) > 64:
            self._keys.pop(next(iter(self._keys)))

    def set_view(self, view: View) -> None:
        # Always tell the engine: going back to a view seen before must make it the screen's view again.
        key = self.engine.set_view(view.asset, view.mode, view.timeframe, view.venues, view.rows, view.center)
        if key is not None:
            self._remember(view.key, key)
        if self.on_view is not None:
            self.on_view(view)

    def latest(self, view: View) -> Snapshot | None:
        snap = self.engine.latest(self._engine_key(view))
        if snap is None or not view.venues or not snap.reports:
            return snap
        venues = tuple(view.venues)
        every = tuple(getattr(getattr(self.engine, "market", None), "venues", ()) or ())
        if every and set(venues) >= set(every):
            return snap
        said = snap.reports.get("venues")
        if said is not None and set(said) == set(venues):
            return snap  # the engine restated them itself
        f = self._filtered
        if f is not None and f[0] is snap and f[1] == venues:
            return f[2]
        out = self._restate(snap, view.asset, venues)
        self._filtered = (snap, venues, out)
        return out

    def _restate(self, snap: Snapshot, asset: str, venues: tuple[str, ...]) -> Snapshot:
        """The snapshot with reports and verdict for ``venues`` only (once per engine snapshot)."""
        from ..core.reports import for_venues

        cfg = getattr(self.engine, "core", None)
        try:
            reports = for_venues(snap.reports, venues, now=snap.created, step=snap.grid.step,
                                 mid=snap.last_price, synth=self._model_levels(asset, venues), cfg=cfg)
        except Exception as e:  # never lie: without a restated read, show no verdict rather than all venues'
            return replace(snap, verdict=f"verdict unavailable for {', '.join(venues)}: {type(e).__name__}")
        return replace(snap, reports=reports, verdict=reports["verdict"])

    def _model_levels(self, asset: str, venues: tuple[str, ...]):
        """The synthetic model's current levels for ``venues``. The model belongs to the engine's worker, so it
        is read under the asset's lock, waiting at most a few ms; when the worker holds it longer, the levels
        read last time for this view are used (they move slowly)."""
        key = (asset, venues)
        state = getattr(self.engine, "state", None)
        st = state(asset) if callable(state) else None
        model = getattr(st, "model", None)
        lock = getattr(st, "lock", None)
        if model is None or lock is None or not hasattr(model, "levels"):
            return None
        if lock.acquire(timeout=0.005):
            try:
                self._levels[key] = model.levels(venues)
            finally:
                lock.release()
        return self._levels.get(key)

    def has_data(self, asset: str) -> bool | None:
        """Whether the market holds any trade or liquidation for ``asset`` (None: cannot tell)."""
        market = getattr(self.engine, "market", None)
        if market is None or not hasattr(market, "rings"):
            return None
        try:
            return any(len(r) for kind in ("trade", "liq") for r in market.rings(kind, asset))
        except Exception:  # a probe for a message, never a reason to fail drawing
            return None

    def status(self) -> SourceStatus:
        if self._error:
            return SourceStatus("error", self.label, self._error)
        health = {}
        h = getattr(self.engine, "health", None)
        if callable(h):
            try:
                health = dict(h())
            except Exception:  # a health probe must never break drawing
                health = {}
        state = "running" if getattr(self.engine, "version", 0) else "connecting"
        message = getattr(self.engine, "status", "")  # e.g. shedding background work, a stopped pre-roll
        return SourceStatus(state, self.label, message if isinstance(message, str) else "", health)

    def start(self) -> None:
        import asyncio

        run = self._run or getattr(self.engine, "run", None)
        if run is None:
            return
        res = run()
        if inspect.isawaitable(res):
            self._task = asyncio.ensure_future(res)
            self._task.add_done_callback(self._done)

    def _done(self, task) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._error = f"engine stopped: {exc!r}"

    async def stop(self) -> None:
        if self._stop is not None:
            res = self._stop()
            if inspect.isawaitable(res):
                await res
        if self._task is not None:
            self._task.cancel()
