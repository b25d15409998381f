"""A 3-node NATS cluster on loopback (real ``nats-server`` processes, routes between them, JetStream with
3 replicas): one node killed mid-stream and nothing is lost — the collector goes on publishing to the
surviving two, and a viewer reading from them gets every row.

Not covered (open, see the issue note): a viewer *subscribed while* the node dies. Its ordered consumer
(nats-py makes them one replica, in memory) may live on the killed node; making it again on the survivors
timed out in about half the runs (nats-server 2.9.10, nats-py 2.16: the server logs show the consumer made,
the client never gets the reply). The source's watchdog and retries (``BusSource._watchdog``) cover the
single-server case, where the faults test proves nothing is lost."""

from __future__ import annotations

import asyncio

import pytest

from nats_servers import cluster
from test_bus_e2e import ASSETS, Collector, Viewer, market_rows, same_rows, small_cfg, until


@pytest.fixture
def nodes(tmp_path):
    ns = cluster(tmp_path / "cluster", 3)
    for n in ns:
        n.start()
    yield ns
    for n in ns:
        n.stop()


async def _stream_ready(url_list, cfg):
    """JetStream in a fresh cluster needs a meta leader before a stream can be made: wait for it."""
    from liqmap.bus.client import connect, ensure_stream
    from liqmap.bus.settings import settings

    s = settings(cfg, url_list)
    nc = await connect(s)
    js = nc.jetstream()
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while True:
        try:
            await ensure_stream(js, s)
            info = await js.stream_info(s.stream)
            if info.cluster is not None and info.cluster.leader:
                break
        except Exception:
            if loop.time() > end:
                raise
        await asyncio.sleep(0.2)
    await nc.close()


async def test_one_node_of_three_killed_loses_nothing(nodes):
    cfg = small_cfg()
    cfg["bus"]["replicas"] = 3
    urls = ",".join(n.url for n in nodes)
    await _stream_ready(urls, cfg)
    col = Collector(cfg, urls, seed=3)
    col.start()
    await until(lambda: col.pub.sent_rows > 100, limit=60, what="rows flowing")
    # SIGKILL the node the collector publishes through: it must fail over and lose nothing
    victim = next(n for n in nodes if n.port == col.pub.nc.connected_url.port)
    victim.stop()
    rows_at_kill = col.pub.sent_rows
    await until(lambda: col.pub.connected and col.pub.sent_rows > rows_at_kill + 100, limit=60,
                what="publishing resumes through the other two nodes")
    await col.finish()
    assert col.pub.disconnects >= 1 and col.pub.dropped_msgs == 0 and col.pub.buffered == 0

    survivors = ",".join(n.url for n in nodes if n is not victim)
    view = Viewer(cfg, survivors)
    view.start()
    await until(lambda: view.rt.source.caught_up, limit=90, what="viewer caught up from the survivors")
    await view.finish()
    src = view.rt.source
    assert src.rows == col.pub.sent_rows  # every row, once
    for asset in ASSETS:
        for kind in ("trade", "liq", "oi"):
            same_rows(market_rows(col.rt, kind, asset), market_rows(view.rt, kind, asset))
