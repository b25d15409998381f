"""Start-up phases for the start-up benchmarks: one "wall cpu event" line per phase appended to the file named by
``LIQMAPUI_STARTUP_TRACE`` (nothing when it is not set)."""

from __future__ import annotations

import os
import time

_TRACE = os.environ.get("LIQMAPUI_STARTUP_TRACE")  # file: start-up phases, "wall cpu event" lines (benchmarks)


def trace(event: str) -> None:
    if _TRACE:  # the process's CPU seconds too: under load, wall times mostly measure the other processes
        with open(_TRACE, "a") as f:
            f.write(f"{time.time():.4f} {time.process_time():.4f} {event}\n")
