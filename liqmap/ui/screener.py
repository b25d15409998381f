"""The screener (key ``s``): every asset in one table, sortable and filtered, refreshed at the engine's cadence.

Rows come from ``Engine.screener`` (``liqmap.core.screener``), fetched in a worker thread once a second so the
UI thread never waits on the engine. Keys: type to filter (fuzzy: ``bt`` finds BTC), ``o`` / ``O`` the next /
previous sort column, ``r`` reverses, ↑ ↓ move, Enter opens the asset's map, Esc closes.

A refresh costs what changed: the engine hands back the same ``ScreenRow`` object for an asset not ingested
since (four in five each second), ``cells`` keeps one cells list per row object, and the table
(``screener_table.ScreenerTable``) rebuilds and repaints only the lines whose cells changed or moved.
"""

from __future__ import annotations

import math
from typing import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ..core.buckets import label
from ..core.screener import SORT_KEYS, ScreenRow, fuzzy, sort_rows
from .reports_table import usd
from .screener_table import ScreenerTable

COLUMNS = tuple(SORT_KEYS)  # asset, price, 1h, below, above, next 1h, book, sweep, conv, hit
# asset → (row, its cells): reused while the engine hands back the same row object (most rows, most seconds).
# Keyed by identity, not by the row's value: hashing a ScreenRow (with its magnets) costs more than the cells.
_CELLS: dict[str, tuple[ScreenRow, list]] = {}


def _price(p: float | None) -> str:
    if p is None:
        return "-"
    if not p > 0:
        return label(p, 1.0)
    step = 10.0 ** (math.floor(math.log10(p)) - 3 - (p < 1000))  # 4 significant figures (5 below 1,000)
    return label(p, step)


_NONE = Text("-", style="dim")  # cells are only read (the table, ``liqmap screen``): shared, never changed
_ASSET: dict[str, Text] = {}


def _magnet(m) -> Text | str:
    if m is None:
        return _NONE
    return f"{_price(m.price)} {m.distance_pct:+.1f}% {usd(m.usd)} {m.what}"


def _asset(name: str) -> Text:
    got = _ASSET.get(name)
    if got is None:
        got = _ASSET[name] = Text(name, style="bold")
    return got


def cells(r: ScreenRow) -> list:
    """The row's cells (``Text`` or ``str``, one per column); the same list object for the same row object."""
    got = _CELLS.get(r.asset)
    if got is None or got[0] is not r:
        if len(_CELLS) > 1024:  # a universe is at most a few hundred assets: only a leak would get here
            _CELLS.clear()
        got = _CELLS[r.asset] = (r, _cells(r))
    return got[1]


def _hit(r: ScreenRow) -> Text | str:
    """The forecast's hit rate against the distance baseline (``1.6× n=42``): green above 1, red below."""
    if r.hit is None:
        return "-"
    return Text(f"{r.hit:.1f}× n={r.hit_n}", style="green" if r.hit >= 1.0 else "red")


def _cells(r: ScreenRow) -> list:
    if r.state != "ok" and r.price is None:
        return [_asset(r.asset), Text(r.state, style="yellow")] + [""] * (len(COLUMNS) - 2)
    ch = r.change_1h_pct
    return [
        _asset(r.asset),
        _price(r.price),
        Text("-" if ch is None else f"{ch:+.2f}%", style="" if ch is None else "green" if ch >= 0 else "red"),
        _magnet(r.below),
        _magnet(r.above),
        usd(r.next_hour_usd) if r.next_hour_usd else "-",
        "-" if r.bid_share is None else (f"bids {r.bid_share * 100:.0f}%" if r.bid_share >= 0.5
                                         else f"asks {(1 - r.bid_share) * 100:.0f}%"),
        r.sweep or "-",
        _price(r.convergence) if r.convergence is not None else "-",
        _hit(r),
    ]


class ScreenerScreen(ModalScreen):
    DEFAULT_CSS = """
    ScreenerScreen { align: center middle; background: $surface; }
    ScreenerScreen > Vertical { width: 100%; height: 100%; background: $surface; }
    ScreenerScreen Input { height: 3; }
    ScreenerScreen ScreenerTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="screener_close"),
        Binding("o", "sort(1)", "Sort by next", id="screener_sort_next"),
        Binding("O", "sort(-1)", "Sort by previous", id="screener_sort_prev"),
        Binding("r", "reverse", "Reverse", id="screener_reverse"),
        Binding("down", "table", "Rows", show=False, id="screener_rows"),
    ]

    covers_map = True  # opaque and full-screen: the app does not draw the map under it (``LiqmapApp._tick``)

    class Open(Message):
        def __init__(self, asset: str) -> None:
            super().__init__()
            self.asset = asset

    def __init__(self, fetch: Callable[[], list[ScreenRow]], sort: str = "next 1h") -> None:
        super().__init__()
        self.fetch = fetch
        self.sort = sort
        self.descending = True
        self.rows: list[ScreenRow] = []
        self.shown: list[ScreenRow] = []
        self._title = ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="screener-title")
            yield Input(placeholder="filter assets (fuzzy) — o/O sort column, r reverse, Enter opens, Esc closes",
                        id="screener-filter")
            yield ScreenerTable(COLUMNS, id="screener-table", right=("price", "next 1h"))

    def on_mount(self) -> None:
        self.refresh_rows()
        self.set_interval(1.0, self.refresh_rows)
        self.query_one(Input).focus()

    @work(thread=True, exclusive=True, group="screener")
    def refresh_rows(self) -> None:
        rows = self.fetch()
        self.app.call_from_thread(self._set_rows, rows)

    def _set_rows(self, rows: list[ScreenRow]) -> None:
        self.rows = rows
        self._show_rows()

    def _show_rows(self) -> None:
        q = self.query_one(Input).value
        rows = [r for r in self.rows if fuzzy(q, r.asset)] if q.strip() else self.rows
        self.shown = sort_rows(rows, self.sort, self.descending)
        t = self.query_one(ScreenerTable)
        # the cursor stays on its asset when the order changes
        t.show([r.asset for r in self.shown], [cells(r) for r in self.shown], t.cursor_key)
        arrow = "↓" if self.descending else "↑"
        n_data = sum(1 for r in self.rows if r.price is not None)
        title = (f" screener — {len(self.shown)} of {len(self.rows)} assets ({n_data} with data) · sorted by "
                 f"{self.sort} {arrow}")
        if title != self._title:  # a Static's update lays the screen out again: only when it reads differently
            self._title = title
            self.query_one("#screener-title", Static).update(Text(title, style="bold"))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        key = self.query_one(ScreenerTable).cursor_key
        if key is not None:
            self._open(key)

    def action_table(self) -> None:
        self.query_one(ScreenerTable).focus()

    def action_sort(self, delta: int) -> None:
        self.sort = COLUMNS[(COLUMNS.index(self.sort) + delta) % len(COLUMNS)]
        self._show_rows()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self._show_rows()

    def on_screener_table_selected(self, event: ScreenerTable.Selected) -> None:
        self._open(event.key)

    def on_screener_table_header_selected(self, event: ScreenerTable.HeaderSelected) -> None:
        key = event.column
        self.descending = not self.descending if key == self.sort else True
        self.sort = key
        self._show_rows()

    def _open(self, asset: str) -> None:
        self.dismiss()
        self.app.post_message(self.Open(asset))
