"""Sharded collectors (issue 13 item 3) on a real ``nats-server``: two demo collectors with different venues fill
one bus, a viewer merges them as if one collector ran, and a shard that stops shows as its venues going stale
on the viewer — the other shard's venues stay connected, nothing errors."""

from __future__ import annotations

import numpy as np
import pytest

from liqmap.core.events import VENUE_ID

from nats_servers import NatsServer
from test_bus_e2e import ASSETS, Collector, Viewer, market_rows, same_rows, small_cfg, until

SHARD_A = ["binance", "bybit"]
SHARD_B = ["okx", "deribit", "hyperliquid"]


@pytest.fixture
def nats_server(tmp_path):
    srv = NatsServer(tmp_path / "nats").start()
    yield srv
    srv.stop()


def shard_cfg(venues):
    cfg = small_cfg()
    cfg["universe"]["venues"] = list(venues)
    return cfg


async def test_two_shards_merge_and_a_stopped_shard_goes_stale(nats_server, tmp_path):
    a = Collector(shard_cfg(SHARD_A), nats_server.url, tmp_path / "spool-a", seed=21)
    b = Collector(shard_cfg(SHARD_B), nats_server.url, tmp_path / "spool-b", seed=22)
    vcfg = small_cfg()
    vcfg["feeds"]["stale_seconds"] = 1.5  # the test's patience, not the product's default
    view = Viewer(vcfg, nats_server.url)
    view.start()
    await until(lambda: view.rt.source.caught_up, what="viewer subscribed")
    a.start()
    b.start()
    health = view.rt.health
    await until(lambda: all(health().get(v, {}).get("state") == "connected" for v in SHARD_A + SHARD_B),
                what="all five venues connected on the viewer")
    await b.finish()  # shard B stops
    await until(lambda: all(health()[v]["state"] == "stale" for v in SHARD_B), what="shard B's venues stale")
    assert all(health()[v]["state"] == "connected" for v in SHARD_A)
    await a.finish()
    src = view.rt.source
    await until(lambda: src.rows >= a.pub.sent_rows + b.pub.sent_rows, what="every row of both shards")
    await view.finish()
    assert src.rows == a.pub.sent_rows + b.pub.sent_rows and src.bad_messages == 0
    # merged: each venue's rows are exactly its shard's
    for asset in ASSETS:
        for kind in ("trade", "liq", "oi"):
            merged = market_rows(view.rt, kind, asset)
            for shard, venues in ((a, SHARD_A), (b, SHARD_B)):
                ours = merged[np.isin(merged["venue"], [VENUE_ID[v] for v in venues])]
                same_rows(ours, market_rows(shard.rt, kind, asset))
