"""Exact positions in recordings and replay: ``liqmap record`` writes every clearinghouseState answer the poller
receives (request, send time, status, body as received) between the frames, and headless replay puts them
through the poller's own answer steps into the PositionBook, so the report's ``assets.<A>.exact`` (coverage and
the live accuracy: model vs exact vs baseline) is the one the live engine computed over the same frames.
Simulated and recorded time only: nothing here depends on how fast the machine is."""

import asyncio
import copy
from pathlib import Path

import orjson

from liqmap.commands.record import drive_demo, record_demo
from liqmap.config import DEFAULTS
from liqmap.feeds.demo import DemoFeed
from liqmap.feeds.frame import Frame
from liqmap.feeds.recording import InfoAnswer, RecordingWriter, open_recording, read_frames
from liqmap.feeds.replay import _plain, replay_headless
from liqmap.runtime import Runtime
from tls.loopback import server  # noqa: F401  (the shared loopback TLS fixture)

DATA = Path(__file__).parent / "data" / "hyperliquid"
ASSETS = ["BTC", "ETH"]


def config(assets=ASSETS, every=60.0) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=list(assets), focus_extra=[])
    cfg["positions"]["accuracy_every_seconds"] = every
    return cfg


def test_demo_recording_replays_to_the_live_engines_exact_view(tmp_path):
    """The live side: the demo through the runtime's one ingest path with the engine, the poller asking the demo
    clearinghouse between steps, written to a recording as it goes (``record_demo``'s own driver). The replay of
    that file must reproduce every asset's exact view — coverage, levels, accuracy history — to the last digit."""
    cfg = config()
    path = tmp_path / "demo.gz"
    feed = DemoFeed(cfg, assets=ASSETS, seed=3)
    src = feed.demo
    from liqmap.feeds.recording import contracts_of

    writer = RecordingWriter(path, cfg["universe"]["venues"], ASSETS, contracts=contracts_of(src.assets))
    feed.recorder = writer
    rt = Runtime(cfg, feed)
    assert rt.positions is not None and rt.positions.poller.recorder is not None

    def write(f):
        writer.frame(f.t, f.venue, f.conn, f.raw)

    asyncio.run(drive_demo(rt, write, 300.0, tick=1.0))
    writer.close()
    live = {a: _plain(rt.engine.state(a).exact.view.to_dict()) for a in ASSETS}
    assert writer.answers == rt.positions.poller.stats.requests > 500

    rep = asyncio.run(replay_headless(str(path), cfg))
    assert rep["complete"], rep["error"]
    assert rep["positions"]["answers"] == writer.answers
    assert rep["positions"]["applied"] == rt.positions.poller.stats.answers
    assert rep["positions"]["malformed"] == 0
    assert rep["venues"]["hyperliquid"]["errors"] == 0  # the answers never reached the venue's frame parser
    for a in ASSETS:
        ex = rep["assets"][a]["exact"]
        assert ex is not None
        assert ex == live[a]
        assert ex["coverage"]["wallets"] > 5 and 0 < ex["coverage"]["oi_share"] <= 1
        acc = ex["accuracy"]
        assert acc["n"] >= 3  # every 60 s over 300 s (the first comparison waits for positions in range)
        assert acc["model_share"] is not None and acc["base_share"] is not None


def test_record_demo_writes_the_answers_and_replay_reads_them(tmp_path):
    """``liqmap record --demo --duration`` (no engine while recording) writes answer lines; a reader that asks for
    frames only never sees them; the replay report carries ``exact`` for both assets."""
    cfg = config(every=60.0)
    path = tmp_path / "rec.gz"
    assert asyncio.run(record_demo(str(path), cfg, 200.0, seed=1, speed=None)) == 0
    rec = open_recording(path)
    items = list(rec.read(answers=True))
    answers = [x for x in items if type(x) is InfoAnswer]
    assert len(answers) > 300
    a = answers[0]
    assert a.venue == "hyperliquid" and a.url == cfg["positions"]["info_url"] and a.status == 200
    assert a.wallet and a.request == {"type": "clearinghouseState", "user": a.wallet}
    assert a.sent is not None and a.sent <= a.t
    assert isinstance(orjson.loads(a.raw)["assetPositions"], list)
    assert all(type(f) is Frame for f in read_frames(path))
    assert sum(1 for _ in read_frames(path)) == len(items) - len(answers)
    rep = asyncio.run(replay_headless(str(path), cfg))
    assert rep["positions"]["answers"] == len(answers)
    for asset in ASSETS:
        ex = rep["assets"][asset]["exact"]
        assert ex["coverage"]["wallets"] > 0 and ex["accuracy"]["n"] >= 1


def _hl_frames(t0: float) -> list[tuple[float, str]]:
    """ETH on Hyperliquid for 10 s around 2986: its context (mark, OI in coins) and trades naming wallets."""
    out = []
    for i in range(10):
        t = t0 + i
        ctx = {"channel": "activeAssetCtx", "data": {"coin": "ETH", "ctx": {
            "markPx": "2986.3", "openInterest": "10.0", "funding": "0.0000125", "oraclePx": "2986.0"}}}
        out.append((t, orjson.dumps(ctx).decode()))
        trade = {"channel": "trades", "data": [{
            "coin": "ETH", "side": "B" if i % 2 else "A", "px": f"{2986.3 + (i % 3) * 0.1:.1f}", "sz": "0.5",
            "time": int(t * 1000), "hash": "0x" + f"{i:064x}", "tid": 1000 + i,
            "users": ["0x" + f"{i + 1:040x}", "0x" + f"{i + 100:040x}"]}]}
        out.append((t + 0.05, orjson.dumps(trade).decode()))
    return out


