"""One view of the map — what a front end asks for and what the engine computes — shared by both.

``rows`` is how many price buckets the screen needs (screen rows × zoom) and ``center`` the price in the
middle (None: follow the last price). ``venues`` None means all venues; the engine normalizes it to the
market's venue tuple (``Engine.set_view``), so its views always name their venues. ``key`` identifies the
view's grid: the same key is the same snapshot. ``zoom`` is how many buckets one screen row sums (the
front end's zoom): the Synthetic Heatmap's smoothing follows it, so it looks the same at every zoom.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    asset: str
    mode: str
    timeframe: str
    venues: tuple[str, ...] | None = None
    rows: int = 60
    center: float | None = None
    columns: int = 240
    zoom: int = 1  # price buckets per screen row: the Synthetic Heatmap smooths over screen rows, not buckets

    @property
    def tf(self) -> str:
        """The timeframe's short name (the engine's and the tapes' spelling)."""
        return self.timeframe

    @property
    def key(self) -> tuple:
        return (self.asset, self.mode, self.timeframe, self.venues, self.rows, self.center, self.zoom)
