"""Start-up phases with wall times, for the start-up benchmarks: one line per phase appended to the file named by
``LIQMAPUI_STARTUP_TRACE`` (nothing when it is not set)."""

from __future__ import annotations

import os
import time

_TRACE = os.environ.get("LIQMAPUI_STARTUP_TRACE")  # file: start-up phases with wall times (benchmarks)


def trace(event: str) -> None:
    if _TRACE:
        with open(_TRACE, "a") as f:
            f.write(f"{time.time():.4f} {event}\n")
