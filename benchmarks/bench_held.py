"""``held_layer``: what drawing the resting layer in a hue of its own costs (docs/map.md §2, "The resting layer's own
ramp").

A synthetic model of BTC's 1m columns after a 30 % fall in two hours (six flat hours at 60,000 first; 1,515 BTC of
open interest on two venues, the resting layer at its default share), read as the engine reads a model mode's view:
512 rows of $25 around the last price × 240 columns.

- ``value``: CPU ms per build of the view's model layers with the layer handed apart — ``column_profiles`` with
  ``rest_out``, the reach weighting (``drawn_layers``) and ``resting_plane`` (the layer's part of each drawn cell).
- baseline, same run, same model and window: the same build without the layer apart (what every build did
  before), and on screen, ``compose_levels`` (two ramps) against ``level_of`` (one) on a 60 × 200 body.

CPU time of this process (the machine is shared); medians of ``REPS`` runs.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from liqmap.core import buckets
from liqmap.core import events as ev
from liqmap.core.events import VENUE_ID
from liqmap.core.grids.modes import drawn_layers, model_layers, resting_plane
from liqmap.core.grids.window import Window
from liqmap.core.params import GridParams
from liqmap.core.synthetic import SyntheticModel
from liqmap.core.tiers import TierTable

STEP = 25.0
FLAT = TierTable.continuous([(0, 1e12, 0.004, 125)], name="flat")
REPS = 21


def _fall_model() -> tuple[SyntheticModel, np.ndarray]:
    """(model, trades) after 360 flat minutes at 60,000 and 120 minutes falling 150 a minute."""
    m = SyntheticModel("BTC", STEP, {}, tiers={"binance": FLAT, "bybit": FLAT}, columns=240)
    t, rows = 0.0, []
    for minute in range(480):
        price = 60_000.0 if minute < 360 else 60_000.0 - (minute - 359) * 150.0
        oi = 1000.0 if minute < 5 else 1010.0
        tr = (t + 1.0, price, 0.01, 0.01 * price, 1 if minute % 2 else -1, VENUE_ID["binance"])
        rows.append(tr)
        m.update(oi=ev.open_interest([(t, oi, oi * price, price, VENUE_ID["binance"]),
                                      (t, 505.0, 505.0 * price, price, VENUE_ID["bybit"])])
                 if minute % 5 == 0 else None, trades=ev.trades([tr]))
        m.advance(t + 2.0)
        t += 60.0
    return m, ev.trades(rows)


def _cpu_ms(*fns) -> list[float]:
    """Median CPU ms of each of ``fns``, run in turn within each repetition (pair by pair: a busy spell of the
    shared machine hits both sides alike)."""
    runs: list[list[float]] = [[] for _ in fns]
    for _ in range(REPS):
        for fn, out in zip(fns, runs):
            t0 = time.process_time()
            fn()
            out.append((time.process_time() - t0) * 1000.0)
    return [statistics.median(r) for r in runs]


def bench_held_layer() -> dict:
    from liqmap.ui.palettes import compose_levels, level_of

    m, trades = _fall_model()
    cur = int(m._t // 60)
    row0 = buckets.index(m.last_price, STEP) - 256
    win = Window(row0=row0, nrows=512, col0=cur - 239, ncols=240, step=STEP, period=60)
    params = GridParams()

    def plain():
        lo, sh = model_layers(m, "1m", win)
        drawn_layers(m, win, lo, sh, trades, params)

    held_out = {}

    def apart():
        rest = np.zeros((win.nrows, win.ncols), np.float32)
        lo, sh = model_layers(m, "1m", win, rest_out=rest)
        dlo, dsh = drawn_layers(m, win, lo, sh, trades, params)
        held_out["plane"] = resting_plane("synthetic", rest, lo, sh, dlo, dsh, params)
        held_out["heat"] = dlo + dsh

    plain()
    apart()  # warm caches (the model's shapes) outside the timed runs
    base_ms, value_ms = _cpu_ms(plain, apart)
    plane, heat = held_out["plane"], held_out["heat"]
    held_share = float(plane.sum() / heat.sum()) if plane is not None and heat.sum() > 0 else 0.0
    # on screen: a 60 × 200 body (the last 200 columns, 60 rows of 8 buckets each around price)
    body = heat[:480, -200:].reshape(60, 8, 200).sum(axis=1).astype(np.float32)
    held = (plane[:480, -200:].reshape(60, 8, 200).sum(axis=1) if plane is not None
            else np.zeros_like(body)).astype(np.float32)
    flow = np.maximum(body - held, 0.0)
    top, htop = float(flow.max()), float(held.max())
    one_ms, two_ms = (x / 50 for x in _cpu_ms(lambda: [level_of(body, top, 10) for _ in range(50)],
                                              lambda: [compose_levels(flow, held, top, 0.0, htop, 0.0, 10, 6)
                                                       for _ in range(50)]))
    return {"value": round(value_ms, 3), "unit": "ms", "target": None, "ok": plane is not None,
            "detail": {"build_plain_ms": round(base_ms, 3), "ratio": round(value_ms / base_ms, 3),
                       "held_share_of_drawn": round(held_share, 3),
                       "screen_level_of_ms": round(one_ms, 4), "screen_compose_ms": round(two_ms, 4),
                       "screen_ratio": round(two_ms / one_ms, 2), "rows": win.nrows, "cols": win.ncols}}


BENCHMARKS = {"held_layer": bench_held_layer}
