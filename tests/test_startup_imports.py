"""The demo's first frame waits for no heavy library (issue 19 item 3), and parsing without cryptofeed is the
same as parsing over it.

The venue classes are composed over cryptofeed only for live feeds (``liqmap/feeds/venues/_bases.py``); the
demo, replays and ``FrameParser`` use the offline base. So the start path of ``liqmap --demo`` must not load
cryptofeed (with aiohttp, requests, websockets: a third of the first frame's CPU), ccxt or polars: checked in a
fresh interpreter running the demo's data side to its first engine build, and in the real app in a pty at its
first drawn frame. The offline base must plan exactly what cryptofeed plans (subscriptions, connections, the
messages subscribe sends), with cryptofeed's channel names and ids, for every venue."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from liqmap.commands.run import HEAVY_AT_START
from liqmap.core.assets import default_universe
from liqmap.feeds.parser import FrameParser
from liqmap.feeds.venues import ALL_KINDS, VENUE_CLASSES, base
from liqmap.feeds.venues._bases import live_class, offline_class

ROOT = Path(__file__).resolve().parent.parent

# The demo's data side (what the app's build thread runs), to its first engine build, then what it loaded.
_DEMO_START = """
import asyncio, json, sys, types
from liqmap.config import load
from liqmap.commands.run import HEAVY_AT_START, build_source
cfg = load()
src = build_source("demo", cfg, types.SimpleNamespace(seed=3, speed=None))
rt = src.runner
built = []
rt.trace = built.append

async def main():
    task = asyncio.ensure_future(rt.run())
    for _ in range(3000):
        if "engine-first-build" in built:
            break
        await asyncio.sleep(0.01)
    await rt.stop()
    task.cancel()

asyncio.run(main())
print(json.dumps({"built": "engine-first-build" in built, "trades": int(sum(len(r) for r in rt.market.rings("trade", rt.screen_asset))),
                  "loaded": [m for m in HEAVY_AT_START if m in sys.modules]}))
