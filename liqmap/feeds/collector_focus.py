"""Moving the book subscriptions with the focus (the asset on screen plus ``universe.focus_extra``): which assets
get full books and which light depth per venue, and rebuilding those feeds when the focus changes.

Separate from :mod:`.collector` because it is the one part that changes subscriptions while the collector runs;
flow feeds never move. A mixin of :class:`~liqmap.feeds.collector.Collector` (``self`` is the collector).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from liqmap.core.assets import Asset

from .feed_plan import LIGHT_KINDS, Slot, focus_set, light_depth_supported


class CollectorFocus:
    """Full books for the focus set, light depth for the rest, moved by ``set_focus``."""

    # ---------------------------------------------------------------------------------------- focus
    def _book_assets(self, venue: str) -> list[str]:
        return [a for a in self.focus if venue in self.assets.get(a, Asset(a, 1.0, 1e-6)).markets]

    def _light_assets(self, venue: str) -> list[str]:
        """The assets out of focus that get light depth: none unless ``feeds.light_depth`` is on and the
        venue's adapter parses the ``depth`` kind (``health()[venue]["light_depth"]`` says which)."""
        if not self.light_depth or not light_depth_supported(venue, self.factory_kinds):
            return []
        focus = set(self.focus)
        return [a for a, meta in self.assets.items() if a not in focus and venue in meta.markets]

    def set_focus(self, assets: Iterable[str] | str) -> asyncio.Task | None:
        """Full books for ``assets`` (plus ``universe.focus_extra``). Moves each venue's book subscription
        by rebuilding its book feed; flow feeds are untouched. Returns the task doing it (None when the
        focus did not change). Rapid calls coalesce: only the last focus is applied. Safe to call from
        another thread (it is then scheduled on the collector's loop and returns None)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # called from another thread (a UI worker): hop onto the collector's loop
            if self._loop is not None and self._running:
                self._loop.call_soon_threadsafe(self.set_focus, assets)
            return None
        new = tuple(focus_set(self.cfg, list(self.assets), [assets] if isinstance(assets, str) else list(assets)))
        if new == self.focus:
            return None
        self.focus = new
        if not self._running or self.plan is not None:
            return None
        if self._focus_task is not None and not self._focus_task.done():
            self._focus_task.cancel()
        self._focus_task = asyncio.create_task(self._apply_focus(), name="liqmap-focus")
        return self._focus_task

    async def _apply_focus(self) -> None:
        await asyncio.sleep(0.2)  # let a burst of asset switches settle

        async def move(venue: str, group: str, kinds: tuple[str, ...], want: tuple[str, ...]) -> None:
            old = self._slots.get((venue, group))
            if old is not None and old.book_assets == want:
                return
            if old is not None:
                await self._stop_slot(old)
            if want:
                await self._launch(Slot(venue, group, kinds, want))

        moves = []
        for v in self.venues:
            moves.append(move(v, "book", self.book_kinds, tuple(self._book_assets(v))))
            if self.light_depth:
                moves.append(move(v, "depth", LIGHT_KINDS, tuple(self._light_assets(v))))
        await asyncio.gather(*moves)
