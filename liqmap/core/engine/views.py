"""Which views the engine keeps: the one on screen, the background views around it, added views, and the
newest snapshot of each (``latest``: one lookup, packed background snapshots decoded on first read)."""

from __future__ import annotations

from .. import codec
from ..events import VENUE_ID
from ..modes import MODES
from ..modes import spec as mode_spec
from ..snapshot import Snapshot
from ..timeframes import ORDER as TF_ORDER
from ..timeframes import TIMEFRAMES
from ..view import View

RECENT_SCREENS = 4  # previous screen views kept (going back to one is instant)
# Decoded background snapshots kept for quick re-reads (the UI flipping between a few assets).
HOT_DECODED = 16


class ViewsMixin:
    """The engine's view set (part of ``Engine``; state lives on the engine)."""

    def _norm_venues(self, venues) -> tuple[str, ...]:
        vs = tuple(self.market.venues) if not venues else tuple(v for v in venues if v in VENUE_ID)
        return vs

    def set_view(self, asset: str, mode: str, tf: str, venues=None, rows: int = 60,
                 center: float | None = None, zoom: int = 1) -> tuple:
        """Mark the view on screen; returns its key for ``latest``. The other assets and timeframes of the
        same mode, venues and rows become the background views."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if tf not in TIMEFRAMES:
            raise ValueError(f"unknown timeframe {tf!r}")
        view = View(asset, mode, tf, self._norm_venues(venues), max(1, int(rows)), center, self.columns,
                    max(1, int(zoom)))
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
                    v = View(a, scr.mode, tf, scr.venues, scr.rows, None, self.columns, scr.zoom)
                    if v.key != scr.key:
                        out[v.key] = v
            for mode in MODES:
                if mode == scr.mode or (self.positions is None and mode_spec(mode).exact):
                    continue  # no exact positions attached: nothing to draw ahead in the Positions mode
                for tf in TF_ORDER:
                    v = View(scr.asset, mode, tf, scr.venues, scr.rows, None, self.columns, scr.zoom)
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
