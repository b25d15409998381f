"""``liqmap screen --headless [--json]``: the screener's rows (key ``s`` in the map) for scripts.

One row per asset of the universe from ``Engine.screener`` — the same rows the TUI's screener shows — from the
demo market (``--demo``), a recording (``--replay FILE``) or the venues (live, the default). One-shot: the
rows once, ``--after`` seconds after the start (the demo and live) or at the recording's end; streaming:
``--interval S`` writes the rows every S seconds (recording time in a replay) until ``--duration`` seconds,
``--count`` emissions or Ctrl-C.
``--json`` writes one JSON object per line (``{"ts", "source", "rows": [...]}``, the rows'
``core.screener.ScreenRow`` fields); without it, a plain-text table. Nothing is persisted.
"""

from __future__ import annotations

import asyncio
import math
import signal
import sys
import time
from typing import Any

import orjson


def _plain(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def emit(rows, now: float, label: str, as_json: bool, out) -> None:
    """One emission of the rows: a JSON line, or a text table (the TUI's cells as plain text)."""
    if as_json:
        body = {"ts": now, "source": label, "rows": [_plain(r.to_dict()) for r in rows]}
        out.write(orjson.dumps(body).decode() + "\n")
    else:
        from ..ui.screener import COLUMNS, cells

        table = [list(COLUMNS)] + [[str(getattr(c, "plain", c)) for c in cells(r)] for r in rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
        out.write(f"# {label} {stamp} UTC\n")
        for r in table:
            out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    out.flush()


def _source(cfg: dict, args):
    if getattr(args, "replay", None):
        from ..feeds.replay import ReplaySource

        return ReplaySource(args.replay, cfg, speed=0, tick=float(cfg.get("replay", {}).get("tick_seconds", 1.0)))
    if getattr(args, "demo", False):
        from ..feeds.demo.feed import DemoFeed

        preroll = 60.0 * float(cfg["demo"].get("collect_preroll_minutes", 0.0))
        return DemoFeed(cfg, assets=list(cfg["universe"]["assets"]), seed=getattr(args, "seed", None),
                        speed=getattr(args, "speed", None), preroll=preroll, lazy=preroll > 0)
    from ..feeds.metadata import Metadata
    from ..feeds.sources import LiveSource

    return LiveSource(cfg, metadata=Metadata.from_config(cfg, cfg.get("_data_dir")), backfill=False)


async def run(cfg: dict, args, out=None) -> int:
    from ..runtime import Runtime

    out = out if out is not None else sys.stdout
    as_json = bool(getattr(args, "json", False))
    interval = getattr(args, "interval", None)
    after = float(getattr(args, "after", 10.0))
    duration = getattr(args, "duration", None)
    count = getattr(args, "count", None)
    emitted = 0
    cfg = dict(cfg)
    cfg["alerts"] = []  # the screener only reads: alert rules stay with the map and collect
    source = _source(cfg, args)
    rt = Runtime(cfg, source, store=False)
    engine = rt.engine

    def ingest_all(now: float) -> None:
        for a in rt.assets:
            if not engine.held(a):
                engine.ingest(a, now)

    if getattr(args, "replay", None):  # stepped in recording time, unpaced: the same rows on every run
        nxt = [None]

        def on_tick(now: float) -> None:
            rt.ingest.flush()
            ingest_all(now)
            if interval:
                if nxt[0] is None:
                    nxt[0] = now + float(interval)
                elif now >= nxt[0]:
                    nxt[0] = now + float(interval)
                    emit(engine.screener(now), now, rt.label, as_json, out)

        source.on_tick = on_tick
        await source.run(rt)
        if source.error:
            print(f"liqmap: screen: {source.error}", file=sys.stderr)
        now = rt.clock()
        emit(engine.screener(now), now, rt.label, as_json, out)
        return 2 if source.error else 0

    stop = asyncio.Event()
    rt.stop_event = stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    feed, tasks = rt.start()
    started = time.monotonic()
    rc = 0
    try:
        every = float(interval) if interval else after
        while not stop.is_set() and not feed.done():
            try:
                await asyncio.wait_for(stop.wait(), every)
            except asyncio.TimeoutError:
                pass
            if feed.done():
                break
            now = rt.clock()
            await asyncio.to_thread(ingest_all, now)
            emit(await asyncio.to_thread(engine.screener, now), now, rt.label, as_json, out)
            emitted += 1
            if not interval or (duration is not None and time.monotonic() - started >= float(duration)) or (
                    count is not None and emitted >= int(count)):
                break
        if feed.done() and not feed.cancelled() and feed.exception() is not None:
            print(f"liqmap: screen: feed stopped: {feed.exception()!r}", file=sys.stderr)
            rc = 1
    finally:
        stop.set()
        if not feed.done():
            feed.cancel()
        await asyncio.gather(feed, *tasks, return_exceptions=True)
        await rt.stop()
    return rc


def main(args, cfg) -> int:
    if not getattr(args, "headless", False):
        print("liqmap: screen: --headless is required (in the map, the screener is key s)", file=sys.stderr)
        return 2
    return asyncio.run(run(cfg, args))
