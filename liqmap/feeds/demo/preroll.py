"""The demo's pre-roll: history written into the app's market before (and while) the live stream runs.

A trader who starts ``liqmap --demo`` expects a map with a past, as a live start restored from disk shows.
So every simulated asset begins ``demo.preroll_minutes`` before the wall clock and is brought up to it
unpaced (``DemoSource.catch_up``), through the runtime's one ingest path into the same ``Market`` — the
engine and the model see exactly what live data would have produced, with event timestamps in the past
so the map's columns line up with the wall clock.

Order and fairness: the asset on screen first (``prioritize`` moves an asset the user switches to to the
front), then the focus assets, then the rest of the universe. Work is done in chunks of simulated time on
the event loop — the parsers are asyncio code and the source's venue emitters are shared with the live
stream, so a thread would race them — and every chunk yields to the loop (background assets also pause a
little), so the UI never waits for it. ``on_chunk(asset, t)`` runs after each chunk (the app ingests the
asset into its engine at the history's own time ``t``); ``on_done(asset)`` once the asset has joined the
live stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from .source import DemoSource, Frame

MAX_WINDOW_PREROLL_S = 6 * 3600.0  # a wide terminal on a coarse timeframe would ask for days of history


def preroll_seconds(minutes: float, timeframe: str, columns: int, warmup_minutes: float = 0.0) -> float:
    """History to write before the live start: at least ``demo.preroll_minutes``, and enough to fill the
    visible window of the start view (``columns`` of ``timeframe``) plus the synthetic model's warm-up
    (``warmup_minutes``: a model that starts watching knows no positions yet, so the first half hour of its map
    is near-empty), so the map has no empty left part at start. Capped at six hours."""
    from ...core.timeframes import period

    if int(columns) <= 0:
        return float(minutes) * 60.0
    window = int(columns) * period(timeframe) + max(float(warmup_minutes), 0.0) * 60.0
    return max(float(minutes) * 60.0, min(float(window), MAX_WINDOW_PREROLL_S))


FIRST_CHUNK_S = 10.0  # the urgent asset's first chunk of history (enough for a first frame)
BACKGROUND_PAUSE_S = 0.002  # between background chunks: leave the loop (UI, live feed) room to breathe
# The longest the pre-roll holds the event loop at a stretch while it feeds frames: the app's screen, keys and
# live stream share this loop. A 60 s chunk takes ~0.1 s to simulate, ~0.1 s to parse and ~0.1 s to ingest on
# a busy 2-core machine; held as one step, the UI painted only between chunks (a map drawn without its reports
# panel for up to a second, keys answered as late).
SLICE_S = 0.01


class Preroll:
    def __init__(self, source: DemoSource, ingest, order=None,
                 on_chunk: Callable[[str, float], None] | None = None,
                 on_done: Callable[[str], None] | None = None, chunk_seconds: float = 60.0) -> None:
        self.source = source
        self.ingest = ingest  # async push(frame) and flush(): liqmap.feeds.ingest.Ingest
        self.on_chunk = on_chunk
        self.on_done = on_done
        self.chunk_seconds = chunk_seconds
        first = [n for n in (order or []) if n in source.assets]
        self.queue: list[str] = [n for n in dict.fromkeys(first + source.pending()) if not source.is_live(n)]
        self.urgent: str | None = self.queue[0] if self.queue else None
        self._gens: dict[str, Iterator[list[Frame]]] = {}
        self.done: list[str] = []  # assets whose history is complete, in the order they completed
        self.frames = 0

    def prioritize(self, name: str) -> None:
        """Write this asset's history next (the user just put it on screen)."""
        name = (name or "").upper()
        if name in self.queue:
            self.queue.remove(name)
            self.queue.insert(0, name)
            self.urgent = name

    def pending(self) -> list[str]:
        return list(self.queue)

    async def run(self, stop: asyncio.Event | None = None) -> int:
        """Write every pending asset's history; returns the frames fed."""
        while self.queue and not (stop is not None and stop.is_set()):
            name = self.queue[0]
            gen = self._gens.get(name)
            if gen is None:
                first = FIRST_CHUNK_S if name == self.urgent else None  # the screen's first frame: soon
                gen = self._gens[name] = self.source.catch_up(name, self.chunk_seconds, first)
            chunk = next(gen, None)
            if chunk is None:  # caught up: the asset is in the live stream now
                self.queue.remove(name)
                self._gens.pop(name, None)
                self.done.append(name)
                if self.urgent == name:
                    self.urgent = None
                if self.on_done is not None:
                    self.on_done(name)
                continue
            await asyncio.sleep(0)  # simulated: let the UI paint before the chunk is parsed
            await self.feed(chunk)
            if self.on_chunk is not None:
                await asyncio.sleep(0)  # parsed: and again before the engine ingests it
                self.on_chunk(name, self.source.sim(name).now)
            await asyncio.sleep(0 if name == self.urgent else BACKGROUND_PAUSE_S)
        return self.frames

    async def feed(self, frames: list[Frame]) -> None:
        push = self.ingest.push
        clock = time.perf_counter
        until = clock() + SLICE_S
        for f in frames:
            await push(f, history=True)  # (parsing never suspends: yielding is up to us)
            if clock() > until:
                self.ingest.flush()  # this slice's rows, measured against its own (history) receipts
                await asyncio.sleep(0)
                until = clock() + SLICE_S
        self.ingest.flush()  # the chunk's rows in the market before the engine ingests them
        self.frames += len(frames)
