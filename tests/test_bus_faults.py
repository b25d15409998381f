"""The bus going away and coming back, on a real ``nats-server`` killed with SIGKILL mid-stream: the viewer
says so and keeps its map, the collector keeps collecting and buffers (bounded, counted), and when the server
is back on the same port and store the gap is published and nothing is lost or doubled."""

from __future__ import annotations

import asyncio

import pytest

from liqmap.bus.settings import redact, redact_text, settings
from liqmap.config import DEFAULTS
from nats_servers import NatsServer
from test_bus_e2e import ASSETS, Collector, Viewer, market_rows, same_rows, small_cfg, until


@pytest.fixture
def nats_server(tmp_path):
    srv = NatsServer(tmp_path / "nats").start()
    yield srv
    srv.stop()


async def test_server_killed_mid_stream_loses_nothing(nats_server):
    cfg = small_cfg()
    cfg["bus"]["snapshot_seconds"] = 0.3
    col = Collector(cfg, nats_server.url, seed=5)
    view = Viewer(cfg, nats_server.url)
    view.start()
    await until(lambda: view.rt.source.caught_up, what="viewer subscribed")
    col.start()
    src = view.rt.source
    await until(lambda: src.rows > 100, what="rows flowing to the viewer")
    key = view.rt.engine.set_view("BTC", "raw", "1m", None, 60, None)
    before = view.rt.engine.build_screen(view.rt.clock())
    assert before is not None

    nats_server.stop()  # SIGKILL: the bus is gone
    await until(lambda: not col.pub.connected and not src.connected, what="both sides notice")
    assert src.badge.startswith("DOWN") and "last map kept" in src.badge
    assert "bus down" in view.rt.status
    rows_at_kill = src.rows
    await until(lambda: col.pub.buffered > 5, what="the collector buffers while the bus is away")
    assert "DOWN" in col.pub.status() and "buffered" in col.pub.status()
    # the viewer keeps its map: the view on screen is still there
    assert view.rt.engine.latest(key) is before

    nats_server.start()  # back on the same port, same store
    await until(lambda: col.pub.connected and col.pub.buffered < 5 and col.pub.resent_msgs > 0,
                what="the gap is published")
    await until(lambda: src.connected and src.rows > rows_at_kill, what="the viewer resumes")
    await col.finish()
    await until(lambda: src.rows >= col.pub.sent_rows, what="viewer has every row")
    await view.finish()

    assert col.pub.dropped_msgs == 0
    assert src.rows == col.pub.sent_rows  # nothing lost, nothing twice
    assert view.rt.market.rejects.total() == 0
    for asset in ASSETS:
        for kind in ("trade", "liq", "oi"):
            same_rows(market_rows(col.rt, kind, asset), market_rows(view.rt, kind, asset))


async def test_buffer_is_bounded_and_counts_what_it_drops(nats_server):
    cfg = small_cfg()
    cfg["bus"]["buffer_mb"] = 1
    col = Collector(cfg, nats_server.url)
    await col.pub.open()
    nats_server.stop()
    await until(lambda: not col.pub.connected, what="disconnect noticed")
    import numpy as np

    from liqmap.core.events import TRADE_DTYPE

    rows = np.zeros(20_000, dtype=TRADE_DTYPE)  # 680 kB a message
    rows["venue"] = 0
    for _ in range(3):
        col.pub.tap("trade", "BTC", rows)
        await col.pub.send_pending()
    assert col.pub.buffered == 1 and col.pub.dropped_msgs == 2 and col.pub.dropped_rows == 40_000
    assert "2 msgs (40,000 rows) dropped" in col.pub.status()
    await col.pub.close()


def test_credentials_are_redacted_everywhere():
    assert redact("nats://desk:pw@10.0.0.2:4222") == "nats://desk:***@10.0.0.2:4222"
    assert redact("nats://tok3n@10.0.0.2:4222") == "nats://***@10.0.0.2:4222"
    assert redact("nats://10.0.0.2:4222") == "nats://10.0.0.2:4222"
    assert "pw" not in redact_text("OSError: nats://desk:pw@h:1 refused; tls://t0k@h:2")
    cfg = {**DEFAULTS, "bus": {**DEFAULTS["bus"], "password": "cfg-secret"}}
    s = settings(cfg, "nats://desk:url-secret@127.0.0.1:4222,nats://127.0.0.1:4223")
    assert s.password == "url-secret" and s.user == "desk"  # the URL wins over the config
    assert s.servers == ("nats://127.0.0.1:4222", "nats://127.0.0.1:4223")
    for shown in (repr(s), str(s), s.shown):
        assert "secret" not in shown
    assert settings(cfg, "nats://t0ken@127.0.0.1").token == "t0ken"


def test_no_bus_unless_asked():
    """Nothing connects or listens by default: the bus needs a URL."""
    from liqmap.bus.settings import BusConfigError

    assert DEFAULTS["bus"]["url"] == ""
    with pytest.raises(BusConfigError):
        settings(DEFAULTS)
