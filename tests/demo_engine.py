"""One asset of the demo market through the real parsers into a ``Market`` and an ``Engine`` (no runtime, no
app): the engine's own views and reports on a fixed seed, stepped every 10 simulated seconds."""

from __future__ import annotations

import copy

from liqmap.config import DEFAULTS
from liqmap.core.engine import Engine
from liqmap.core.market import Market
from liqmap.feeds.demo import DemoSource, make_parsers

START = 1_700_000_000.0


async def engine_on_demo(minutes: float, seed: int, mode: str, rows: int, cfg: dict | None = None):
    """BTC of the demo market (``seed``) for ``minutes`` with the ``mode`` view of ``rows`` rows on screen.
    Returns (cfg, engine, the view's key, the simulated time at the end)."""
    cfg = copy.deepcopy(DEFAULTS) if cfg is None else cfg
    src = DemoSource(cfg, assets=["BTC"], seed=seed, start=START, focus=["BTC"], books=False)
    market = Market(["BTC"], clock=src.now)
    parsers = make_parsers(src, market.add, None, cfg)
    eng = Engine(cfg, market, clock=src.now)
    key = eng.set_view("BTC", mode, "1m", None, rows, None)
    end = src.now() + minutes * 60.0
    next_step = src.now() + 10.0
    while src.now() < end:
        for ts, venue, conn, raw in src.step():
            await parsers[venue].feed(raw, ts, conn)
        if src.now() >= next_step:
            eng.step(src.now())
            next_step += 10.0
    eng.step(src.now())
    return cfg, eng, key, src.now()
