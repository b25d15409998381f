"""The reports panel fits its width: aligned columns, compact USD, short forms and dropped columns in a fixed
order when narrow, never a line cut in the middle of a field. Asserted on the text the compositor sends
(Pilot, truecolor) at 200, 120 and 80 columns, and on ``layout`` directly for the edge cases."""

from __future__ import annotations

from dataclasses import replace

import pytest


from conftest import build_app, screen_lines
from ui_fixtures import FixtureSource

from liqmap.ui.reports_table import ReportsTable, build_rows, layout, usd

NOW = 1_763_900_000.0
WALLS = [
    {"side": "bid", "price": 63600.0, "bucket": 2544, "usd": 9.6e6, "peak_usd": 1e7, "density": 5.2,
     "distance_bp": -57.0, "age_s": 28.0, "venues": ["binance", "bybit", "okx"], "status": "active"},
    {"side": "ask", "price": 64325.0, "bucket": 2573, "usd": 850e3, "peak_usd": 3e6, "density": 12.4,
     "distance_bp": 55.0, "age_s": 400.0, "venues": ["okx"], "status": "consumed"},
    {"side": "bid", "price": 61250.0, "bucket": 2450, "usd": 123.4e6, "peak_usd": 1.3e8, "density": 41.0,
     "distance_bp": -431.0, "age_s": 7300.0, "venues": ["binance", "deribit"], "status": "pulled"},
]
SWEEPS = [{"side": "sell", "count": 3, "total_usd": 8.3e6, "ts": NOW - 60, "price_lo": 63700.0,
           "price_hi": 63900.0, "levels": 11, "venues": ["binance", "okx"], "liq_usd": 2.1e6}]
ABSORPTIONS = [{"side": "bid", "price": 63650.0, "usd": 1.2e6, "start": NOW - 90, "duration_s": 45.0,
                "outcome": "pending", "venues": ["bybit", "okx", "deribit"]}]
CONVERGENCE = [{"bucket": 2544, "price": 63600.0, "distance_bp": -57.0, "score": 0.83, "count": 4,
                "components": ["wall", "sweep", "absorption", "synthetic"]}]
REPORTS = {"walls": WALLS, "sweeps": SWEEPS, "absorptions": ABSORPTIONS, "convergence": CONVERGENCE,
           "asymmetry": {"mid": 63960.0, "bid_share": 0.61, "dominant": "bids", "walls": 0.9},
           "verdict": "▼ 63,600 −0.6% $9.6M · book: bids 61%"}


class LongReports(FixtureSource):
    """The real fixture map, with reports whose lines are as long as the engine's get."""

    def latest(self, view):
        snap = super().latest(view)
        return None if snap is None else replace(snap, reports=REPORTS, verdict=REPORTS["verdict"])


@pytest.fixture(scope="module")
def source():
    return LongReports(("BTC",), now=NOW)


async def panel(source, size) -> tuple[list[str], int, list[str]]:
    app = build_app(source)
    async with app.run_test(size=size) as pilot:
        for _ in range(40):
            await pilot.pause()
            if app.draws and app.query_one(ReportsTable).rows:
                break
        if not app.show_reports:
            await pilot.press("r")
        for _ in range(5):
            await pilot.pause()
        table = app.query_one(ReportsTable)
        width = table.size.width
        lines = [table.line_text(y).rstrip() for y in range(table.size.height)]
        return lines, width, screen_lines(app)


def wall_lines(lines: list[str]) -> list[str]:
    i = lines.index("WALLS (3)")
    return lines[i + 2:i + 5]  # title, asymmetry read, then the walls


