"""Shared helpers for the venue adapter tests: run real frames through FrameParser and collect rows."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import numpy as np

from liqmap.core.assets import Asset, VenueMarket
from liqmap.feeds.parser import FrameParser

DATA = Path(__file__).parent / "data"
FIXTURES = DATA / "tardis-node-fixtures"
REAL = DATA / "real"


def market(venue: str, **symbols) -> dict[str, Asset]:
    """Assets for a test: name=(symbol, inverse, contract_size[, price_multiplier])."""
    out = {}
    for name, spec in symbols.items():
        sym, inverse, cs, *rest = spec
        mult = rest[0] if rest else 1.0
        out[name] = Asset(name, 1.0, 1e-6, {venue: VenueMarket(sym, inverse, cs, mult)})
    return out


class Collector:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
        self.calls = 0

    def __call__(self, kind: str, asset: str, rows: np.ndarray) -> None:
        self.calls += 1
        self.rows[(kind, asset)].append(rows)

    def get(self, kind: str, asset: str) -> np.ndarray:
        parts = self.rows.get((kind, asset))
        if not parts:
            return np.zeros(0)
        return np.concatenate(parts)


def parse_lines(venue: str, assets: dict[str, Asset], lines, cfg: dict | None = None, receipt: float = 1.7e9,
                clock_check: bool = True):
    """Feed raw lines through a fresh FrameParser; returns (parser, collector). ``clock_check=False`` for
    lines gathered from several years (the tardis fixtures) that have no receipt times of their own."""
    col = Collector()
    parser = FrameParser(venue, assets, col, cfg=cfg)
    parser.venue_feed.plausible.clock_check = clock_check

    async def go():
        for i, line in enumerate(lines):
            await parser.feed(line, receipt + i)

    asyncio.run(go())
    return parser, col


def fixture_lines(name: str) -> list[str]:
    return [ln.strip() for ln in (FIXTURES / name).read_text().splitlines() if ln.strip()]


def cryptofeed_sample_lines(path: Path) -> list[tuple[float, str]]:
    """cryptofeed raw-data files: ``<receipt_ts>: <json>`` lines (connection/subscribe lines skipped)."""
    out = []
    for ln in path.read_text().splitlines():
        head, sep, body = ln.partition(": ")
        if not sep or not body.startswith("{"):
            continue
        try:
            ts = float(head)
        except ValueError:
            continue
        out.append((ts, body))
    return out
