"""The collector's outage spool on disk (``liqmap.bus.spool``).

End to end: a ``liqmap collect --demo --bus`` process is SIGKILLed while the ``nats-server`` is down; a new
collector on the same data dir, started while the bus is still down, spools its own rows behind the killed
one's; when the server is back both are published, and the stream and a viewer hold every spooled message
exactly once. And the file-level cases: a damaged segment is set aside with one line, a symlink is never
followed, the spool directory must be a plain directory."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from liqmap.bus.spool import HEADER, Spool, SpoolError, encode_record
from liqmap.bus.wire import decode_rows, encode_rows, parse_subject
from liqmap.core.events import KINDS
from liqmap.core.market import merge_by_time
from nats_servers import NatsServer
from test_bus_e2e import ASSETS, Collector, Viewer, market_rows, same_rows, small_cfg, until


@pytest.fixture
def nats_server(tmp_path):
    srv = NatsServer(tmp_path / "nats").start()
    yield srv
    srv.stop()


async def stream_contents(url: str, cfg) -> list[tuple[str, str, bytes]]:
    """Every message in the rows stream: (Nats-Msg-Id, subject, payload), in stream order."""
    from liqmap.bus.client import connect
    from liqmap.bus.settings import settings

    s = settings(cfg, url)
    nc = await connect(s)
    js = nc.jetstream()
    total = (await js.stream_info(s.stream)).state.messages
    out = []
    sub = await js.subscribe("liqmap.>", stream=s.stream, ordered_consumer=True)
    while len(out) < total:
        msg = await sub.next_msg(timeout=10)
        out.append((msg.headers.get("Nats-Msg-Id"), msg.subject, msg.data))
    await nc.close()
    return out


def rows_of(msgs, kind, asset):
    parts = []
    for _, subj, data in msgs:
        k, _, a = parse_subject(subj)
        if k == kind and a == asset:
            parts.append(decode_rows(k, data))
    return merge_by_time(kind, parts) if parts else np.zeros(0)


def _spooled(lines) -> int:
    """Messages the newest of ``lines`` says are spooled while the bus is DOWN (0: none said)."""
    for ln in reversed(lines):
        m = re.search(r" DOWN · .*· ([\d,]+) msgs \([\d,]+ rows, [\d.]+ MB\) spooled on disk", ln)
        if m:
            return int(m.group(1).replace(",", ""))
    return 0


def _status_lines(path):
    return [ln for ln in path.read_text(errors="replace").splitlines() if ln.startswith("collect ")]


async def test_collector_killed_during_an_outage_publishes_its_spool_when_restarted(nats_server, tmp_path):
    cfg = small_cfg()
    data = tmp_path / "data"
    spool_dir = data / "bus-spool"
    view = Viewer(cfg, nats_server.url)
    view.start()
    src = view.rt.source
    await until(lambda: src.caught_up, what="viewer subscribed")

    # collector A: the real command, in its own process
    err = tmp_path / "a.err"
    env = {**os.environ, "LIQMAP_DATA_DIR": str(data), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    a = subprocess.Popen([sys.executable, "-m", "liqmap", "collect", "--demo", "--bus", nats_server.url,
                          "--assets", ",".join(ASSETS), "--status-every", "0.3"], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(err, "wb"))
    try:
        await until(lambda: src.rows > 200, limit=120, what="collector A's rows reach the viewer")
        seen = len(_status_lines(err))
        nats_server.stop()  # the bus goes away
        await until(lambda: _spooled(_status_lines(err)[seen:]) >= 5, limit=60, what="A spools")
        a.send_signal(signal.SIGKILL)  # and A dies mid-outage
        a.wait(10)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(10)
    left = list(Spool(spool_dir, 1 << 30).records())  # what A left on disk
    assert len(left) >= 3 and sum(r[3] for r in left) > 0
    a_origin = left[0][2].rsplit(".", 1)[0]
    assert all(r[2].rsplit(".", 1)[0] == a_origin for r in left)

    # collector B on the same data dir, started while the bus is still down: its rows queue behind A's
    b = Collector(cfg, nats_server.url, spool_dir, seed=17)
    b.start()
    await until(lambda: b.pub.spool.msgs > len(left) + 3, limit=60, what="B spools behind A's spool")
    assert not b.pub.connected and b.pub.sent_msgs == 0
    nats_server.start()  # the bus is back (same port, same store)
    await until(lambda: b.pub.connected and b.pub.spool.msgs == 0, limit=60, what="both spools published")
    assert b.pub.resent_msgs >= len(left)
    assert not any(p.name.startswith("seg-") for p in spool_dir.iterdir())
    await b.finish()
    msgs = await stream_contents(nats_server.url, cfg)
    await until(lambda: src.rows == sum(decode_rows(parse_subject(s)[0], d).size for _, s, d in msgs),
                limit=60, what="viewer has the whole stream")
    await view.finish()

    ids = Counter(i for i, _, _ in msgs)
    assert max(ids.values()) == 1  # nothing stored twice
    assert all(ids[r[2]] == 1 for r in left)  # every message A spooled is on the bus, once
    mine = [m for m in msgs if m[0].rsplit(".", 1)[0] == b.pub.origin]
    for asset in ASSETS:
        for kind in ("trade", "liq", "oi"):
            # B: every row its market accepted is on the bus once; the viewer holds exactly the stream
            same_rows(market_rows(b.rt, kind, asset), rows_of(mine, kind, asset))
            same_rows(rows_of(msgs, kind, asset), market_rows(view.rt, kind, asset))
    assert view.rt.market.rejects.total() == 0


def _write_segment(path, records, tail=b""):
    with open(path, "wb") as f:
        f.write(HEADER + b"".join(encode_record(*r) for r in records) + tail)


def test_a_damaged_segment_is_set_aside_with_one_line_and_its_good_records_kept(tmp_path):
    d = tmp_path / "spool"
    d.mkdir()
    good = [("liqmap.trade.binance.BTC", b"\x01" + bytes(34), "o.1", 1),
            ("liqmap.trade.binance.BTC", b"\x01" + bytes(68), "o.2", 2)]
    _write_segment(d / f"seg-{1:020d}.lqb", good[:1])
    torn = encode_record("liqmap.oi.okx.ETH", b"\x01" + bytes(40), "o.3", 1)[:-7]  # killed mid-write
    _write_segment(d / f"seg-{2:020d}.lqb", good[1:], tail=torn)
    (d / f"seg-{3:020d}.lqb").write_bytes(b"not a spool at all")
    warned = []
    sp = Spool(d, 1 << 20, warn=warned.append).open()
    assert [r[2] for r in sp.records()] == ["o.1", "o.2"]
    assert len(warned) == 2 and all("\n" not in w and "set aside" in w for w in warned)
    assert sp.damaged_segments == 2
    names = sorted(p.name for p in d.iterdir())
    assert names == [f"seg-{1:020d}.lqb", f"seg-{2:020d}.lqb.corrupt", f"seg-{3:020d}.lqb.corrupt"]
    # draining sends the good records and keeps the damaged files for a human
    while (got := sp.oldest()) is not None:
        sp.done(got[0])
    assert sorted(p.name for p in d.iterdir()) == names[1:]
    assert sp.msgs == 0


def test_the_spool_never_follows_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    link = tmp_path / "bus-spool"
    link.symlink_to(outside)
    with pytest.raises(SpoolError) as e:
        Spool(link, 1 << 20).open()
    assert "symlink" in str(e.value) and "\n" not in str(e.value)

    d = tmp_path / "real"
    sp = Spool(d, 1 << 20).open()
    target = tmp_path / "victim"
    target.write_bytes(b"keep")
    (d / f"seg-{1:020d}.lqb").symlink_to(target)  # planted at the next segment's name
    sp.append([("liqmap.trade.binance.BTC", b"\x01" + bytes(34), "o.1", 1)])
    assert target.read_bytes() == b"keep"  # written elsewhere, never through the link
    sp.close()
    assert [r[2] for r in Spool(d, 1 << 20).records()] == ["o.1"]


def test_collect_refuses_a_symlinked_spool_with_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (data / "bus-spool").symlink_to(tmp_path / "elsewhere")
    env = {**os.environ, "LIQMAP_DATA_DIR": str(data), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    res = subprocess.run([sys.executable, "-m", "liqmap", "collect", "--demo", "--bus", "nats://127.0.0.1:9",
                          "--duration", "1", "--assets", "BTC"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if "bus-spool" in ln]
    assert len(lines) == 1 and "symlink" in lines[0]


async def test_a_spooled_message_already_stored_is_not_stored_again_after_the_dedup_window(nats_server, tmp_path):
    """The ack of a stored message was lost, so it waits in the spool; it is sent again only after the
    stream's dedup window passed. The publisher finds it is the newest on its subject and skips it."""
    cfg = small_cfg()
    cfg["bus"]["dedup_seconds"] = 1.0
    col = Collector(cfg, nats_server.url, tmp_path / "spool")
    pub = col.pub
    await pub.open()
    rows = np.zeros(3, dtype=KINDS["trade"])
    rows["ts"], rows["venue"] = [1.0, 2.0, 3.0], 0
    stored = ("liqmap.trade.binance.BTC", encode_rows(rows), f"{pub.origin}.900", 3)
    never_sent = ("liqmap.trade.binance.BTC", encode_rows(rows[:1]), f"{pub.origin}.901", 1)
    other = ("liqmap.trade.okx.BTC", encode_rows(rows[:2]), f"{pub.origin}.902", 2)
    await pub.js.publish(stored[0], stored[1], headers={"Nats-Msg-Id": stored[2]})  # its ack "lost"
    pub.spool.append([stored, other, never_sent])
    await asyncio.sleep(1.5)  # past the dedup window
    await pub.send_pending()
    assert pub.spool.msgs == 0 and pub.already_on_bus == 1 and pub.resent_msgs == 2
    ids = Counter(i for i, _, _ in await stream_contents(nats_server.url, cfg))
    assert ids == Counter({stored[2]: 1, other[2]: 1, never_sent[2]: 1})
    await pub.close()


def test_collect_says_what_an_earlier_run_left_and_keeps_it_while_the_bus_is_away(tmp_path):
    data = tmp_path / "data"
    left = [("liqmap.trade.binance.BTC", b"\x01" + bytes(34), "earlier.1", 1)]
    sp = Spool(data / "bus-spool", 1 << 20)
    sp.append(left)
    sp.close()
    env = {**os.environ, "LIQMAP_DATA_DIR": str(data), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    res = subprocess.run([sys.executable, "-m", "liqmap", "collect", "--demo", "--bus", "nats://127.0.0.1:9",
                          "--duration", "2", "--assets", "BTC", "--status-every", "0.5"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "1 messages (1 rows) spooled by an earlier run wait in" in res.stderr
    records = list(Spool(data / "bus-spool", 1 << 20).records())
    assert records[0] == left[0] and len(records) > 1  # the earlier one first, this run's own behind it
