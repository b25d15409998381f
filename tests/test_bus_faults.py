"""The bus going away and coming back, on a real ``nats-server`` killed with SIGKILL mid-stream: the viewer
says so and keeps its map, the collector keeps collecting and spools to disk (bounded, counted), and when the
server is back on the same port and store the spool is published and nothing is lost or doubled."""

from __future__ import annotations

import asyncio

import pytest

from liqmap.bus.settings import redact, redact_text, settings
from liqmap.bus.spool import Spool
from liqmap.config import DEFAULTS
from nats_servers import NatsServer
from test_bus_e2e import ASSETS, Collector, Viewer, market_rows, same_rows, small_cfg, until


@pytest.fixture
def nats_server(tmp_path):
    srv = NatsServer(tmp_path / "nats").start()
    yield srv
    srv.stop()


async def test_server_killed_mid_stream_loses_nothing(nats_server, tmp_path):
    cfg = small_cfg()
    cfg["bus"]["snapshot_seconds"] = 0.3
    spool_dir = tmp_path / "data" / "bus-spool"
    col = Collector(cfg, nats_server.url, spool_dir, seed=5)
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
    await until(lambda: col.pub.spool.msgs > 5, what="the collector spools while the bus is away")
    assert "DOWN" in col.pub.status() and "spooled on disk" in col.pub.status()
    # on disk: segment files whose records are the messages not sent (their rows, their message ids)
    on_disk = list(Spool(spool_dir, 1 << 30).records())
    assert sorted(p.name for p in spool_dir.iterdir())[0].startswith("seg-")
    assert len(on_disk) >= 6 and sum(r[3] for r in on_disk) > 0
    assert all(r[2].startswith(col.pub.origin + ".") and r[0].startswith("liqmap.") for r in on_disk)
    # the viewer keeps its map: the view on screen is still there
    assert view.rt.engine.latest(key) is before

    nats_server.start()  # back on the same port, same store
    await until(lambda: col.pub.connected and col.pub.spool.msgs == 0 and col.pub.resent_msgs >= len(on_disk),
                what="the spool is published")
    assert not any(p.name.startswith("seg-") for p in spool_dir.iterdir())  # drained segments are gone
    await until(lambda: src.connected and src.rows > rows_at_kill, what="the viewer resumes")
    await col.finish()
    await until(lambda: src.rows >= col.pub.sent_rows, what="viewer has every row")
    await view.finish()

    assert col.pub.dropped_msgs == 0 and col.pub.spooled_msgs >= len(on_disk)
    assert src.rows == col.pub.sent_rows  # nothing lost, nothing twice
    assert view.rt.market.rejects.total() == 0
    for asset in ASSETS:
        for kind in ("trade", "liq", "oi"):
            same_rows(market_rows(col.rt, kind, asset), market_rows(view.rt, kind, asset))


async def test_spool_is_bounded_and_counts_what_it_drops(nats_server, tmp_path):
    cfg = small_cfg()
    cfg["bus"]["spool_mb"] = 1
    col = Collector(cfg, nats_server.url, tmp_path / "spool")
    await col.pub.open()
    nats_server.stop()
    await until(lambda: not col.pub.connected, what="disconnect noticed")
    import numpy as np

    from liqmap.core.events import TRADE_DTYPE

    rows = np.zeros(20_000, dtype=TRADE_DTYPE)  # 680 kB a message
    rows["venue"] = 0
    for i in range(3):
        rows["ts"] = i  # tells the messages apart
        col.pub.tap("trade", "BTC", rows.copy())
        await col.pub.send_pending()
    assert col.pub.buffered == 1 and col.pub.dropped_msgs == 2 and col.pub.dropped_rows == 40_000
    assert "2 msgs (40,000 rows) dropped: spool full" in col.pub.status()
    left = list(Spool(tmp_path / "spool", 1 << 30).records())  # on disk: only the newest, under 1 MB
    assert len(left) == 1 and left[0][3] == 20_000 and left[0][1][1:9] == np.float64(2).tobytes()
    assert sum(p.stat().st_size for p in (tmp_path / "spool").iterdir()) <= 1 << 20
    await col.pub.close()


def test_spool_size_is_a_validated_setting(tmp_path):
    from liqmap.config import ConfigError, load

    for bad in ("0", "-5", '"big"'):
        p = tmp_path / "c.toml"
        p.write_text(f"[bus]\nspool_mb = {bad}\n")
        with pytest.raises(ConfigError) as e:
            load(p, environ={})
        assert "bus.spool_mb" in str(e.value) and "\n" not in str(e.value)
    p.write_text("[bus]\nspool_mb = 5\n")
    assert settings(load(p, environ={}), "nats://127.0.0.1:4222").spool_bytes == 5 << 20


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
