"""``liqmap record OUT [--demo] [--duration S]``: every raw frame — websocket and REST, with receipt time,
venue and connection — into one recording (``docs/recording.md``).

Live, the collectors run as they do in the app, with the raw tap writing every frame the venues send; a
status line per venue goes to stderr every ``--status-every`` seconds (default 10). ``--duration`` stops
after that many seconds; Ctrl-C / SIGTERM stop cleanly (the file is closed and complete either way).

``--demo`` records the simulated market instead (deterministic with ``--seed``): with ``--duration`` it
writes that many seconds of *simulated* market as fast as the CPU allows; without, it runs paced by the
wall clock until stopped.

Exit 0 when frames were recorded; 1 when live collection received nothing (every venue's failure is
printed); 2 for a bad output path or when the demo market is not built.
"""

from __future__ import annotations

import asyncio
import math
import signal
import sys
import time
from typing import Any

from ..core.events import VENUES


def _open_writer(out: str, venues, assets, cfg, meta, contracts=None):
    from ..feeds.recording import RecordingWriter

    flush = float((cfg.get("recording") or {}).get("flush_seconds", 2.0))
    return RecordingWriter(out, venues, assets, flush_seconds=flush, meta=meta, contracts=contracts)


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            pass


async def record_live(out: str, cfg: dict[str, Any], duration: float | None, status_every: float = 10.0,
                      stop: asyncio.Event | None = None, endpoints: dict | None = None, err=None,
                      metadata=None) -> int:
    """The runtime with the live source and the recorder as its front end (no engine: frames only)."""
    from ..core.assets import universe
    from ..feeds.recording import contracts_of
    from ..feeds.sources import LiveSource
    from ..runtime import Runtime

    err = err or sys.stderr
    names = list(cfg["universe"]["assets"])
    venues = [v for v in cfg["universe"]["venues"] if v in VENUES]
    assets = universe(names)
    if metadata is not None:
        # Contract specs are settled before the first frame and written into the header, so replay
        # converts sizes exactly as this session's parsers did.
        wait = float((cfg.get("recording") or {}).get("metadata_wait_seconds", 15.0))
        try:
            await asyncio.wait_for(metadata.refresh(venues, assets), wait)
        except asyncio.TimeoutError:
            print(f"liqmap: record: contract metadata not fetched in {wait:g} s; using the cache/defaults",
                  file=err)
        assets = await asyncio.to_thread(metadata.apply, assets)
    writer = _open_writer(out, venues, names, cfg, {"source": "live"}, contracts_of(assets))
    rt = Runtime(cfg, LiveSource(cfg, assets, venues, recorder=writer, endpoints=endpoints, backfill=False),
                 engine=False)
    col = rt.source.collector
    stop = stop or asyncio.Event()
    rt.stop_event = stop
    _install_stop(stop)
    t0 = time.monotonic()
    feed, tasks = rt.start()  # the collector; the Positions layer's poller where Hyperliquid is recorded
    next_status = t0 + status_every
    try:
        while not stop.is_set() and not feed.done():
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            writer.maybe_flush()
            if writer.error:
                print(f"liqmap: {writer.error}", file=err, flush=True)
                break
            if now >= next_status:
                next_status = now + status_every
                print(_status(col, writer, now - t0), file=err, flush=True)
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except asyncio.TimeoutError:
                pass
    finally:
        stop.set()
        await asyncio.gather(feed, *tasks, return_exceptions=True)
        await rt.stop()
        writer.close()
    health = col.health()
    print(_status(col, writer, time.monotonic() - t0), file=err, flush=True)
    if writer.error:
        print(f"liqmap: record: {writer.error}", file=err)
        return 1
    if writer.frames == 0:
        for venue, h in health.items():
            print(f"liqmap: record: {venue}: {h['state']}, {h['last_error'] or 'no frames'}", file=err)
        print(f"liqmap: record: no frames received; {out} holds only the header", file=err)
        return 1
    answers = f", {writer.answers:,} positions answers" if writer.answers else ""
    print(f"liqmap: recorded {writer.frames:,} frames ({writer.rest_frames:,} REST{answers}) to {out}", file=err)
    return 0


def _status(col, writer, elapsed: float) -> str:
    parts = []
    for venue, h in col.health().items():
        age = h["last_message_age"]
        parts.append(f"{venue} {h['state']} {h['frames']:,}f" + (f" {age:.0f}s ago" if age is not None else ""))
    return f"record {elapsed:,.0f}s · {writer.frames:,} frames · " + " · ".join(parts)


