"""A 3-node NATS cluster on loopback (real ``nats-server`` processes, routes between them, JetStream with
3 replicas): one node killed mid-stream and nothing is lost — the collector goes on publishing to the
surviving two, and a viewer reading from them gets every row.

The viewer is subscribed before the kill and the node killed is its rows consumer's (``liqmap.bus.reader``):
with a replicated consumer and with a one-replica consumer that dies with the node and is made again."""

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


async def _consumer_node(src, nodes):
    """The node leading the viewer's rows consumer (its state lives there), by the server name (n1…n3)."""
    rows = src.readers[0]
    info = await src.js.consumer_info(src.settings.stream, rows.name, timeout=10)
    leader = info.cluster.leader if info.cluster is not None else None
    assert leader, "a clustered consumer has a leader"
    return next(n for n in nodes if n.name == leader)


@pytest.mark.parametrize("consumer_replicas", [3, 1], ids=["replicated-consumer", "one-replica-consumer"])
async def test_one_node_of_three_killed_loses_nothing(nodes, tmp_path, consumer_replicas):
    """The viewer's consumer node is SIGKILLed while the viewer reads. Replicated (the default on a cluster)
    the consumer elects a new leader; with one replica it dies with the node and the viewer must find that
    out and make it again on the survivors from the sequence it reached."""
    cfg = small_cfg()
    cfg["bus"]["replicas"] = 3
    urls = ",".join(n.url for n in nodes)
    await _stream_ready(urls, cfg)
    # speed 1: at 5× the demo's rows ran past the viewer's wall clock in runs slowed by a loaded machine, and
    # its market refused them as future-dated (a failure of the test, not of the bus)
    col = Collector(cfg, urls, tmp_path / "spool", seed=3, speed=1.0)
    # the viewer is subscribed before the kill, through the node its consumer lives on
    view = Viewer(cfg, urls)
    src = view.rt.source
    src.consumer_replicas = consumer_replicas
    view.start()
    await until(lambda: src.caught_up, limit=90, what="viewer subscribed")
    col.start()
    await until(lambda: col.pub.sent_rows > 100 and src.rows > 100, limit=60, what="rows flowing")
    # SIGKILL the node the viewer's rows consumer lives on (the one holding its state, or its connection's)
    victim = await _consumer_node(src, nodes)
    same_node = src.nc.connected_url.port == victim.port
    victim.stop()
    rows_at_kill = src.rows
    await until(lambda: col.pub.connected and col.pub.sent_rows > rows_at_kill + 300, limit=60,
                what="publishing goes on through the other two nodes")
    await until(lambda: src.rows > rows_at_kill + 100, limit=90, what="the viewer's rows resume")
    await col.finish()
    assert col.pub.dropped_msgs == 0 and col.pub.buffered == 0
    await until(lambda: src.rows >= col.pub.sent_rows, limit=90, what="the viewer has every row")
    await asyncio.sleep(0.5)  # anything extra (a duplicate) would arrive now
    await view.finish()
    rows_reader = src.readers[0]
    print(f"\ncluster kill: consumer R{consumer_replicas} on {victim.name}, viewer connected there: {same_node}; "
          f"consumers made {rows_reader.created} (failed tries {rows_reader.failed_creates}, found dead "
          f"{rows_reader.dead_found}); skipped duplicates {src.skipped_duplicates}; rows {src.rows}; viewer "
          f"rejects {view.rt.market.rejects.counts}; publisher disconnects {col.pub.disconnects}, spooled "
          f"{col.pub.spooled_msgs}, duplicate acks {col.pub.duplicates}, already on bus {col.pub.already_on_bus}")
    if consumer_replicas == 1:
        assert rows_reader.created >= 2  # the dead consumer was found and made again
    assert src.rows == col.pub.sent_rows  # every row, once
    for asset in ASSETS:
        for kind in ("trade", "liq", "oi"):
            same_rows(market_rows(col.rt, kind, asset), market_rows(view.rt, kind, asset))
    assert view.rt.market.rejects.total() == 0
