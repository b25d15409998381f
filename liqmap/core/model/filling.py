"""Is the asset's open interest filling? Measured from what venues publish (issue 17 item 4, the market that opens
empty).

The model caps one OI step at ``cap_rel`` (3 %) of the venue's OI (docs/model.md §3 step 1): on a market that has
held its open interest for a while a step many times that is more likely a glitch, a netting artefact or a venue's
late update than positions. On a market whose open interest is young — a new listing, a market re-levering from
nothing — the OI is small *because* it has not filled yet, and every step is many times 3 % of it: the demo's market
that opens empty had 174–181 capped rises per asset in its first hour (seed 1; steady: 32–41), its growth from a
tiny OI and each whale's open on a thin venue placed as 3 % of that OI (one $23.6M open placed as $0.35M). Keeping
every rise up to the notional the venue traded (``cap_open_volume``) lifts that market and costs the steady one,
where the positions are older than the model and a whale kept whole outweighs the structure the model holds.

This module says when the market is young: the asset's open interest summed over its venues (USD) now ÷ what it
was at the start of the last window (an hour). A market that holds its positions moves by tens of percent in an hour;
one that fills from nothing multiplies. The sum, not each venue, so one whale on a thin venue does not open the gate
for that venue; the history restarts whenever the set of venues reporting changes, so venues joining at a live start
are not growth.
"""

from __future__ import annotations

import math
from collections import deque


class OIFill:
    """The asset's OI (USD, summed over venues) now ÷ what it was ``window_minutes`` ago (or when its history
    began)."""

    __slots__ = ("window", "_usd", "_mask", "_total", "_mins")

    def __init__(self, n_venues: int, window_minutes: int = 60) -> None:
        self.window = max(1, int(window_minutes))
        self._usd = [0.0] * n_venues  # each venue's last OI in USD
        self._mask = 0  # the venues that have reported (bit per venue)
        self._total = 0.0
        self._mins: deque[list] = deque()  # [minute, the sum at that minute's last sample], oldest first

    def add(self, ts: float, venue: int, usd: float) -> None:
        """One venue's OI sample in USD (ignored unless finite and positive)."""
        if not (usd > 0 and math.isfinite(usd)):
            return
        bit = 1 << venue
        if not self._mask & bit:
            # a venue joins: the sum before it is not comparable with the sum after (not growth)
            self._mask |= bit
            self._mins.clear()
        self._total += usd - self._usd[venue]
        self._usd[venue] = usd
        minute = int(math.floor(ts / 60.0))
        m = self._mins
        if m and m[-1][0] >= minute:
            m[-1][1] = self._total
        else:
            m.append([minute, self._total])
        while m[0][0] < minute - self.window:
            m.popleft()

    def ratio(self) -> float:
        """OI now ÷ the sum at the close of the window's oldest minute (1 with no history). The oldest close, not
        the window's least: one venue's glitch (a sample near zero) would hold the gate open for an hour after it."""
        if not self._mins:
            return 1.0
        then = self._mins[0][1]
        return self._total / then if then > 0 else math.inf