async def drive_demo(rt, write, seconds: float | None = None, stop: asyncio.Event | None = None,
                     tick: float | None = None) -> int:
    """The demo's frames to ``write(frame)`` and, where the runtime has a Positions layer, its polls of the demo
    clearinghouse between the simulated steps (their answers reach the recording through the poller's
    recorder). ``seconds`` of simulated time unpaced, or paced until ``stop``. Returns the frames written.

    Without an engine only Hyperliquid's frames are parsed (their trades name the wallets to poll). With one
    (tests: the live side of a record/replay comparison) every frame is, and the engine is stepped every
    ``tick`` of receipt time by headless replay's own rule (``ReplaySource.run``), so a replay of what was
    written steps it at the same moments with the same rows."""
    from ..feeds.hl_positions import VENUE
    from ..feeds.replay import _ingest

    src, ingest, positions, engine = rt.source.demo, rt.ingest, rt.positions, rt.engine
    next_tick = None
    n = 0

    async def step(batch) -> None:
        nonlocal next_tick, n
        for f in batch:
            if tick and engine is not None:
                if next_tick is None:
                    next_tick = math.floor(f.t / tick) * tick + tick
                while f.t >= next_tick:
                    _ingest(engine, ingest, next_tick)
                    next_tick += tick
            write(f)
            if engine is not None or (positions is not None and f.venue == VENUE):
                await ingest.push(f)
        n += len(batch)
        if positions is not None:
            ingest.flush()  # the poll's price tape sees the step's trades (replay flushes before each answer)
            while await positions.poller.poll_once():  # until the budget or the due wallets run out
                pass

    if seconds is not None:
        for i, batch in enumerate(src.run_batches(seconds)):
            await step(batch)
            if i % 50 == 0:
                await asyncio.sleep(0)
    else:
        async for batch in src.batches():
            if stop is not None and stop.is_set():
                break
            await step(batch)
    if tick and engine is not None and n:
        _ingest(engine, ingest, ingest.now)  # replay's last step, at the last receipt time
    return n


async def record_demo(out: str, cfg: dict[str, Any], duration: float | None, seed: int | None,
                      speed: float | None, stop: asyncio.Event | None = None, err=None) -> int:
    """The demo market's frames, and Hyperliquid's ``clearinghouseState`` answers from the demo clearinghouse
    polled as live (wallets from the trades, the rate budget on the simulated clock), into one recording."""
    err = err or sys.stderr
    try:
        from ..feeds.demo import DemoFeed
    except ImportError:
        print("liqmap: record: demo market not built yet", file=err)
        return 2
    from ..feeds.recording import contracts_of
    from ..runtime import Runtime

    assets = list(cfg["universe"]["assets"])
    feed = DemoFeed(cfg, assets=assets, seed=seed, speed=speed)
    src = feed.demo
    venues = [v for v in cfg["universe"]["venues"] if v in VENUES]
    keep = set(venues)
    writer = _open_writer(out, venues, list(src.assets), cfg, {"source": "demo", "seed": src.seed},
                          contracts_of(src.assets))
    feed.recorder = writer
    rt = Runtime(cfg, feed, engine=False)

    def write(f) -> None:
        if f.venue in keep:
            writer.frame(f.t, f.venue, f.conn, f.raw)
        if duration is None:
            writer.maybe_flush()

    try:
        if duration is None:
            stop = stop or asyncio.Event()
            _install_stop(stop)
        # --duration is wall seconds at --speed (the demo's own speed when not given): ``--duration 150 --speed
        # 60`` records 150 × 60 s of market, written as fast as the CPU allows. Before, the speed was ignored and
        # the recording held 150 s of market time.
        await drive_demo(rt, write, None if duration is None else duration * src.speed, stop)
    finally:
        writer.close()
    if writer.error:
        print(f"liqmap: record: {writer.error}", file=err)
        return 1
    print(f"liqmap: recorded {writer.frames:,} demo frames ({writer.rest_frames:,} REST, "
          f"{writer.answers:,} positions answers, seed {src.seed}) to {out}", file=err)
    return 0


def main(args, cfg: dict[str, Any]) -> int:
    out = args.out
    try:
        open(out, "ab").close()
    except OSError as e:
        print(f"liqmap: {out}: cannot write: {e.strerror or e}", file=sys.stderr)
        return 2
    duration = getattr(args, "duration", None)
    if duration is not None and not duration > 0:
        print("liqmap: record: --duration must be positive", file=sys.stderr)
        return 2
    if getattr(args, "demo", False):
        return asyncio.run(record_demo(out, cfg, duration, getattr(args, "seed", None), getattr(args, "speed", None)))
    from ..feeds.metadata import Metadata

    metadata = Metadata.from_config(cfg, getattr(args, "data_dir", None) or cfg.get("_data_dir"))
    return asyncio.run(record_live(out, cfg, duration, float(getattr(args, "status_every", 10.0) or 10.0),
                                   metadata=metadata))
