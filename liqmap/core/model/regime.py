"""Is the market in a forced, one-way phase? Measured from what venues publish (issue 17 item 4).

The model splits every OI step between longs and shorts by the taker flow (docs/model.md §3 step 2). In a quiet
market that split is information. In a cascade it is not enough: price sweeps one side's levels (consumption,
step 7) while the OI fall that the forced closes cause is split by a taker flow near even, so the model's sides
drift apart (demo cascade seed 5: 5:1 short within ±5 % where the true positions were even). Every contract is
one long and one short, so there the model closes the heavier side first (``side_gap_max``). This module says
when "there" is: the share of the traded USD that the venues' published liquidations make up over the last
window. Forced orders are a sliver of volume on a quiet day and a large share of it when a cascade runs.
"""

from __future__ import annotations

from collections import deque


class ForcedShare:
    """Published liquidation USD ÷ traded USD over the last ``window_minutes`` whole minutes (and the current)."""

    __slots__ = ("window", "_mins")

    def __init__(self, window_minutes: int = 60) -> None:
        self.window = max(1, int(window_minutes))
        self._mins: deque[list] = deque()  # [minute, traded USD, liquidation USD], oldest first

    def add(self, minute: int, trade_usd: float, liq_usd: float) -> None:
        """One column's traded and liquidated USD (minutes since the epoch; the same minute may come again)."""
        m = self._mins
        if m and m[-1][0] >= minute:
            m[-1][1] += trade_usd
            m[-1][2] += liq_usd
        else:
            m.append([minute, trade_usd, liq_usd])
        while m[0][0] < minute - self.window:
            m.popleft()

    def share(self) -> float:
        """Liquidated ÷ traded USD over the window (0 before anything traded)."""
        traded = sum(x[1] for x in self._mins)  # at most window + 1 rows: summed when asked, no running drift
        return sum(x[2] for x in self._mins) / traded if traded > 0 else 0.0
