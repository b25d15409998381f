"""The timed loop of the ingest benchmarks (``bench_ingest``, ``bench_hyperliquid``): frames through the one
ingest path as replay drives it — ``Ingest.push`` per frame, ``Ingest.flush`` once per second of receipt
time (before each engine tick) and once at the end — on process CPU time."""

from __future__ import annotations

import time


async def timed_push(ingest, frames) -> float:
    """Process CPU seconds to push every frame of ``frames`` (in order) through ``ingest`` and flush."""
    push, flush = ingest.push, ingest.flush
    next_flush = 0.0
    t = time.process_time()
    for fr in frames:
        if fr.t >= next_flush:
            flush()
            next_flush = fr.t + 1.0
        await push(fr)
    flush()
    return time.process_time() - t