"""


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"),
            "PYTHONPATH": str(ROOT)}


def test_heavy_libraries_are_the_connection_stack_ccxt_and_polars():
    assert {"cryptofeed", "aiohttp", "requests", "ccxt", "polars"} <= set(HEAVY_AT_START)


def test_the_demo_data_side_reaches_its_first_build_without_heavy_imports(tmp_path):
    out = subprocess.run([sys.executable, "-c", _DEMO_START], env=_env(tmp_path), capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["built"] and got["trades"] > 0  # the first chunk of history was parsed into the market
    assert got["loaded"] == [], f"loaded before the demo's first build: {got['loaded']}"


def test_the_app_draws_its_first_frame_without_heavy_imports(tmp_path):
    """The real ``liqmap --demo`` in a pty: its first-frame probe names the heavy libraries loaded by then."""
    assert shutil.which("tmux"), "tmux is required"
    sock = f"liqmap-startup-{uuid.uuid4().hex[:8]}"
    probe = tmp_path / "first-frame"
    env = {"XDG_CONFIG_HOME": tmp_path / "cfg", "XDG_DATA_HOME": tmp_path / "data", "PYTHONPATH": ROOT,
           "TERM": "xterm-256color", "LIQMAP_FIRST_FRAME_FILE": probe}
    envs = " ".join(f"{k}={v}" for k, v in env.items())
    tmux = ["tmux", "-L", sock]
    subprocess.run([*tmux, "new-session", "-d", "-s", sock, "-x", "120", "-y", "40", "sleep 120"], check=True)
    try:
        subprocess.run([*tmux, "respawn-pane", "-k", "-t", sock,
                        f"cd {ROOT} && env -u COLUMNS -u LINES {envs} {sys.executable} -m liqmap --demo --color 256; "
                        f"sleep 30"], check=True)
        end = time.monotonic() + 60
        while time.monotonic() < end and not (probe.exists() and "loaded:" in probe.read_text()):
            time.sleep(0.1)
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", sock], capture_output=True, text=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", sock))
    assert probe.exists(), f"no first frame within 60 s; screen:\n{screen}"
    loaded = probe.read_text().splitlines()[1].split(":", 1)[1].strip()
    assert loaded == "", f"loaded before the first frame: {loaded}"


# ---------------------------------------------------------------------------------------------- offline = live
def test_channel_names_are_cryptofeeds():
    from cryptofeed import defines

    assert (base.L2_BOOK, base.LIQUIDATIONS, base.OPEN_INTEREST, base.TRADES, base.PERPETUAL) == \
        (defines.L2_BOOK, defines.LIQUIDATIONS, defines.OPEN_INTEREST, defines.TRADES, defines.PERPETUAL)


@pytest.mark.parametrize("venue", list(VENUE_CLASSES))
def test_declared_id_and_channels_are_the_cryptofeed_classes(venue):
    from cryptofeed.exceptions import MissingSequenceNumber

    cls = VENUE_CLASSES[venue]
    module, _, name = cls.CRYPTOFEED.partition(":")
    cf = getattr(importlib.import_module(module), name)
    cf = cf if isinstance(cf, type) else cf()
    assert cls.id == cf.id
    assert cls.CF_CHANNELS == {k: v for k, v in cf.websocket_channels.items() if k in cls.CF_CHANNELS}
    assert set(cls.CF_CHANNELS) >= {base.KIND_CHANNEL[k] for k in cls.SUPPORTED_KINDS}
    live = live_class(cls)
    assert issubclass(live, cf) and issubclass(live, cls) and live.RESYNC is MissingSequenceNumber
    assert not issubclass(offline_class(cls), cf) and offline_class(cls).RESYNC is base.Resync


def _plan(feed) -> list[tuple]:
    """(address, channel, symbol) of every connection ``connect()`` plans, and how many connections."""
    out = []
    conns = feed.connect()
    for conn, *_ in conns:
        addr = conn.address if isinstance(conn.address, str) else tuple(conn.address)
        for chan, syms in (conn.subscription or {}).items():
            out += [(addr, chan, s) for s in syms]
    return sorted(out, key=repr), len(conns)


@pytest.mark.parametrize("venue", list(VENUE_CLASSES))
@pytest.mark.parametrize("channels,book", [(ALL_KINDS, None), (("depth",), ["ETH", "SOL"])])
def test_the_offline_base_plans_what_cryptofeed_plans(venue, channels, book):
    assets = default_universe()
    kinds = tuple(k for k in channels if k in VENUE_CLASSES[venue].SUPPORTED_KINDS)
    assert kinds  # every venue has a flow feed and a light depth
    ours = FrameParser(venue, assets, lambda *a: None, channels=kinds, book_assets=book)
    theirs = FrameParser(venue, assets, lambda *a: None, channels=kinds, book_assets=book, live_class=True)
    off, live = ours.venue_feed, theirs.venue_feed
    assert type(off).__mro__[1] is VENUE_CLASSES[venue]
    assert not [c for c in type(off).__mro__ if c.__module__.startswith("cryptofeed")]
    assert off.subscription == {k: set(v) for k, v in live.subscription.items()}
    assert _plan(off) == _plan(live)

    async def go():
        await ours.subscribe()
        await theirs.subscribe()

    asyncio.run(go())
    sent = sorted((c.address, m) for c in ours.connections for m in c.sent)
    assert sent == sorted((c.address, m) for c in theirs.connections for m in c.sent)
    assert sent or venue == "binance"  # Binance subscribes in the URL


def test_a_subscription_over_the_endpoints_limit_is_split_as_cryptofeed_splits_it(monkeypatch):
    hl = VENUE_CLASSES["hyperliquid"]
    monkeypatch.setattr(hl, "MAX_SUBSCRIPTIONS", 40)  # 65 coins x 3 channels: five connections
    assets = default_universe()
    off = FrameParser("hyperliquid", assets, lambda *a: None).venue_feed
    live = FrameParser("hyperliquid", assets, lambda *a: None, live_class=True).venue_feed
    plan, n = _plan(off)
    assert n == -(-len(plan) // 40) > 1
    assert [sorted(map(repr, c.subscription.items())) for c, *_ in off.connect()] == \
        [sorted(map(repr, c.subscription.items())) for c, *_ in live.connect()]


def test_demo_frames_parse_the_same_over_the_offline_base_as_over_cryptofeed():
    """Five venues' demo frames through both compositions: the same rows, counters, errors and books."""
    import copy

    import numpy as np

    from liqmap.config import DEFAULTS
    from liqmap.core.assets import universe
    from liqmap.feeds.demo.source import DemoSource

    assets = ["BTC", "ETH", "SOL"]
    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["assets"] = assets
    src = DemoSource(cfg, assets=assets, seed=1, start=1.7e9, focus=[])

    def parsers(live: bool):
        rows: dict = {}
        ps = {v: FrameParser(v, universe(assets), lambda k, a, r: rows.setdefault((k, a), []).append(r.copy()),
                             None, cfg, live_class=live) for v in cfg["universe"]["venues"]}
        for p in ps.values():
            p.venue_feed.plausible.clock_check = False
        return ps, rows

    (off, off_rows), (live, live_rows) = parsers(False), parsers(True)

    async def go():
        for rts, venue, conn, raw in src.run_for(180):
            await off[venue].feed(raw, rts, conn)
            await live[venue].feed(raw, rts, conn)

    asyncio.run(go())
    assert off_rows.keys() == live_rows.keys() and {k for k, _ in off_rows} >= {"trade", "liq", "oi"}
    for key in off_rows:
        a, b = np.concatenate(off_rows[key]), np.concatenate(live_rows[key])
        assert len(a) == len(b) and all(np.array_equal(a[f], b[f]) for f in a.dtype.names), key
    for v in off:
        fa, fb = off[v].venue_feed, live[v].venue_feed
        assert dict(fa.stats) == dict(fb.stats) and dict(fa.errors) == dict(fb.errors), v
        assert fa.books.keys() == fb.books.keys() and fa.books, v
        for a in fa.books:
            assert fa.books[a].version == fb.books[a].version and str(fa.books[a].bids) == str(fb.books[a].bids), (v, a)
