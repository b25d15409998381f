"""Small helpers shared by the test files (pytest puts tests/ on the import path)."""

from __future__ import annotations

import gzip
from pathlib import Path

DATA = Path(__file__).parent / "data"


class Clock:
    """A settable clock: ``clock()`` returns ``clock.t``."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def real(name: str) -> Path:
    """A real sample file copied into tests/data (found by name wherever it was put)."""
    hits = sorted(DATA.rglob(name))
    assert hits, f"tests/data lacks {name}"
    return hits[0]


def gz_trades(n: int) -> list[str]:
    """The first ``n`` raw ``btcusdt@trade`` frames of the real 2024 hftbacktest Binance recording."""
    out = []
    with gzip.open(real("hftbacktest_usdm_btcusdt_20240808.gz"), "rt") as fh:
        for line in fh:
            raw = line.split(" ", 1)[1].rstrip("\n")
            if raw.startswith('{"stream":"btcusdt@trade"'):
                out.append(raw)
                if len(out) == n:
                    break
    return out
