"""History is never lost silently (issue 18 item 2): one writer per data dir, failed flushes kept and retried,
damaged files set aside (never deleted, never fatal), no write through a planted symlink, demo history in
its own dir, and a kill -9 of a real ``liqmap collect`` loses at most one flush interval."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest

from liqmap.cli import main as cli_main
from liqmap.core import codec
from liqmap.core import store as store_mod
from liqmap.core.datalock import DataDirBusy, DataDirLock
from liqmap.core.events import LIQ_DTYPE
from liqmap.core.snapshot import MapGrid, Snapshot
from liqmap.core.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _liqs(n: int, start: int = 0) -> np.ndarray:
    rows = np.zeros(n, dtype=LIQ_DTYPE)
    rows["ts"] = 1.7e9 + np.arange(start, start + n)
    rows["price"], rows["qty"], rows["usd"], rows["side"] = 66000.0, 0.1, 6600.0, 1
    return rows


def _collect(data: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "liqmap", "collect", "--demo", "--assets", "BTC,ETH",
                             "--data-dir", str(data), *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def _wait_line(proc: subprocess.Popen, prefix: str) -> str:
    while True:
        line = proc.stderr.readline()
        assert line, f"{prefix!r} never printed (exit {proc.poll()})"
        if line.startswith(prefix):
            return line


# ------------------------------------------------------------------------------------------- the lock


def test_second_writer_is_refused_with_the_holder_named(tmp_path, capsys):
    data = tmp_path / "data"
    first = _collect(data, "--status-every", "0.5")
    try:
        _wait_line(first, "collect DEMO")
        assert cli_main(["collect", "--demo", "--assets", "BTC", "--duration", "1", "--data-dir", str(data)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert f"pid {first.pid} on host {socket.gethostname()}" in err[0] and str(data) in err[0]
        assert "liqmap collect" in err[0]
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0
    assert (data / "lock").read_text() == ""  # a clean exit leaves no holder behind


def test_stale_lock_of_a_killed_holder_is_taken_over_with_a_warning(tmp_path, capsys):
    data = tmp_path / "data"
    first = _collect(data, "--status-every", "0.5")
    _wait_line(first, "collect DEMO")
    first.kill()
    first.wait()
    holder = json.loads((data / "lock").read_text())
    assert holder["pid"] == first.pid
    assert cli_main(["collect", "--demo", "--assets", "BTC", "--duration", "1", "--data-dir", str(data)]) == 0
    err = capsys.readouterr().err
    assert f"took over the stale data-dir lock of pid {first.pid}" in err


def test_lock_refuses_a_planted_symlink(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (data / "lock").symlink_to(victim)
    with pytest.raises(DataDirBusy, match="cannot open"):
        DataDirLock(data).acquire()
    assert victim.read_text() == "keep"


def test_demo_history_goes_to_its_own_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("LIQMAP_DATA_DIR", raising=False)
    assert cli_main(["collect", "--demo", "--assets", "BTC", "--duration", "2", "--status-every", "5"]) == 0
    live = tmp_path / "liqmap"
    assert (live / "demo" / "snapshots").is_dir()
    assert sorted(p.name for p in live.iterdir()) == ["demo"]  # nothing simulated in the live dir


# --------------------------------------------------------------------------------- failing flushes


def test_full_disk_keeps_rows_retries_and_resumes(tmp_path, monkeypatch):
    """ENOSPC on the first flushes: rows stay queued (status says so), the flush thread backs off and
    retries, and once the disk has room every row is written exactly once."""
    real_write = store_mod.atomic_write
    full = {"left": 3}

    def write(path, data, durable=True):
        if full["left"] > 0:
            full["left"] -= 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data, durable)

    monkeypatch.setattr(store_mod, "atomic_write", write)
    monkeypatch.setattr(Store, "MAX_BACKOFF_S", 0.2)
    warnings: list[str] = []
    st = Store({"store": {"flush_seconds": 0.1}}, tmp_path, warn=warnings.append)
    st.append_events("liquidations", "BTC", _liqs(100))
    assert st.flush() == 0 and st.pending_rows == 100
    assert "No space left on device" in st.status() and "100 rows waiting" in st.status()

    async def go():
        stop = asyncio.Event()
        task = asyncio.create_task(st.run(stop))
        st.append_events("liquidations", "BTC", _liqs(50, start=100))
        for _ in range(600):
            if st.failure is None and st.pending_rows == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(go())
    assert st.failed_flushes == 3 and st.failure is None and st.status() == ""
    df = Store({}, tmp_path).load("liquidations")
    assert df.height == 150 and df["ts"].n_unique() == 150
    assert any("history saved again" in w for w in warnings)


def test_memory_bound_drops_oldest_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "atomic_write",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system")))
    st = Store({"store": {"max_pending_rows": 1000}}, tmp_path)
    for i in range(10):
        st.append_events("liquidations", "BTC", _liqs(300, start=i * 300))
        st.flush()
    assert st.pending_rows <= 1000 and st.dropped_rows >= 2000
    assert "Read-only file system" in st.status() and "rows dropped (memory bound)" in st.status()


def test_read_only_snapshot_dir_is_a_warning_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "atomic_write",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system")))
    warnings: list[str] = []
    st = Store({}, tmp_path, warn=warnings.append)
    grid = MapGrid(asset="BTC", mode="raw", timeframe="1m", step=25.0, row0=0, col0=0, period=60,
                   values=np.zeros((4, 4), dtype=np.float32), trace=np.full(4, 1.0), venues=("binance",))
    for _ in range(3):
        assert st.save_snapshot(Snapshot(version=1, created=1.0, grid=grid)) is None
    assert len(warnings) == 1 and "Read-only" in warnings[0]


# -------------------------------------------------------------------------------------- damaged files


def test_snapshot_with_a_text_version_is_set_aside_and_collect_starts(tmp_path, capsys):
    data = tmp_path / "data"
    st = Store({}, data)
    grid = MapGrid(asset="BTC", mode="raw", timeframe="1m", step=25.0, row0=0, col0=0, period=60,
                   values=np.ones((4, 4), dtype=np.float32), trace=np.full(4, 1.0), venues=("binance",))
    p = st.save_snapshot(Snapshot(version=1, created=1.0, grid=grid))
    blob = p.read_bytes()
    magic, fmt, hlen = codec._PRE.unpack_from(blob)
    head = orjson.loads(blob[codec._PRE.size:codec._PRE.size + hlen])
    head["version"] = "abc"
    h2 = orjson.dumps(head)
    p.write_bytes(codec._PRE.pack(magic, fmt, len(h2)) + h2 + blob[codec._PRE.size + hlen:])
    assert cli_main(["collect", "--demo", "--assets", "BTC", "--duration", "1", "--data-dir", str(data)]) == 0
    err = capsys.readouterr().err
    assert "set aside unreadable file" in err and p.name in err
    assert p.with_name(p.name + ".corrupt").exists()


def test_parquet_with_a_text_ts_column_is_set_aside_the_rest_loads(tmp_path):
    st = Store({}, tmp_path)
    st.append_events("liquidations", "BTC", _liqs(10))
    st.flush()
    d = tmp_path / "history" / "liquidations"
    bad = d / "1700000099999-0000.parquet"
    pl.DataFrame({"ts": ["yesterday"], "asset": ["BTC"], "venue": ["binance"]}).write_parquet(bad)
    warnings: list[str] = []
    st2 = Store({}, tmp_path, warn=warnings.append)
    assert len(st2.load_events("liquidations", "BTC")) == 10
    assert len(warnings) == 1 and "not a number" in warnings[0]
    assert bad.with_name(bad.name + ".corrupt").exists()


def test_damaged_day_file_never_costs_the_small_files_of_its_day(tmp_path):
    """The finding: a damaged compacted file made the store delete every small file of its day (159 → 0)."""
    clock = lambda: 1_700_006_400.0  # noqa: E731 - 2023-11-15 00:00 UTC
    st = Store({"store": {"compact_after_seconds": 1.0}}, tmp_path, clock=clock)
    for i in range(159):
        st.append_events("liquidations", "BTC", _liqs(1, start=i))
        st.flush()
    d = tmp_path / "history" / "liquidations"
    smalls = sorted(d.glob("*.parquet"))
    last_ms = max(int(p.name.split("-")[0]) for p in smalls)
    day_file = d / f"c20231115-{last_ms:013d}.parquet"
    day_file.write_bytes(b"PAR1 this is not parquet")  # "covers" every small file, and is damaged
    warnings: list[str] = []
    st2 = Store({"store": {"compact_after_seconds": 1.0}}, tmp_path, clock=lambda: 1_700_100_000.0,
                warn=warnings.append)
    assert st2.load("liquidations").height == 159
    assert day_file.with_name(day_file.name + ".corrupt").exists()  # set aside, not deleted
    assert st2.compact() == 159
    assert Store({}, tmp_path).load("liquidations").height == 159


# ------------------------------------------------------------------------------------------- symlinks


def test_no_write_follows_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    st = Store({}, tmp_path / "data")
    d = tmp_path / "data" / "history" / "liquidations"
    d.mkdir(parents=True)
    st.clock = lambda: 1_700_000_000.0
    name = st._next_name()
    st._last_ms = 0  # the next flush reuses that name
    (d / f".{name}.tmp-{os.getpid()}").symlink_to(victim)
    (d / name).symlink_to(victim)
    st.append_events("liquidations", "BTC", _liqs(5))
    assert st.flush() == 1
    assert victim.read_text() == "do not touch"
    assert not (d / name).is_symlink() and Store({}, tmp_path / "data").load("liquidations").height == 5


def test_a_symlinked_table_dir_is_not_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "data" / "history").mkdir(parents=True)
    (tmp_path / "data" / "history" / "liquidations").symlink_to(outside)
    warnings: list[str] = []
    st = Store({}, tmp_path / "data", warn=warnings.append)
    st.append_events("liquidations", "BTC", _liqs(5))
    assert st.flush() == 0 and st.pending_rows == 5
    assert list(outside.iterdir()) == [] and "leads out of the data dir" in warnings[0]


# ----------------------------------------------------------------------------------------- kill -9


def _on_disk(data: Path) -> int:
    return Store({}, data, warn=lambda m: None).load("liquidations").height


def test_kill_9_loses_at_most_one_flush_interval(tmp_path):
    """A real ``liqmap collect --demo`` (flush every 1 s, a liquidation-rich demo market) is SIGKILLed at
    random moments. Its status line says how many liquidations it had accepted; every liquidation it had
    accepted by one flush interval (plus the flush's own write, 0.5 s) before the kill is on disk."""
    flush_s, slack = 1.0, 0.5
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[store]\nflush_seconds = {flush_s}\n[demo]\njump_rate_per_hour = 1200.0\n"
                   "jump_pct = 1.0\nhold_minutes = 5.0\n")  # a steady few liquidations a second
    rnd = random.Random(18)
    runs = []
    for i in range(4):
        data = tmp_path / f"data{i}"
        proc = _collect(data, "--status-every", "0.1", "--speed", "5", "--config", str(cfg))
        seen: list[tuple[float, int]] = []  # (monotonic time the line was read, liquidations accepted)

        def read(proc=proc, seen=seen):
            for ln in proc.stderr:
                if ln.startswith("collect DEMO"):
                    seen.append((time.monotonic(), int(ln.split(" · ")[2].split()[0].replace(",", ""))))

        try:
            _wait_line(proc, "collect DEMO")
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            time.sleep(rnd.uniform(0.5, 8.0))
            t_kill = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        disk = _on_disk(data)
        must = max((n for t, n in seen if t <= t_kill - flush_s - slack), default=0)
        runs.append((round(t_kill - seen[0][0], 2) if seen else None, seen[-1][1] if seen else 0, must, disk))
        assert disk >= must, runs
        assert not list(data.rglob("*.corrupt"))
    print("kill -9 runs (alive s, seen at kill, seen ≥1.5 s before kill, on disk):", runs)
    assert any(must > 0 for _, _, must, _ in runs)  # the runs did see liquidations to lose


