"""Live mode wiring of the ``Runtime`` with the ``LiveSource`` (no network: the collector is built but never started)."""

from __future__ import annotations

import asyncio
import copy
import types

from liqmap.commands.run import build_runtime
from liqmap.config import DEFAULTS
from liqmap.feeds.collector import Collector


def test_asset_switch_moves_the_full_book_focus(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["assets"] = ["BTC", "ETH", "SOL"]
    cfg["universe"]["focus_extra"] = []
    runner = build_runtime("live", cfg, types.SimpleNamespace(seed=None, speed=None))
    col = runner.source.collector
    assert isinstance(col, Collector) and col.ingest is runner.ingest and col.board is runner.board
    assert col.focus == ("BTC",)

    async def switch():
        runner.on_view("eth")

    asyncio.run(switch())
    assert runner.screen_asset == "ETH"
    assert col.focus == ("ETH",)
