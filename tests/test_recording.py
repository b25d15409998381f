"""Recording files: liqmap's writer/reader round trip, the cryptofeed and hftbacktest readers on the real
sample files, and damage (truncated gzip, garbage line, foreign and non-recording files) reported as one
line naming the file, after every good frame before the damage."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import orjson
import pytest

from liqmap.feeds.recording import (
    Frame,
    RecordingError,
    RecordingWriter,
    cryptofeed_file_set,
    detect,
    open_recording,
    read_frames,
)
from common import real

HFT = "hftbacktest_usdm_btcusdt_20240808.gz"
BITMEX_WS = "cryptofeed_sample_BITMEX.ws.1.0"
BITMEX_REST = "cryptofeed_sample_BITMEX.0"
OKX_WS = "cryptofeed_sample_OKX.ws.1.0"


def collect(path):
    """All frames read before an error, and the error (or None)."""
    out = []
    try:
        for fr in read_frames(path):
            out.append(fr)
    except RecordingError as e:
        return out, e
    return out, None


# ---------------------------------------------------------------------------------------- liqmap format


def test_writer_round_trip(tmp_path):
    p = tmp_path / "rec.jsonl.gz"
    with RecordingWriter(p, ["binance", "okx"], ["BTC", "ETH"], meta={"source": "test"}) as w:
        w.connection(1.0, "binance", "BINANCE_FUTURES.ws.1", "wss://example/market")
        w.frame(1.5, "binance", "BINANCE_FUTURES.ws.1", '{"a":"b\\n\\u00e9"}')
        w.frame(2.0, "binance", "https://fapi.binance.com/fapi/v1/openInterest?symbol=BTCUSDT", '{"oi":"1"}')
        w.frame(2.5, "okx", "OKX.ws.2", b"\x00\xff\x10binary")
        w.frame(3.0, "okx", "OKX.ws.2", b'{"text":"as bytes"}')
    assert w.frames == 4 and w.rest_frames == 1
    rec = open_recording(p)
    assert rec.format == "liqmap"
    assert rec.venues == ["binance", "okx"] and rec.assets == ["BTC", "ETH"]
    assert rec.header["meta"] == {"source": "test"}
    frames = list(rec)
    assert frames == [
        Frame(1.5, "binance", "BINANCE_FUTURES.ws.1", '{"a":"b\\n\\u00e9"}'),
        Frame(2.0, "binance", "https://fapi.binance.com/fapi/v1/openInterest?symbol=BTCUSDT", '{"oi":"1"}'),
        Frame(2.5, "okx", "OKX.ws.2", b"\x00\xff\x10binary"),
        Frame(3.0, "okx", "OKX.ws.2", '{"text":"as bytes"}'),
    ]
    # The documented line shape, checked on the file itself.
    lines = gzip.decompress(p.read_bytes()).splitlines()
    head = orjson.loads(lines[0])
    assert head["liqmap_recording"] == 1 and isinstance(head["created"], float)
    assert orjson.loads(lines[1]) == {"t": 1.0, "v": "binance", "c": "BINANCE_FUTURES.ws.1", "k": "open",
                                      "d": "wss://example/market"}
    assert orjson.loads(lines[3])["k"] == "rest"
    assert orjson.loads(lines[4])["e"] == "b64"


def test_flushed_but_unclosed_file_replays_then_reports_truncation(tmp_path):
    p = tmp_path / "live.gz"
    w = RecordingWriter(p, ["bybit"], ["BTC"], flush_seconds=0.0)
    for i in range(50):
        w.frame(float(i), "bybit", "BYBIT.ws.1", f'{{"i":{i}}}')
    assert w.maybe_flush()  # a sync point handed to the writer thread ...
    w.flush()  # ... and one waited for
    frames, err = collect(p)  # the writer is still open: no gzip trailer yet
    assert [f.raw for f in frames] == [f'{{"i":{i}}}' for i in range(50)]
    assert err is not None and str(err).startswith(str(p)) and "truncated" in str(err)
    w.close()
    frames, err = collect(p)
    assert len(frames) == 50 and err is None


def test_truncated_gzip_keeps_frames_before_the_cut(tmp_path):
    p = tmp_path / "full.gz"
    with RecordingWriter(p, ["bitmex"], ["BTC"]) as w:
        for i in range(3000):
            w.frame(1000.0 + i, "bitmex", "BITMEX.ws.1", orjson.dumps({"i": i, "pad": "x" * (i % 97)}).decode())
    data = p.read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    frames, err = collect(cut)
    assert err is not None
    msg = str(err)
    assert "\n" not in msg and msg.startswith(str(cut)) and "truncated" in msg
    assert 0 < len(frames) < 3000
    assert [orjson.loads(f.raw)["i"] for f in frames] == list(range(len(frames)))


def test_garbage_line_in_the_middle(tmp_path):
    p = tmp_path / "garbage.gz"
    good = [orjson.dumps({"t": float(i), "v": "okx", "c": "OKX.ws.1", "k": "ws", "d": f"frame{i}"}) for i in range(10)]
    body = [orjson.dumps({"liqmap_recording": 1, "created": 0.0, "venues": ["okx"], "assets": ["BTC"]})]
    body += good[:4] + [b"%%% this is not json %%%"] + good[4:]
    p.write_bytes(gzip.compress(b"\n".join(body) + b"\n"))
    frames, err = collect(p)
    assert [f.raw for f in frames] == ["frame0", "frame1", "frame2", "frame3"]
    assert err is not None and "line 6" in str(err) and str(p) in str(err)


def test_corrupt_gzip_bytes(tmp_path):
    p = tmp_path / "rec.gz"
    with RecordingWriter(p, ["okx"], ["BTC"], clock=lambda: 0.0) as w:  # fixed clock: the same bytes every run
        for i in range(2000):
            w.frame(float(i), "okx", "OKX.ws.1", orjson.dumps({"i": i, "x": i * 7919 % 10007}).decode())
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 64] = bytes(64)  # zero out a stretch of deflate data
    bad = tmp_path / "bad.gz"
    bad.write_bytes(bytes(data))
    frames, err = collect(bad)
    assert err is not None and str(bad) in str(err) and "\n" not in str(err)
    assert len(frames) < 2000
    # the frames well before the damage came out intact and in order (deflate damage can garble a few
    # frames just before it is detected — gzip's CRC is only at the end — and the parsers count those)
    assert [orjson.loads(f.raw)["i"] for f in frames[:500]] == list(range(500))


def test_newer_format_version_is_refused(tmp_path):
    p = tmp_path / "v9.gz"
    p.write_bytes(gzip.compress(orjson.dumps({"liqmap_recording": 9}) + b"\n"))
    with pytest.raises(RecordingError, match="newer"):
        open_recording(p)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not a recording"),
        (b'{"hello": "world"}\n', "not a recording"),
        (b"just some text\nmore\n", "not a recording"),
    ],
)
def test_not_a_recording(tmp_path, content, problem):
    p = tmp_path / "thing.bin"
    p.write_bytes(content)
    with pytest.raises(RecordingError) as ei:
        open_recording(p)
    assert problem in str(ei.value) and str(ei.value).startswith(str(p))


def test_missing_file():
    with pytest.raises(RecordingError, match="no such file"):
        open_recording("/nonexistent/rec.gz")


# ---------------------------------------------------------------------------------------- hftbacktest


def test_hftbacktest_binance_file():
    rec = open_recording(real(HFT))
    assert rec.format == "hftbacktest" and rec.venues == ["binance"]
    n_ws = 0
    rest = []
    last_t = 0.0
    streams = {"depth": 0, "trade": 0, "bookTicker": 0}
    for fr in rec:
        assert fr.venue == "binance"
        assert fr.t >= last_t - 1.0  # receipt order (hftbacktest stamps per batch)
        last_t = max(last_t, fr.t)
        if fr.conn.startswith("http"):
            rest.append(fr)
        else:
            n_ws += 1
            for k in streams:
                if f'@{k}' in fr.raw[:40]:
                    streams[k] += 1
    # SOURCES.md: 93,954 lines = 6,551 depthUpdate + 21,313 trade + 66,089 bookTicker + 1 REST snapshot
    assert n_ws == 93953 and len(rest) == 1
    assert streams == {"depth": 6551, "trade": 21313, "bookTicker": 66089}
    snap = rest[0]
    assert snap.conn == "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
    body = orjson.loads(snap.raw)
    assert body["lastUpdateId"] == 5123107852948 and len(body["bids"]) == 1000
    assert abs(snap.t - 1723161255.319702566) < 1e-6


def test_hftbacktest_truncated_copy(tmp_path):
    data = real(HFT).read_bytes()
    cut = tmp_path / "hft_cut_btcusdt.gz"
    cut.write_bytes(data[:400_000])
    assert detect(cut) == "hftbacktest"
    frames, err = collect(cut)
    assert err is not None and "truncated" in str(err) and str(cut) in str(err)
    assert 1000 < len(frames) < 93954
    for f in frames:  # every frame handed out is a whole JSON document
        orjson.loads(f.raw)


def test_hftbacktest_garbage_line(tmp_path):
    lines = gzip.decompress(real(HFT).read_bytes()).splitlines(keepends=True)[:200]
    lines.insert(100, b"garbage without a timestamp\n")
    p = tmp_path / "hft_garbage.gz"
    p.write_bytes(gzip.compress(b"".join(lines)))
    frames, err = collect(p)
    assert len(frames) == 100 and "line 101" in str(err)


# ------------------------------------------------------------------------------------------ cryptofeed


def _copy_bitmex_set(tmp_path) -> Path:
    d = tmp_path / "cf"
    d.mkdir()
    shutil.copy(real(BITMEX_WS), d / BITMEX_WS)
    shutil.copy(real(BITMEX_REST), d / BITMEX_REST)
    return d


def test_cryptofeed_bitmex_set(tmp_path):
    d = _copy_bitmex_set(tmp_path)
    (d / "unrelated.txt").write_text("not part of the set\n")
    files = cryptofeed_file_set(d / BITMEX_WS)
    assert sorted(os.path.basename(f) for f in files) == sorted([BITMEX_WS, BITMEX_REST])
    rec = open_recording(d / BITMEX_WS)
    assert rec.format == "cryptofeed" and rec.venues == ["bitmex"]
    frames = list(rec)
    rest = [f for f in frames if f.conn.startswith("http")]
    ws = [f for f in frames if not f.conn.startswith("http")]
    # 2,124 lines: 1 connect + 3 subscribes + 2,120 frames received; the REST file adds 1 response
    assert len(ws) == 2120 and len(rest) == 1
    assert rest[0].conn == "https://www.bitmex.com/api/v1/instrument/active"
    assert frames[0] is rest[0]  # 22:36:07.384 — before the websocket connected
    assert all(f.conn == "BITMEX.ws.1" and f.venue == "bitmex" for f in ws)
    assert all(a.t <= b.t for a, b in zip(frames, frames[1:]))
    assert orjson.loads(ws[0].raw)["info"].startswith("Welcome to the BitMEX")
    assert sum('"table":"orderBookL2","action":"partial"' in f.raw for f in ws) >= 1
    # the directory itself is accepted too
    assert len(list(read_frames(d))) == 2121


def test_cryptofeed_okx_file():
    rec = open_recording(real(OKX_WS))
    frames = list(rec)
    assert rec.venues == ["okx"] and len(frames) == 410  # 414 lines - 1 connect - 3 subscribes
    tables = {}
    for f in frames:
        msg = orjson.loads(f.raw)
        if "data" in msg:
            ch = msg["arg"]["channel"]
            tables[ch] = tables.get(ch, 0) + 1
    assert tables == {"books": 99 + 98 + 93, "trades": 69 + 4 + 1, "tickers": 28}


def test_cryptofeed_garbage_line_in_the_middle(tmp_path):
    lines = real(OKX_WS).read_bytes().splitlines(keepends=True)
    lines.insert(200, b"\x00\x01 binary junk \xfe\n")
    p = tmp_path / "OKX.ws.1.0"
    p.write_bytes(b"".join(lines))
    frames, err = collect(p)
    assert err is not None and "line 201" in str(err) and str(p) in str(err)
    assert len(frames) == 200 - 4  # everything received before the junk line


def test_cryptofeed_cut_last_line(tmp_path):
    data = real(OKX_WS).read_bytes()
    p = tmp_path / "OKX.ws.1.0"
    p.write_bytes(data[: len(data) - 500])
    frames, err = collect(p)
    assert err is not None and "truncated" in str(err)
    assert len(frames) > 300


def test_cryptofeed_foreign_exchange(tmp_path):
    p = tmp_path / "COINBASE.ws.1.0"
    p.write_bytes(real(OKX_WS).read_bytes())
    with pytest.raises(RecordingError, match="foreign"):
        list(read_frames(p))


def test_cryptofeed_venue_from_url_when_name_says_nothing(tmp_path):
    p = tmp_path / "session.log"
    p.write_bytes(real(OKX_WS).read_bytes())
    frames = list(read_frames(p))
    assert len(frames) == 410 and {f.venue for f in frames} == {"okx"}


# ---------------------------------------------------------------------------------------- liqmap record


def test_record_demo_then_replay(tmp_path, capsys):
    """`liqmap record OUT --demo --duration 3`: three simulated seconds of all five venues, written as
    fast as the CPU allows; the file replays through the venue parsers without a single error."""
    import asyncio

    from liqmap.cli import main as cli_main
    from liqmap.config import load
    from liqmap.feeds.replay import replay_headless

    out = tmp_path / "demo.jsonl.gz"
    rc = cli_main(["record", str(out), "--demo", "--duration", "3", "--seed", "3", "--assets", "BTC,ETH"])
    assert rc == 0
    assert "demo frames" in capsys.readouterr().err
    rec = open_recording(out)
    assert rec.header["meta"] == {"source": "demo", "seed": 3}
    assert rec.assets == ["BTC", "ETH"]
    frames = list(rec)
    assert {f.venue for f in frames} == set(rec.venues) == {"binance", "bybit", "okx", "deribit", "hyperliquid"}
    assert any(f.conn.startswith("https://") for f in frames)  # the REST snapshot / OI polls
    assert frames[-1].t - frames[0].t == pytest.approx(3.0, abs=0.5)
    cfg = load(environ={}, overrides={"universe": {"assets": ["BTC", "ETH"]}})
    rep = asyncio.run(replay_headless(str(out), cfg))
    assert rep["complete"] and rep["frames"] == len(frames)
    for venue, v in rep["venues"].items():
        assert v["errors"] == 0, (venue, v["errors_by_kind"])
        assert v["events"].get("trade", 0) > 0, venue
    assert rep["assets"]["BTC"]["books"]  # books rebuilt for the focus asset


def test_record_demo_speed_multiplies_the_market_time(tmp_path, capsys):
    """`liqmap record OUT --demo --duration 2 --speed 30`: two seconds at 30x real time are 60 s of market (the
    speed flag was ignored: `--speed 60` for 150 s recorded 150 s of market time); without --speed, 2 s."""
    from liqmap.cli import main as cli_main

    spans = {}
    for speed in (None, 30):
        out = tmp_path / f"demo{speed}.jsonl.gz"
        argv = ["record", str(out), "--demo", "--duration", "2", "--seed", "3", "--assets", "BTC"]
        assert cli_main(argv + (["--speed", str(speed)] if speed else [])) == 0
        frames = list(open_recording(out))
        spans[speed] = frames[-1].t - frames[0].t
    capsys.readouterr()
    assert spans[None] == pytest.approx(2.0, abs=0.5)
    assert spans[30] == pytest.approx(60.0, abs=1.5)
