"""No input hangs it (issue 18 item 4): quiet gaps are skipped, absurd receipt times, over-long lines and gzip
bombs are refused with one line, and every damaged recording gives a report of the good frames and exit 2."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest

from liqmap.cli import main as cli_main
from liqmap.config import DEFAULTS
from liqmap.feeds import recording, replay
from liqmap.feeds.demo import DemoSource
from liqmap.feeds.recording import FORMAT_KEY, RecordingError, RecordingWriter, contracts_of, read_frames

START = 1_790_000_000.0


def _frames(seconds: float = 20, seed: int = 2):
    src = DemoSource({"demo": {**DEFAULTS["demo"]}}, assets=["BTC"], seed=seed, start=START)
    return src, list(src.run_for(seconds))


def _write(path, frames, src, shift_after: int | None = None, shift: float = 0.0):
    with RecordingWriter(path, ["binance", "bybit", "okx", "bitmex", "deribit"], ["BTC"],
                         contracts=contracts_of(src.assets)) as w:
        for i, (t, v, c, raw) in enumerate(frames):
            w.frame(t + (shift if shift_after is not None and i >= shift_after else 0.0), v, c, raw)


def _cfg():
    return {**DEFAULTS, "universe": {**DEFAULTS["universe"], "assets": ["BTC"]}}


async def test_six_hour_gap_is_skipped_not_stepped_through(tmp_path, monkeypatch):
    src, frames = _frames(20)
    path = tmp_path / "gap.jsonl.gz"
    _write(path, frames, src, shift_after=len(frames) // 2, shift=6 * 3600.0)
    steps = []
    real_ingest = replay._ingest
    monkeypatch.setattr(replay, "_ingest", lambda e, r, now: (steps.append(now), real_ingest(e, r, now)))
    rep = await replay.replay_headless(str(path), _cfg())
    assert rep["complete"] and rep["frames"] == len(frames)
    assert rep["gaps"]["count"] == 1 and rep["gaps"]["skipped_s"] == pytest.approx(6 * 3600, abs=5)
    # one engine step per second of recording *with data* (~20) plus the gap's own, not 21,600
    assert len(steps) < 60


async def test_paced_replay_jumps_the_gap(tmp_path):
    """The app's paced source: a 1 h quiet stretch is jumped (counted, shown in ``status``), not waited out."""
    import asyncio

    from liqmap.core.market import Market
    from liqmap.feeds.replay import ReplaySource

    src, frames = _frames(6)
    path = tmp_path / "gap.jsonl.gz"
    _write(path, frames, src, shift_after=len(frames) // 2, shift=3600.0)
    rs = ReplaySource(str(path), _cfg(), Market(["BTC"]), speed=50.0)
    await asyncio.wait_for(rs.run(), timeout=120)  # 1 h at 50× would be 72 s of waiting; the guard only
    assert rs.done and rs.error is None and rs.frames == len(frames)
    assert rs.gaps == 1 and "1 quiet gap skipped (1.0 h)" in rs.status


def _damaged(tmp_path, name: str, lines: list[bytes], gz: bool = True):
    p = tmp_path / name
    data = b"".join(lines)
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


def _good_lines(n: int = 40) -> list[bytes]:
    src, frames = _frames(4)
    head = orjson.dumps({FORMAT_KEY: 1, "venues": ["binance"], "assets": ["BTC"]}) + b"\n"
    body = [orjson.dumps({"t": t, "v": v, "c": c, "k": "ws", "d": raw}) + b"\n"
            for t, v, c, raw in frames if isinstance(raw, str)][:n]
    return [head, *body]


DAMAGE = {
    "huge_time": lambda good: (good[:30] + [b'{"t": 1e300, "v": "binance", "c": "x", "k": "ws", "d": "{}"}\n']
                               + good[30:]),
    "negative_time": lambda good: good[:30] + [b'{"t": -5, "v": "binance", "c": "x", "k": "ws", "d": "{}"}\n'],
    "text_time": lambda good: good[:30] + [b'{"t": "soon", "v": "binance", "c": "x", "k": "ws", "d": "{}"}\n'],
    "conn_not_text": lambda good: good[:30] + [b'{"t": 1790000001, "v": "binance", "c": 5, "k": "ws", "d": "{}"}\n'],
    "frame_is_a_list": lambda good: good[:30] + [b"[1, 2, 3]\n"],
    "garbage_line": lambda good: good[:30] + [b"\x00\x01 not json\n"] + good[30:],
    "cut_off": lambda good: good[:30] + [good[30][:25]],
    "long_line": lambda good: good[:30] + [b'{"t": 1790000001, "v": "binance", "d": "' + b"x" * (2 << 20) + b'"}\n'],
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_recording_reports_good_frames_then_exit_2(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.setattr(recording, "MAX_LINE_BYTES", 1 << 20)
    p = _damaged(tmp_path, f"{kind}.jsonl.gz", DAMAGE[kind](_good_lines()))
    out = tmp_path / "rep.json"
    assert cli_main(["replay", str(p), "--headless", "--report", str(out), "--assets", "BTC",
                     "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(p) in err[0], err
    rep = json.loads(out.read_text())
    assert rep["complete"] is False and rep["frames"] == 29  # every good frame before the damage


@pytest.mark.parametrize("header,needle", [
    ({FORMAT_KEY: "abc"}, "format version"),
    ({FORMAT_KEY: 1, "assets": 5}, "assets"),
    ({FORMAT_KEY: 1, "venues": "binance"}, "venues"),
    ({FORMAT_KEY: 1, "contracts": [1, 2]}, "contracts"),
    ({FORMAT_KEY: True}, "format version"),
])
def test_bad_header_is_one_line_exit_2(tmp_path, capsys, header, needle):
    p = _damaged(tmp_path, "h.jsonl.gz", [orjson.dumps(header) + b"\n", *_good_lines()[1:]])
    assert cli_main(["replay", str(p), "--headless", "--report", str(tmp_path / "r.json"),
                     "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_gzip_bomb_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    """A line that never ends (zeros) stops at the line bound; newline floods stop at the expansion bound —
    either way after reading at most the bound, not the whole expansion."""
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(_good_lines()[0])
        f.write(b"0" * (40 << 20))  # 40 MB of one line from a ~40 kB file
    assert bomb.stat().st_size < 200_000
    with pytest.raises(RecordingError, match="longer than 16 MB"):
        list(read_frames(bomb))
    flood = tmp_path / "flood.gz"
    with gzip.open(flood, "wb", compresslevel=9) as f:
        for line in _good_lines():
            f.write(line)
        f.write(b"\n" * (20 << 20))
    monkeypatch.setattr(recording, "MAX_EXPANSION_SLACK", 1 << 20)
    with pytest.raises(RecordingError, match="gzip bomb"):
        list(read_frames(flood))


def test_tui_replay_of_a_non_recording_is_one_line_exit_2(tmp_path, capsys):
    p = tmp_path / "notes.txt"
    p.write_text("hello\n")
    assert cli_main(["--replay", str(p), "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a recording" in err[0]
