"""The timed loop of the ingest benchmarks (``bench_ingest``, ``bench_hyperliquid``): frames through the one
ingest path as replay (``ReplaySource.run``, unpaced) drives it — runs of frames through ``Ingest.push_many``,
a run ending at each engine tick (``Ingest.flush`` once per second of receipt time, and once at the end) or
after ``YIELD_EVERY`` frames (a loop turn) — on process CPU time."""

from __future__ import annotations

import time

YIELD_EVERY = 512  # ReplaySource's default: frames between two loop turns


async def timed_push(ingest, frames) -> float:
    """Process CPU seconds to push every frame of ``frames`` (in order) through ``ingest`` and flush."""
    push_many, flush = ingest.push_many, ingest.flush
    next_flush = 0.0
    run: list = []
    t = time.process_time()
    for fr in frames:
        if fr.t >= next_flush:
            if run:
                await push_many(run)
                run = []
            flush()
            next_flush = fr.t + 1.0
        run.append(fr)
        if len(run) >= YIELD_EVERY:
            await push_many(run)
            run = []
    if run:
        await push_many(run)
    flush()
    return time.process_time() - t