def test_malformed_recorded_answers_are_counted_and_dropped(tmp_path):
    """A constructed recording with Hyperliquid's documented answer (tests/data/hyperliquid) between real-shaped
    frames, plus answers that are not JSON, lack assetPositions, lack their request, or are a 429: the good one
    reaches the book, the bad ones are counted and dropped, nothing stops the replay."""
    cfg = config(["ETH"], every=1.0)
    good = (DATA / "info_clearinghouse_state.docs.json").read_text()
    wallet = "0x" + "ab" * 20
    url = cfg["positions"]["info_url"]
    path = tmp_path / "hl.gz"
    t0 = 1_733_400_000.0
    with RecordingWriter(path, ["hyperliquid"], ["ETH"]) as w:
        for i, (t, raw) in enumerate(_hl_frames(t0)):
            w.frame(t, "hyperliquid", "wss://api.hyperliquid.xyz/ws", raw)
            if i == 4:
                req = {"type": "clearinghouseState", "user": wallet}
                w.answer(t + 0.01, "hyperliquid", url, req, t, 200, good)
                w.answer(t + 0.02, "hyperliquid", url, {**req, "user": "0x" + "cd" * 20}, t, 200, '{"assetPos')
                w.answer(t + 0.03, "hyperliquid", url, {**req, "user": "0x" + "ef" * 20}, t, 200, '{"time": 1}')
                w.answer(t + 0.04, "hyperliquid", url, {**req, "user": "0x" + "12" * 20}, t, 429, "rate limited")
        # a line whose request is unreadable: still an answer line, counted as malformed
        w._emit(orjson.dumps({"t": t0 + 9.5, "v": "hyperliquid", "c": url, "k": "post", "q": "junk",
                              "d": good}) + b"\n")
    rep = asyncio.run(replay_headless(str(path), cfg))
    assert rep["complete"], rep["error"]
    pos = rep["positions"]
    assert pos["answers"] == 5
    assert pos["applied"] == 1 and pos["malformed"] == 3 and pos["rate_limited"] == 1
    assert rep["venues"]["hyperliquid"]["errors"] == 0
    ex = rep["assets"]["ETH"]["exact"]
    assert ex["coverage"]["wallets"] == 1 and ex["coverage"]["positions"] == 1
    # the documented position: 0.0335 ETH long, liquidation 2866.26936529 — of 10 ETH open interest
    assert abs(ex["at_risk_long_usd"] - 0.0335 * 2866.26936529) < 1e-6
    assert abs(ex["coverage"]["oi_share"] - 0.0335 / 20.0) < 1e-12
    assert ex["accuracy"]["n"] >= 1
    assert ex["accuracy"]["last"]["exact_usd"] > 0


def test_a_recording_without_answers_replays_with_no_positions_answers(tmp_path):
    """Old recordings (no answer lines) stay readable: the layer is there, it just receives nothing."""
    cfg = config(["ETH"], every=1.0)
    path = tmp_path / "old.gz"
    with RecordingWriter(path, ["hyperliquid"], ["ETH"]) as w:
        for t, raw in _hl_frames(1_733_400_000.0):
            w.frame(t, "hyperliquid", "wss://api.hyperliquid.xyz/ws", raw)
    rep = asyncio.run(replay_headless(str(path), cfg))
    assert rep["complete"]
    assert rep["positions"]["answers"] == 0 and rep["positions"]["wallets"] == 0
    assert rep["assets"]["ETH"]["exact"]["coverage"]["wallets"] == 0


async def test_live_record_writes_the_answers_of_the_loopback_info_endpoint(server, tmp_path):
    """``liqmap record`` live: the trades of a loopback Hyperliquid (TLS, 127.0.0.1 only) name two wallets, the
    poller asks the loopback ``/info`` for them, and each answer lands in the file exactly as served."""
    import io
    import time

    from test_hyperliquid_loopback import config as hl_config
    from test_hyperliquid_loopback import session
    from tls import loopback

    from liqmap.commands.record import record_live

    good = (DATA / "info_clearinghouse_state.docs.json").read_text()
    server.script("/ws", session(int(time.time() * 1000)))
    server.posts["/info"] = lambda body: (200, good)
    cfg = hl_config()
    cfg["universe"].update(assets=["BTC", "ETH"], venues=["hyperliquid"])
    eps = loopback.endpoints(server.base, "hyperliquid")
    out = tmp_path / "live.gz"
    err = io.StringIO()
    assert await record_live(str(out), cfg, duration=3.0, status_every=1.0, endpoints=eps, err=err) == 0, \
        err.getvalue()
    answers = [x for x in open_recording(out).read(answers=True) if type(x) is InfoAnswer]
    users = {"0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2", "0x5e9ee1089755c3435139848e47e6635505d5a13a"}
    assert {a.wallet for a in answers} == users
    assert all(a.url == eps["hyperliquid"]["info"] and a.raw == good and a.status == 200 for a in answers)
    assert [orjson.loads(b) for b in server.posted["/info"]][:2] == [a.request for a in answers[:2]]
    assert "positions answers" in err.getvalue()
    rep = await replay_headless(str(out), cfg)
    assert rep["positions"]["applied"] == len(answers) and rep["positions"]["malformed"] == 0
    assert rep["assets"]["ETH"]["exact"]["coverage"]["wallets"] == 2  # the documented ETH position, twice
