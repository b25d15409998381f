"""``liqmap doctor``: the no-network path (unresolvable ``.invalid`` hosts: only the local resolver is
asked) and a loopback run where each venue channel fails in its own way — delivered, silent, refused,
TLS, timeout, HTTP 404 — and the table says which is which, light-depth channels (named from
``feeds.channels.*_light_depth``) included. Only 127.0.0.1 is ever contacted."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import time

import pytest

from liqmap.cli import main as cli_main
from liqmap.commands.doctor import channel_label, diagnose, venue_channels, verdict
from liqmap.config import DEFAULTS
from tls import loopback
from common import gz_trades, real




INVALID = {
    "binance_market": "wss://fstream.liqmap-test.invalid/market",
    "binance_public": "wss://fstream.liqmap-test.invalid/public",
    "binance_rest": "https://fapi.liqmap-test.invalid",
    "bybit_ws": "wss://stream.liqmap-test.invalid/v5/public/linear",
    "bybit_rest": "https://api.liqmap-test.invalid",
    "okx_ws": "wss://ws.liqmap-test.invalid:8443/ws/v5/public",
    "okx_rest": "https://www.liqmap-test.invalid",
    "hyperliquid_ws": "wss://api.liqmap-test.invalid/ws",
    "hyperliquid_info": "https://api.liqmap-test.invalid/info",
    "deribit_ws": "wss://www.liqmap-test.invalid/ws/api/v2",
}


def test_no_network_says_so_at_once(tmp_path, capsys):
    conf = tmp_path / "config.toml"
    conf.write_text("[feeds.endpoints]\n" + "".join(f'{k} = "{v}"\n' for k, v in INVALID.items()))
    rc = cli_main(["doctor", "--config", str(conf), "--seconds", "30"])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("liqmap: doctor: no network: DNS lookup of ")
    assert ".liqmap-test.invalid failed" in err[0]
    # it returned without listening for the 30 s asked: the feeds were never started
    assert "listening" not in " ".join(err)


def test_verdicts():
    base = {"events": {}, "connects": 1, "failed_connects": 0, "frames": 0, "parse_errors": 0,
            "errors_by_kind": {}, "last_error": "", "build_error": ""}
    assert verdict({**base, "events": {"trade": 3}, "frames": 3}, "trade", 5) == (True, "ok")
    assert verdict({**base, "events": {"book_update": 1}}, "book", 5)[0]
    assert verdict(base, "liq", 5)[1].startswith("subscribed-but-silent: connected, no frames")
    assert "sporadic" in verdict({**base, "frames": 2}, "liq", 5)[1]
    assert verdict({**base, "connects": 0, "failed_connects": 2, "last_error": "refused: x"}, "oi", 5) == \
        (False, "refused: x")
    assert verdict({**base, "connects": 0}, "oi", 5)[1].startswith("timeout")
    assert verdict({**base, "frames": 4, "parse_errors": 4, "errors_by_kind": {"frame:JSONDecodeError": 4}},
                   "trade", 5)[1].startswith("frames not understood")
    assert verdict({**base, "events": {"book_update": 2}, "frames": 2}, "depth", 5) == (True, "ok")
    silent_depth = verdict({**base, "frames": 1}, "depth", 5)[1]
    assert silent_depth.startswith("subscribed-but-silent") and "sporadic" not in silent_depth


def test_light_depth_rows_come_from_the_config():
    cfg = copy.deepcopy(DEFAULTS)
    ch = cfg["feeds"]["channels"]
    # one row per venue whose adapter parses light depth, named by its configured wire channel
    for venue in ("binance", "bybit", "okx", "deribit", "hyperliquid"):
        assert venue_channels(cfg, venue, ("trade", "depth")) == ["trade", "depth"]
        assert channel_label(cfg, venue, "depth", "BTC").startswith("light depth ")
    assert channel_label(cfg, "binance", "depth", "BTC") == f"light depth {ch['binance_light_depth']}"
    assert channel_label(cfg, "bybit", "depth", "BTC") == "light depth orderbook.200"
    # Deribit's channel embeds the instrument, filled in as the adapter does
    assert channel_label(cfg, "deribit", "depth", "BTC") == "light depth " + \
        ch["deribit_light_depth"].format("BTC-PERPETUAL")
    assert channel_label(cfg, "binance", "trade", "BTC") == "trades"
    ch["okx_light_depth"] = "bbo-tbt"
    assert channel_label(cfg, "okx", "depth", "BTC") == "light depth bbo-tbt"
    # light depth off: the app subscribes none, so doctor checks none
    cfg["feeds"]["light_depth"] = False
    assert venue_channels(cfg, "bybit", ("trade", "book", "depth")) == ["trade", "book"]


@pytest.fixture
async def servers(tmp_path, monkeypatch):
    async with contextlib.AsyncExitStack() as stack:
        good = await stack.enter_async_context(loopback.serving(tmp_path / "trusted", monkeypatch))
        # a second server whose certificate nobody trusts
        untrusted = await stack.enter_async_context(
            loopback.serving(tmp_path / "untrusted", monkeypatch, trusted=False))
        silent = loopback.SilentTCPServer()
        await silent.start()
        stack.push_async_callback(silent.stop)
        yield good, untrusted, silent


async def test_loopback_table_classifies_each_failure(servers):
    from liqmap.feeds.venues import VENUE_CLASSES

    good, untrusted, silent = servers
    binance = [line for line in real("binance_futures_messages.jsonl").read_text().splitlines()]
    mark = next(x for x in binance if '"markPriceUpdate"' in x and '"s":"BTCUSDT"' in x)
    trades = gz_trades(3)  # real 2024 BTCUSDT trades (hftbacktest recording)
    good.script("/market/stream?aggTrade", [*[x for t in trades for x in (("send", t), ("sleep", 0.05))], ("hold",)])
    good.script("/market/stream?forceOrder", [("hold",)])  # subscribed, never a liquidation
    good.script("/market/stream?markPrice", [("send", mark), ("hold",)])
    good.rest["/fapi/v1/openInterest"] = '{"openInterest":"70000.5","symbol":"BTCUSDT","time":1723161300000}'
    # the live start's back-fill history, in Binance's documented shapes (two minutes, one OI sample)
    good.rest["/fapi/v1/klines"] = json.dumps(
        [[1723161240000, "60000.1", "60010.0", "59990.0", "60005.0", "10.5", 1723161299999, "630052.5", 120,
          "6.1", "366030.5", "0"],
         [1723161300000, "60005.0", "60020.0", "60001.0", "60015.0", "8.25", 1723161359999, "495123.75", 95,
          "3.0", "180045.0", "0"]])
    good.rest["/futures/data/openInterestHist"] = json.dumps(
        [{"symbol": "BTCUSDT", "sumOpenInterest": "70000.5", "sumOpenInterestValue": "4200030000.0",
          "timestamp": 1723161300000}])
    good.reject.add("/public/stream?depth@100ms")  # the full book's stream answers HTTP 404 ...
    # ... while the light depth, on the same /public path, delivers a top-10 partial book (USD-M
    # ``depthUpdate`` payload on the stream named by feeds.channels.binance_light_depth, set below)
    now_ms = int(time.time() * 1000)
    partial = ('{"stream":"btcusdt@depth10@100ms","data":{"e":"depthUpdate","E":%d,"T":%d,"s":"BTCUSDT",'
               '"U":390497796,"u":390497878,"pu":390497794,"b":[["60000.10","0.002"],["59999.90","3.906"]],'
               '"a":[["60000.20","3.340"],["60000.50","4.525"]]}}' % (now_ms, now_ms))
    good.script("/public/stream?depth10@100ms", [("send", partial), ("hold",)])

    cfg = copy.deepcopy(DEFAULTS)
    cfg["doctor"]["connect_timeout_seconds"] = 1.0
    cfg["feeds"]["retries"] = 1
    cfg["feeds"]["channels"]["binance_light_depth"] = "depth10@100ms"  # not the default: read from config
    eps = cfg["feeds"]["endpoints"]
    eps.update(loopback.config_endpoints(good.base, "binance"))
    expect = {"binance": None}
    if "bybit" in VENUE_CLASSES:
        eps.update(loopback.config_endpoints(f"127.0.0.1:{loopback.free_port()}", "bybit"))
        expect["bybit"] = "refused"
    if "okx" in VENUE_CLASSES:
        eps.update(loopback.config_endpoints(untrusted.base, "okx"))
        expect["okx"] = "TLS"
    if "hyperliquid" in VENUE_CLASSES:  # its websocket and its POST /info both time out
        eps.update(loopback.config_endpoints(f"127.0.0.1:{silent.port}", "hyperliquid"))
        expect["hyperliquid"] = "timeout"
    cfg["universe"]["venues"] = list(expect)
    out, err = io.StringIO(), io.StringIO()
    # a hang guard, not a speed check: the probe is bounded by its listening window plus shutdown
    rc = await asyncio.wait_for(diagnose(cfg, 2.5, out=out, err=err, asset="BTC"), 60)
    text = out.getvalue()
    rows = {tuple(line.split()[:2]): line for line in text.splitlines()[2:-1]}
    assert rc == 1  # not everything delivered
    b_trades = rows[("binance", "trades")]
    assert " yes " in b_trades and b_trades.rstrip().endswith("ok")
    assert f"wss://{good.base}/market/stream" in b_trades
    b_oi = [line for k, line in rows.items() if k[0] == "binance" and k[1] == "open"][0]
    assert " yes " in b_oi and "+REST" in b_oi
    assert "subscribed-but-silent" in rows[("binance", "liquidations")]
    assert "HTTP: 404" in rows[("binance", "book")]
    light = rows[("binance", "light")]
    assert light.split()[:4] == ["binance", "light", "depth", "depth10@100ms"]
    assert " yes " in light and light.rstrip().endswith("ok") and f"wss://{good.base}/public/stream" in light
    assert "streams=btcusdt@depth10@100ms" in good.queries["/public/stream"]
    wire = {"bybit": "orderbook.200", "okx": "books5", "hyperliquid": "l2Book"}
    for venue, why in expect.items():
        if why is None:
            continue
        assert f"light depth {wire[venue]}" in rows[(venue, "light")]
        for k, line in rows.items():
            if k[0] == venue:
                assert " no " in line and why in line, line
    history = rows[("binance", "back-fill")]
    assert " yes " in history and "ok: 1 open-interest samples, 2 one-minute bars" in history
    assert "symbol=BTCUSDT" in good.queries["/fapi/v1/klines"][0]
    # Bybit's and OKX's history is fetched too (refused / untrusted here, as their feeds are); Hyperliquid
    # publishes no open-interest history
    backfilled = {k[0] for k in rows if k[1] == "back-fill"}
    assert backfilled == {"binance"} | ({"bybit", "okx"} & set(expect))
    # liquidations, trades, open interest, book, light depth per venue; the back-fill history of three;
    # Hyperliquid: no liquidations channel, its POST /info instead
    assert not any(k == ("hyperliquid", "liquidations") for k in rows) and ("hyperliquid", "info") in rows
    assert len(rows) == 5 * len(expect) + len(backfilled)
    assert text.splitlines()[-1].startswith(f"4/{5 * len(expect) + len(backfilled)} ")


async def test_one_venue_without_dns_while_another_answers(servers):
    """A host that does not resolve is that venue's problem (DNS rows), not "no network", when another
    venue's host resolves (localhost, from the hosts file: no packet leaves the machine)."""
    good, _untrusted, _silent = servers
    trades = gz_trades(2)
    good.script("/market/stream?aggTrade", [*[("send", t) for t in trades], ("hold",)])
    cfg = copy.deepcopy(DEFAULTS)
    cfg["doctor"]["connect_timeout_seconds"] = 10.0  # a TLS handshake on a loaded 2-core box took > 1 s
    eps = cfg["feeds"]["endpoints"]
    eps.update(loopback.config_endpoints(f"localhost:{good.port}", "binance"))
    eps["bybit_ws"] = INVALID["bybit_ws"]
    cfg["universe"]["venues"] = ["binance", "bybit"]
    out, err = io.StringIO(), io.StringIO()
    rc = await diagnose(cfg, 1.5, out=out, err=err, asset="BTC", channels=("trade", "depth"))
    text = out.getvalue()
    assert rc == 1 and "no network" not in err.getvalue()
    lines = {tuple(line.split()[:2]): line for line in text.splitlines()[2:-1]}
    assert len(lines) == 4
    assert " yes " in lines[("binance", "trades")] and lines[("binance", "trades")].rstrip().endswith("ok")
    # Binance's light-depth stream connects (nothing scripted: held open) but never pushes
    assert "subscribed-but-silent: connected, no frames" in lines[("binance", "light")]
    for k in ("trades", "light"):
        assert " no " in lines[("bybit", k)] and "DNS: stream.liqmap-test.invalid" in lines[("bybit", k)]
    assert lines[("bybit", "light")].split()[2:4] == ["depth", "orderbook.200"]