async def test_wide_terminal_shows_every_column_aligned(source):
    lines, width, screen = await panel(source, (200, 50))
    assert width >= 55  # a wide terminal gives the panel room
    walls = wall_lines(lines)
    assert walls[0] == " bid 63,600 $9.6M −0.57% 28s  5× active   bin,byb,okx"
    assert walls[1] == " ask 64,325 $850k +0.55%  7m 12× consumed okx"
    assert walls[2] == " bid 61,250 $123M −4.31%  2h 41× pulled   bin,der"
    # Columns line up (right-aligned numbers end together); every line fits without an ellipsis.
    for mark in ("%", "×"):
        assert len({w.index(mark) for w in walls}) == 1
    assert all(len(x) <= width and "…" not in x for x in lines)
    sweep = next(x for x in lines if "sell" in x)
    assert "$8.3M" in sweep and "11lv" in sweep and "×3" in sweep and "liq $2.1M" in sweep and "bin,okx" in sweep
    conv = next(x for x in lines if "wall+swp+abs+syn" in x)
    assert "63,600" in conv and "score 0.83" in conv
    assert any("bid share 61% · bids · walls: bids 95%" in x for x in lines)
    # What the compositor sends contains the very same wall line (nothing drawn over it).
    assert any(walls[0] in row for row in screen)


async def test_120_columns_shrink_in_order_without_cutting_fields(source):
    lines, width, screen = await panel(source, (120, 40))
    assert width < 55
    walls = wall_lines(lines)
    # Venues shortened first, then density dropped; side, price, size, distance, age, status all kept.
    assert walls[0] == " bid 63,600 $9.6M −0.57% 28s active   bin+2"
    assert walls[1] == " ask 64,325 $850k +0.55%  7m consumed okx"
    assert all(len(x) <= width and "…" not in x for x in lines)
    assert "12×" not in "\n".join(walls)
    assert any(walls[1] in row for row in screen)


async def test_80_columns_panel_keeps_the_essentials(source):
    lines, width, _ = await panel(source, (80, 24))
    walls = wall_lines(lines)
    assert walls[0].split() == ["bid", "63,600", "$9.6M", "−0.57%", "active"]
    assert walls[1].split() == ["ask", "64,325", "$850k", "+0.55%", "consumed"]
    assert all(len(x) <= width and "…" not in x for x in lines)


def test_usd_is_compact():
    assert [usd(x) for x in (900, 8_500, 85_000, 850_000, 999_999, 1.2e6, 42.5e6, 123.4e6, 1.2e9)] == \
        ["$900", "$8.5k", "$85k", "$850k", "$1.0M", "$1.2M", "$42.5M", "$123M", "$1.2B"]
    assert max(len(usd(x)) for x in (9.99e5, 9.99e6, 99.9e6, 999e6, 99.9e9)) <= 6


def test_layout_shrink_order_and_realignment():
    # One width past every shrink step: the essentials still come out whole.
    tight = layout("walls", WALLS, 25.0, width=20)
    assert tight == [" bid 63,600 $9.6M", " ask 64,325 $850k", " bid 61,250 $123M"]
    # A later drop frees room for a long form again (status spelled out once the venues are gone).
    mid = layout("walls", WALLS, 25.0, width=33)
    assert mid[1].endswith("consumed")
    # Absorptions drop the duration before shortening the outcome.
    ab = layout("absorptions", ABSORPTIONS, 25.0, width=33)
    assert ab == [" 63,650 bid $1.2M pending byb+2"]
    rows = build_rows(REPORTS, 25.0, width=33)
    assert all(len(r.text) <= 33 for r in rows)


def test_exact_coverage_and_accuracy_wrap_rather_than_cut():
    """``exact: 77 wallets, 100 % of HL OI · model 8 % vs base 9 % of exact $ (0.9×) n=12`` was cut after
    ``base 9 %`` in the 200-column panel: the ratio and its n — what the line is read for — were lost. Too long
    for the width, it goes on two lines; each whole."""
    reports = {"forecast": {"clusters": [], "horizon_hours": 1.0},
               "exact": {"label": "exact: 77 wallets, 100 % of HL OI",
                         "accuracy_text": "model 8 % vs base 9 % of exact $ (0.9×) n=12"}}
    wide = [r.text for r in build_rows(reports, 25.0, width=120) if r.kind == "info"]
    assert wide == [" exact: 77 wallets, 100 % of HL OI · model 8 % vs base 9 % of exact $ (0.9×) n=12"]
    narrow = [r.text for r in build_rows(reports, 25.0, width=60) if r.kind == "info"]
    assert narrow == [" exact: 77 wallets, 100 % of HL OI", "  model 8 % vs base 9 % of exact $ (0.9×) n=12"]
