"""Health records, failure classification, the market batch sink and the collector's small policies
(focus set, per-kind watchdog), without sockets."""

from __future__ import annotations

import asyncio
import copy
import logging
import socket
import ssl

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from liqmap.config import DEFAULTS
from liqmap.core.events import trades
from liqmap.core.market import Market
from liqmap.feeds.collector import BatchSink, focus_set, watchdog_for
from liqmap.feeds.health import CONNECTED, CONNECTING, DOWN, LAGGING, STALE, Health, HealthFan, classify_error
from common import Clock



def test_states_connected_stale_down():
    clk = Clock(1000.0)
    h = Health("binance", stale_seconds=10.0, clock=clk)
    assert h.state() == CONNECTING  # nothing tried yet: connecting, not down
    failed = Health("okx", clock=clk)
    failed.on_connect_failed("refused")
    assert failed.state() == DOWN  # tried and failed before ever connecting
    h.on_connect("c1")
    h.open_connections = 1
    assert h.state() == CONNECTED  # just connected, no frame yet
    clk.t += 11
    assert h.state() == STALE  # connected, silent too long
    h.on_frame(clk.t)
    assert h.state() == CONNECTED and h.age() == 0.0
    clk.t += 3
    assert h.as_dict()["last_message_age"] == 3.0
    h.open_connections = 0
    assert h.state() == DOWN
    h.open_connections = 1
    h.on_dead("gave up")
    assert h.state() == DOWN and h.last_error == "gave up"


def test_data_running_late_reads_lagging_and_a_silent_socket_stale_before_the_watchdog():
    clk = Clock(1000.0)
    h = Health("bybit", clock=clk)  # the defaults: stale after 10 s, lagging beyond 2 s of smoothed lag
    h.on_connect("c1")
    h.open_connections = 1
    for _ in range(60):  # a flood: every frame handled 14 s after the venue stamped it
        h.on_frame(clk.t)
        h.on_lag(14.0)
    assert h.state() == LAGGING and h.as_dict()["state"] == "lagging" and h.as_dict()["lag_ewma"] > 2.0
    for _ in range(200):  # the backlog is worked off
        h.on_frame(clk.t)
        h.on_lag(0.05)
    assert h.state() == CONNECTED
    clk.t += 10.5  # silent: stale well before the 30 s watchdog closes the socket
    assert h.state() == STALE
    cfg = copy.deepcopy(DEFAULTS)
    assert cfg["feeds"]["stale_seconds"] < cfg["feeds"]["watchdog_seconds"] / 2


def test_history_written_behind_a_live_stream_does_not_make_the_venue_stale():
    clk = Clock(10_000.0)
    h = Health("okx", clock=clk)
    h.on_connect("demo-okx")
    h.open_connections = 1
    h.on_frame(clk.t)  # live
    h.on_frame(clk.t - 7200.0)  # the pre-roll of another asset, two hours back, arrives after it
    assert h.state() == CONNECTED and h.age() == 0.0


def test_reconnects_count_only_repeat_connections():
    h = Health("okx")
    for c in ("a", "b", "a", "a", "c"):
        h.on_connect(c)
    assert h.connects == 5 and h.reconnects == 2


def test_lag_ewma_max_and_implausible():
    h = Health("bybit", ewma_alpha=0.5)
    h.on_lag(0.1)
    h.on_lag(0.3)
    assert h.lag_ewma == pytest.approx(0.2) and h.lag_max == pytest.approx(0.3) and h.lag_last == 0.3
    h.on_lag(86400.0 * 365)  # an old recording replayed: not backlog
    assert h.implausible_lags == 1 and h.lag_max == pytest.approx(0.3)


def test_parse_errors_logged_once_per_kind(caplog):
    h = Health("bitmex")
    with caplog.at_level(logging.WARNING, logger="liqmap.feeds"):
        assert h.on_parse_error("JSONDecodeError", "bad", "{garbage")
        assert not h.on_parse_error("JSONDecodeError", "bad", "{more garbage")
        assert h.on_parse_error("KeyError", "'data'", '{"x":1}')
    assert h.parse_errors == 3 and dict(h.errors_by_kind) == {"JSONDecodeError": 2, "KeyError": 1}
    assert len([r for r in caplog.records if "malformed frame" in r.getMessage()]) == 2
    quiet = Health("bitmex", log_errors=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="liqmap.feeds"):
        quiet.on_parse_error("KeyError")
    assert not caplog.records


def test_fan_updates_every_target():
    a, b = Health("deribit"), Health("deribit", log_errors=False)
    f = HealthFan(a, b)
    f.on_frame(5.0, rest=True)
    f.on_stall("watchdog")
    f.last_error = "x"
    assert (a.frames, b.frames, a.rest_frames, a.stalls, b.stalls) == (1, 1, 1, 1, 1)
    assert a.last_error == b.last_error == "x"
    assert f.on_parse_error("E") is True  # logged by the venue record only


class _Resp:
    status_code = 403


def _invalid_status():
    from websockets.exceptions import InvalidStatus

    return InvalidStatus(_Resp())


