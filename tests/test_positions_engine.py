"""Exact positions through the engine: the Positions mode's grid, the coverage label, the verdict's exact
magnets and the live accuracy on the snapshot, from a PositionBook filled with constructed positions."""

import copy

import numpy as np
import pytest

from liqmap.config import DEFAULTS
from liqmap.core import events as ev
from liqmap.core.engine import Engine
from liqmap.core.grids.modes import exact_layers
from liqmap.core.grids.window import make_window
from liqmap.core.market import Market
from liqmap.core.positions import SEGMENT_DTYPE, ExactPosition, PositionBook

T0 = 1_700_000_040.0  # on a minute boundary + 40 s
# The venue whose positions are exact: Hyperliquid once it is a venue; any venue's id works for the engine
VENUE = "hyperliquid" if "hyperliquid" in ev.VENUE_ID else "bitmex"


def test_exact_layers_draw_each_band_over_its_columns():
    win = make_window(T0, "1m", 10, 50.0, 1980, 40)  # rows 1980..2019 (99,000 .. 100,950), columns of 60 s
    c0 = win.col0
    seg = np.array([
        (99_010.0, 1, 1e6, (c0 + 2) * 60.0 + 5, (c0 + 4) * 60.0 + 1),  # long band, columns 2..4
        (100_500.0, -1, 2e6, (c0 - 50) * 60.0, np.inf),  # short band open since before the window: to now
        (10.0, 1, 5e6, (c0 + 1) * 60.0, np.inf),  # off the rows: dropped, never clipped onto the edge
    ], dtype=SEGMENT_DTYPE)
    lo, sh = exact_layers(seg, win, now=T0)
    r_long, r_short = 1980 - 1980, 2010 - 1980
    assert lo[r_long].tolist() == [0, 0, 1e6, 1e6, 1e6, 0, 0, 0, 0, 0]
    assert sh[r_short].tolist() == [2e6] * 10
    assert lo.sum() == 3e6 and sh.sum() == 2e7


def _positions(ts):
    w = ["0x" + f"{i:040x}" for i in range(4)]
    return {
        w[0]: [ExactPosition(w[0], "BTC", 10.0, 100_000.0, 20, True, 97_000.0, 50_000.0, ts)],
        w[1]: [ExactPosition(w[1], "BTC", 2.0, 100_000.0, 20, True, 97_010.0, 10_000.0, ts)],
        w[2]: [ExactPosition(w[2], "BTC", -4.0, 100_000.0, 10, False, 104_000.0, 40_000.0, ts)],
        w[3]: [ExactPosition(w[3], "ETH", 1.0, 3_000.0, 10, True, 2_800.0, 300.0, ts)],
    }


def test_engine_positions_mode_label_verdict_and_accuracy():
    cfg = copy.deepcopy(DEFAULTS)
    clock = lambda: T0  # noqa: E731
    m = Market(["BTC", "ETH"], clock=clock)
    rng = np.random.default_rng(3)
    tr = np.zeros(200, ev.TRADE_DTYPE)
    tr["ts"] = np.linspace(T0 - 600, T0 - 1, 200)
    tr["price"] = 100_000.0 + rng.normal(0, 5, 200)
    tr["qty"], tr["side"], tr["venue"] = 0.1, 1, ev.VENUE_ID[VENUE]
    tr["usd"] = tr["price"] * tr["qty"]
    m.add("trade", "BTC", tr)
    m.add("oi", "BTC", ev.open_interest([(T0 - 5, 100.0, 1e7, 100_000.0, ev.VENUE_ID[VENUE])]))
    book = PositionBook()
    for wallet, ps in _positions(T0 - 300).items():
        book.apply(wallet, ps, T0 - 300)
    eng = Engine(cfg, m, clock=clock)
    eng.attach_positions(book, VENUE, every_s=300.0)
    key = eng.set_view("BTC", "positions", "1m", None, 200, None)
    eng.step(T0)
    snap = eng.latest(key)
    g = snap.grid
    assert g.mode == "positions"
    ex = snap.reports["exact"]
    # 3 BTC wallets; |10| + |2| + |4| = 16 BTC of both sides against 100 BTC one-sided OI: 8 %
    assert ex["label"] == f"exact: 3 wallets, 8 % of {'HL' if VENUE == 'hyperliquid' else VENUE} OI"
    assert ex["coverage"]["oi_share"] == pytest.approx(16 / 200)
    assert ex["at_risk_long_usd"] == pytest.approx(10 * 97_000 + 2 * 97_010)
    assert ex["at_risk_short_usd"] == pytest.approx(4 * 104_000)
    # the right edge: exact levels now, by row
    step = g.step
    row = int(np.floor(97_000.0 / step + 1e-9)) - g.row0
    assert g.profile_long[row] == pytest.approx(10 * 97_000 + (2 * 97_010 if int(97_010 / step) == int(97_000 / step)
                                                              else 0))
    # the bands: the long cluster from when it was first seen (300 s ago) to the last column
    col_seen = int((T0 - 300) // 60) - g.col0
    assert g.long[row, col_seen:].min() > 0 and g.long[row, :col_seen].max() == 0
    # the verdict names the exact magnet below price, and says it is exact
    assert "▼ 97,000" in snap.verdict and "exact $" in snap.verdict.split(" · ")[0]
    # live accuracy: the model knows nothing of these wallets yet (no OI steps): it ranks like the baseline
    acc = ex["accuracy"]
    assert acc["n"] == 1 and acc["model_share"] == pytest.approx(acc["base_share"])
    assert ex["accuracy_text"].startswith("model ")


def test_verdict_exact_magnet_wording():
    from liqmap.core.reports.verdict import Magnet

    assert Magnet(1, 0.0, 0.0, 2.1e6).what() == "exact $2.1M"
    assert Magnet(1, 3e6, 0.0, 2.1e6).what() == "exact $2.1M + wall $3.0M"
    assert Magnet(1, 3e6, 1e5, 0.0).what() == "wall $3.0M"
