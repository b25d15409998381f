"""What the UI reads from: a source of immutable snapshots, whatever produces them.

The app never computes market data. It tells its source which view it wants (``set_view``) and, on each UI
tick, asks for the newest snapshot of that view (``latest``) — a cheap dictionary lookup on the engine's
side. ``status`` says why there is nothing to draw yet (connecting, no data for this asset, a venue down).

``EngineSource`` adapts ``liqmap.core.engine.Engine`` (``set_view(asset, mode, tf, venues, rows, center)``,
``latest(view_key)``, ``version``, ``async run()``) to this protocol; tests use small sources that hand out
real ``Snapshot`` objects.

Venue filter: the engine's worker restates a filtered view's reports, verdict and forecast for its venues
while it builds the view (``liqmap.core.reports.restate``), so this adapter only reads snapshots: it never
takes an engine lock or computes anything on the UI thread. ``View`` is the core's (``liqmap.core.view``),
shared with the engine.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..core.snapshot import Snapshot
from ..core.view import View


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
        if hasattr(engine, "on_screen"):
            engine.on_screen = self._screen_built  # the view on screen has a new snapshot: draw it now

    def _screen_built(self) -> None:
        if self.on_update is not None:
            self.on_update()

    def _engine_key(self, view: View) -> Any:
        key = self._keys.get(view.key)
        if key is None:
            key = self.engine.set_view(view.asset, view.mode, view.timeframe, view.venues, view.rows, view.center,
                                       zoom=view.zoom)
            if key is None:  # an engine that keys views by their arguments
                key = view.key
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
        key = self.engine.set_view(view.asset, view.mode, view.timeframe, view.venues, view.rows, view.center,
                                       zoom=view.zoom)
        if key is not None:
            self._remember(view.key, key)
        if self.on_view is not None:
            self.on_view(view)

    def latest(self, view: View) -> Snapshot | None:
        """The engine's newest snapshot of ``view``: a lookup, no lock. A view filtered to some venues gets its
        reports, verdict and forecast restated for them by the engine's worker (``Engine._view_reports``)."""
        return self.engine.latest(self._engine_key(view))

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
