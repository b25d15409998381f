"""Wiring the app to its data source (part of ``LiqmapApp``): the source built off the UI loop when the app
was given a factory (imports, demo market), started, told to call the UI tick on each new snapshot, and
stopped on exit; the runtime's venue list and alert listeners picked up from it."""

from __future__ import annotations

from .source import SnapshotSource
from .startup_trace import trace


class SourceMixin:
    """The data source's life in the app (part of ``LiqmapApp``)."""

    def _build_source(self) -> None:
        """Build the data source off the UI loop (imports, demo market construction), then start it."""
        try:
            trace("source-build-start")
            src = self._source_factory()
            trace("source-built")
        except Exception as e:  # shown on screen; the app stays up so the user can read it and quit
            self._source_error = f"{type(e).__name__}: {e}"
            return
        self.call_from_thread(self._set_source, src)

    def _set_source(self, src: SnapshotSource) -> None:
        self.source = src
        if hasattr(src, "on_update"):
            src.on_update = self._tick
        self._start_source()
        self._tick()

    def _start_source(self) -> None:
        runner = getattr(self.source, "runner", None)
        venues = getattr(runner, "venues", None)
        if venues:  # the runtime's own: a replay also reads venues no longer live (BitMEX), and its all-venue
            self.venue_list = list(venues)  # snapshots name them; with the config's list none ever fitted the view
        if runner is not None and hasattr(runner, "alert_listeners"):
            runner.alert_listeners.append(self._on_alert)
        start = getattr(self.source, "start", None)
        if callable(start):
            start()

    async def on_unmount(self) -> None:
        stop = getattr(self.source, "stop", None)
        if callable(stop):
            res = stop()
            if hasattr(res, "__await__"):
                await res