# --------------------------------------------------------------------------------------------- export


def _history(data: Path) -> None:
    st = Store({}, data)
    st.append_events("liquidations", "BTC", _liqs(5))
    st.flush()


@pytest.mark.parametrize("target", ["device", "symlink", "dir", "fifo"])
def test_export_replaces_only_regular_files(tmp_path, capsys, target):
    data = tmp_path / "data"
    _history(data)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    out = tmp_path / "out.parquet"
    if target == "device":
        out = Path("/dev/null")  # as root this was replaced by a regular file
    elif target == "symlink":
        out.symlink_to(victim)
    elif target == "dir":
        out.mkdir()
    else:
        os.mkfifo(out)
    before = os.lstat(out)
    assert cli_main(["export", str(out), "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0], err
    after = os.lstat(out)
    assert (before.st_mode, before.st_ino) == (after.st_mode, after.st_ino)
    assert victim.read_text() == "keep"
    assert not list(out.parent.glob(f".{out.name}.tmp-*"))


def test_export_never_writes_through_a_planted_temp_symlink(tmp_path, capsys):
    data = tmp_path / "data"
    _history(data)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    out = tmp_path / "out.csv"
    (tmp_path / f".out.csv.tmp-{os.getpid()}").symlink_to(victim)
    assert cli_main(["export", str(out), "--format", "csv", "--data-dir", str(data)]) == 0
    assert victim.read_text() == "keep" and out.read_text().startswith("ts,")
    assert not out.is_symlink()


def test_replay_report_refuses_a_device(tmp_path, capsys):
    from liqmap.feeds.recording import RecordingWriter

    rec = tmp_path / "r.gz"
    with RecordingWriter(rec, ["binance"], ["BTC"]) as w:
        w.frame(1.7e9, "binance", "x", "{}")
    assert cli_main(["replay", str(rec), "--headless", "--report", "/dev/null", "--data-dir", str(tmp_path)]) == 2
    assert "only a regular file is replaced" in capsys.readouterr().err
    assert Path("/dev/null").is_char_device()
