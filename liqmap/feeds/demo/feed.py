"""``DemoFeed``: the demo market as a ``FrameSource`` (``liqmap/feeds/sources.py``) for the runtime.

The simulated market (``DemoSource``) emits each venue's raw frames; this feed hands them to the runtime's
one ingest path exactly as a recording or the live sockets would be: the pre-roll's history first (the
asset on screen first, ``preroll.py``), then the live stream paced to the wall clock × ``speed``. The map
runs on simulated time (``clock``), so a demo faster than real time is never "in the future".

``pump`` is the one loop that drives a demo source's frames into an ingest (paced and endless, or ``seconds``
of simulated time unpaced).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .source import DemoSource


async def pump(source: DemoSource, ingest, seconds: float | None = None, stop: asyncio.Event | None = None,
               tap=None) -> int:
    """Feed the source's frames into ``ingest`` (anything with ``async push_many(frames)`` and ``flush()``), a
    simulated step's frames as one run, the rows handed to the market after every step. Paced and endless when
    ``seconds`` is None; otherwise ``seconds`` of simulated time unpaced. ``tap(frame)`` sees every frame (before
    the step's run is parsed). Returns the frames fed."""
    n = 0
    push_many = ingest.push_many

    async def feed(batch) -> None:
        nonlocal n
        if tap is not None:
            for f in batch:
                tap(f)
        await push_many(batch)
        n += len(batch)
        ingest.flush()

    if seconds is not None:
        for batch in source.run_batches(seconds):
            await feed(batch)
            await asyncio.sleep(0)
        return n
    async for batch in source.batches():
        await feed(batch)
        if stop is not None and stop.is_set():
            break
    return n


class DemoFeed:
    """The simulated five-venue market as the runtime's frame source (``liqmap --demo``, ``collect --demo``).

    ``preroll`` seconds of history are written before the live stream (0: none); ``lazy`` builds an asset's
    simulator only when first needed (start-up pays for the asset on screen alone).
    """

    label = "DEMO"
    recorder = None  # ``liqmap record --demo``: the writer the positions answers go to (``hl_positions``)

    def __init__(self, cfg: dict[str, Any], assets=None, seed: int | None = None, speed: float | None = None,
                 focus=None, preroll: float = 0.0, lazy: bool = False, start: float | None = None) -> None:
        self.cfg = cfg
        self.demo = DemoSource(cfg, assets=assets, seed=seed, speed=speed, focus=focus, preroll=preroll, lazy=lazy,
                               start=start)
        self.assets = self.demo.assets
        self.preroll = None
        self.status = ""
        self._rt = None
        self._screen_chunks = 0  # pre-roll chunks of the screen asset ingested so far

    def clock(self) -> float:
        """Simulated time drives the map (wall time before the first step)."""
        return max(self.demo.now(), 0.0) or time.time()

    def tiers(self):
        return None  # the engine's bundled margin tables (the demo's venues use them too)

    def health(self) -> dict | None:
        return None  # the ingest's per-venue records are the demo's health

    # ------------------------------------------------------------------ runtime hooks
    def attach(self, rt) -> None:
        """Built into ``rt``: the screen asset's simulator now (off the loop), the rest held for the pre-roll."""
        from .preroll import Preroll

        self._rt = rt
        screen = rt.screen_asset
        if screen in self.demo.assets:
            self.demo.sim(screen)
        pending = self.demo.pending()
        if pending and rt.engine is not None:
            rt.engine.hold(pending)  # their past is still to come: the engine must not run ahead of it
        if pending:
            self.preroll = Preroll(self.demo, rt.ingest, order=[screen, *rt.focus_extra],
                                   on_chunk=self._preroll_chunk, on_done=self._preroll_done)

    def first_data(self, asset: str) -> bool:
        """Whether the first build may run: a live asset, or the first chunk of its history is in."""
        return self._screen_chunks > 0

    def on_view(self, asset: str) -> None:
        self.demo.set_focus([asset, *self._rt.focus_extra] if self._rt is not None else [asset])
        if self.preroll is not None:
            self.preroll.prioritize(asset)

    def _preroll_chunk(self, asset: str, t: float) -> None:
        """A chunk of history is in the market: the engine takes it at the history's own time."""
        rt = self._rt
        if rt.engine is not None:
            rt.engine.ingest(asset, t)
        if asset == rt.screen_asset:
            self._screen_chunks += 1

    def _preroll_done(self, asset: str) -> None:
        rt = self._rt
        if rt.engine is not None:
            rt.engine.release(asset)
        if asset == rt.screen_asset:
            rt.screen_history_done(asset)

    async def _run_preroll(self, stop: asyncio.Event) -> None:
        try:
            await self.preroll.run(stop)
        except Exception as e:  # the live demo goes on without the rest of the history; say why
            msg = f"demo pre-roll stopped: {e!r}"
            self.status = msg
            if self._rt.engine is not None:
                self._rt.engine.status = msg
            for a in self.preroll.pending():
                self.demo.join(a)
                if self._rt.engine is not None:
                    self._rt.engine.release(a)

    async def run(self, rt, stop: asyncio.Event) -> None:
        now = self.clock()
        for v in rt.venues:
            h = rt.ingest.health_of(v, open_connections=0)
            h.on_connect(f"demo-{v}", now)
            h.open_connections = 1  # the simulated venue's one stand-in connection
        tasks = [asyncio.ensure_future(pump(self.demo, rt.ingest, stop=stop))]
        if self.preroll is not None:
            tasks.append(asyncio.ensure_future(self._run_preroll(stop)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def close(self) -> None:
        return None