@pytest.mark.parametrize(
    "exc, kind",
    [
        (socket.gaierror(-2, "Name or service not known"), "DNS"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS"),
        (ConnectionRefusedError(111, "Connect call failed"), "refused"),
        (asyncio.TimeoutError(), "timeout"),
        (TimeoutError("timed out during opening handshake"), "timeout"),
        (ConnectionResetError(104, "reset"), "closed"),
        (OSError(101, "Network is unreachable"), "unreachable"),
        (ValueError("something else"), "error"),
    ],
)
def test_classify(exc, kind):
    assert classify_error(exc)[0] == kind


def test_classify_follows_causes_and_http_status():
    try:
        try:
            raise socket.gaierror(-3, "Temporary failure in name resolution")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as e:
        assert classify_error(e)[0] == "DNS"
    kind, text = classify_error(_invalid_status())
    assert kind == "HTTP" and "403" in text


def test_batch_sink_batches_and_counts():
    calls = []
    m = Market(["BTC", "ETH"])
    orig = m.add

    def add(kind, asset, rows):
        calls.append((kind, asset, len(rows)))
        return orig(kind, asset, rows)

    m.add = add
    b = BatchSink(m, max_rows=1000)
    for i in range(10):
        b.add("trade", "BTC", trades([(1e9 + i, 100.0 + i, 1.0, 100.0 + i, 1, 0)]))
    b.add("trade", "ETH", trades([(1e9, 10.0, 1.0, 10.0, -1, 1)]))
    b.add("trade", "BTC", trades([(1e9, float("nan"), 1.0, 1.0, 1, 0)]))  # rejected by the market
    assert not calls and b.pending == 12
    assert b.flush() == 11
    assert sorted(calls) == [("trade", "BTC", 11), ("trade", "ETH", 1)]
    assert b.accepted == {("BTC", "trade"): 10, ("ETH", "trade"): 1}
    assert len(m.gather("trade", "BTC")) == 10 and m.rejects.total() == 1
    assert b.flush() == 0


def test_batch_sink_flushes_when_full():
    m = Market(["BTC"])
    b = BatchSink(m, max_rows=5)
    for i in range(12):
        b.add("trade", "BTC", trades([(1e9 + i, 100.0, 1.0, 100.0, 1, 0)]))
    assert len(m.gather("trade", "BTC")) == 10 and b.pending == 2


@given(st.lists(st.integers(0, 20), min_size=0, max_size=30))
def test_batch_sink_keeps_every_row_in_order(sizes):
    m = Market(["BTC"], capacity={"trade": 1 << 12})
    b = BatchSink(m, max_rows=17)
    ts = 1e9
    expect = []
    for n in sizes:
        rows = trades([(ts + i, 100.0, 1.0, 100.0, 1, 0) for i in range(n)]) if n else trades([])
        expect += [ts + i for i in range(n)]
        ts += n
        b.add("trade", "BTC", rows)
    b.flush()
    got = m.gather("trade", "BTC")["ts"]
    assert np.array_equal(got, np.array(expect, dtype=float))


def test_focus_set_and_watchdog_policy():
    cfg = copy.deepcopy(DEFAULTS)
    cfg["app"]["asset"] = "SOL"
    cfg["universe"]["focus_extra"] = ["ETH", "NOPE"]
    assets = ["BTC", "ETH", "SOL", "XRP"]
    assert focus_set(cfg, assets) == ["ETH", "SOL"]  # universe order, unknown names dropped
    assert focus_set(cfg, assets, "xrp") == ["ETH", "XRP"]
    assert focus_set(cfg, assets, ["BTC", "XRP"]) == ["BTC", "ETH", "XRP"]
    f = cfg["feeds"]
    f["watchdog_seconds"] = 30.0
    f["watchdog_by_kind"] = {"trade": 0.0, "book": 0.0, "oi": 180.0, "liq": 900.0}
    assert watchdog_for(cfg, ("liq",)) == 900.0
    assert watchdog_for(cfg, ("liq", "oi")) == 180.0
    assert watchdog_for(cfg, ("liq", "trade", "oi")) == 30.0  # a trades stream is never quiet for long
    assert watchdog_for(cfg, ("book",)) == 30.0


def test_a_frame_source_that_has_not_delivered_yet_is_starting_not_stale():
    """The demo's Hyperliquid record is made by the pre-roll's history (a frame source: one stand-in connection)
    before its first live frame; it read "stale" in the first second, and `collect --demo` fired a CRITICAL
    "venue down: hyperliquid stale". Silent for as long as a stale venue, it is stale."""
    from liqmap.feeds.ingest import Ingest
    from liqmap.core.market import Market

    t = [1000.0]
    ingest = Ingest(None, Market(["BTC"], clock=lambda: t[0]), ["BTC"], clock=lambda: t[0])
    h = ingest.health_of("hyperliquid")
    assert h.state() == "connecting"
    t[0] += h.stale_seconds + 0.5
    assert h.state() == "stale"
