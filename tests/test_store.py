"""History store: atomic flushes that survive kill -9, corrupt files set aside, retention, compaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl

from liqmap.core import events as ev
from liqmap.core.snapshot import MapGrid, Snapshot
from liqmap.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
CFG = {"store": {"flush_seconds": 5.0, "retention_days": 7.0}}


def _liqs(ids: np.ndarray, venue: int = 0) -> np.ndarray:
    rows = np.zeros(len(ids), dtype=ev.LIQ_DTYPE)
    rows["ts"] = 1.7e9 + ids
    rows["price"] = 66000 + (ids % 100)
    rows["qty"] = 0.01 + ids * 1e-6
    rows["usd"] = rows["price"] * rows["qty"]
    rows["side"] = np.where(ids % 2 == 0, 1, -1)
    rows["venue"] = venue
    return rows


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_flush_and_reload_round_trip(tmp_path):
    warnings: list[str] = []
    st = Store(CFG, tmp_path, warn=warnings.append)
    st.append_events("liquidations", "BTC", _liqs(np.arange(10)))
    st.append_events("liquidations", "BTC", _liqs(np.arange(10, 15), venue=3))
    st.append_events("liquidations", "ETH", _liqs(np.arange(3)))
    assert st.pending_rows == 18
    assert st.flush() == 1  # one file per table per flush, every asset in it
    assert st.pending_rows == 0 and st.flush() == 0
    df = Store(CFG, tmp_path).load("liquidations", "BTC")
    assert df.height == 15
    assert df["ts"].to_list() == sorted(df["ts"].to_list())
    assert set(df["venue"].unique().to_list()) == {"binance", "bitmex"}
    assert df.filter(pl.col("venue") == "bitmex").height == 5
    back = Store(CFG, tmp_path).load_events("liquidations", "BTC")
    np.testing.assert_array_equal(np.sort(back["ts"]), 1.7e9 + np.arange(15))
    assert set(back["venue"].tolist()) == {0, 3}
    assert not warnings


def test_since_until_filter(tmp_path):
    st = Store(CFG, tmp_path)
    st.append_events("liquidations", "BTC", _liqs(np.arange(100)))
    st.flush()
    df = st.load("liquidations", "BTC", since=1.7e9 + 10, until=1.7e9 + 20)
    assert df["ts"].to_list() == [1.7e9 + i for i in range(10, 20)]


def test_records_tables(tmp_path):
    st = Store(CFG, tmp_path)
    st.append_records("sweeps", "BTC", [{"ts": 5.0, "side": "buy", "usd": 1e6, "venues": ["binance", "okx"]}])
    st.append_records("walls", "BTC", [{"ts": 6.0, "side": "bid", "price": 65800.0, "status": "active"},
                                       {"ts": 9.0, "side": "bid", "price": 65800.0, "status": "pulled"}])
    st.flush()
    sw = st.load("sweeps")
    assert sw.height == 1 and sw["venues"][0] == "binance,okx" and sw["asset"][0] == "BTC"
    walls = st.load("walls", "BTC")
    assert walls["status"].to_list() == ["active", "pulled"]


def test_open_interest_table(tmp_path):
    st = Store(CFG, tmp_path)
    oi = ev.open_interest([(1.7e9, 1000.0, 6.6e7, 66000.0, 1), (1.7e9 + 60, 1010.0, 6.7e7, 66100.0, 1)])
    st.append_events("open_interest", "BTC", oi)
    st.flush()
    back = st.load_events("open_interest", "BTC")
    np.testing.assert_array_equal(back, oi)


def test_corrupt_parquet_is_set_aside_and_rest_loads(tmp_path):
    clock = _Clock(1.7e9)
    st = Store(CFG, tmp_path, clock=clock)
    for i in range(3):
        st.append_events("liquidations", "BTC", _liqs(np.arange(i * 10, i * 10 + 10)))
        st.flush()
        clock.t += 5
    files = sorted((tmp_path / "history" / "liquidations").glob("*.parquet"))
    assert len(files) == 3
    data = files[1].read_bytes()
    files[1].write_bytes(data[: len(data) // 2])  # truncated mid-file
    (files[0].parent / "9999999999999-0000.parquet").write_bytes(b"not parquet at all")  # foreign bytes
    warnings: list[str] = []
    df = Store(CFG, tmp_path, warn=warnings.append).load("liquidations", "BTC")
    assert sorted(df["ts"].to_list()) == [1.7e9 + i for i in list(range(10)) + list(range(20, 30))]
    assert len(warnings) == 2 and all("\n" not in w and "set aside" in w for w in warnings)
    assert files[1].with_name(files[1].name + ".corrupt").exists() and not files[1].exists()
    # The second start is quiet: the bad files are out of the way.
    warnings.clear()
    assert Store(CFG, tmp_path, warn=warnings.append).load("liquidations", "BTC").height == 20
    assert not warnings


def test_leftover_temp_file_is_removed(tmp_path):
    st = Store(CFG, tmp_path)
    st.append_events("liquidations", "BTC", _liqs(np.arange(5)))
    st.flush()
    d = tmp_path / "history" / "liquidations"
    stale = d / ".1700000000000-0000.parquet.tmp-12345"
    stale.write_bytes(b"PAR1 half written")
    assert st.load("liquidations", "BTC").height == 5
    assert not stale.exists()


def test_retention_deletes_old_partitions(tmp_path):
    clock = _Clock(1.7e9)
    st = Store({"store": {"flush_seconds": 5.0, "retention_days": 1.0}}, tmp_path, clock=clock)
    st.append_events("liquidations", "BTC", _liqs(np.arange(5)))
    st.flush()
    clock.t += 2 * 86400
    st.append_events("liquidations", "BTC", _liqs(np.arange(2 * 86400, 2 * 86400 + 5)))
    st.flush()
    assert st.retain() == 1
    df = st.load("liquidations", "BTC")
    assert df.height == 5 and df["ts"].min() >= 1.7e9 + 2 * 86400


def test_compaction_merges_and_survives_leftovers(tmp_path):
    clock = _Clock(1_700_006_400.0)  # 2023-11-15 00:00 UTC
    st = Store(CFG, tmp_path, clock=clock)
    for i in range(6):
        st.append_events("liquidations", "BTC", _liqs(np.arange(i * 4, i * 4 + 4)))
        st.flush()
        clock.t += 60
    d = tmp_path / "history" / "liquidations"
    keep = sorted(d.glob("*.parquet"))[0].read_bytes()
    clock.t += 7200
    assert st.compact() == 6
    names = [p.name for p in d.glob("*.parquet")]
    assert len(names) == 1 and names[0].startswith("c20231115-")
    # Simulate a crash after the compacted file was written but before a small file was deleted.
    (d / sorted([f"{int(1_700_006_400 * 1000):013d}-0000.parquet"])[0]).write_bytes(keep)
    df = Store(CFG, tmp_path).load("liquidations", "BTC")
    assert df.height == 24 and df["ts"].n_unique() == 24


def test_snapshot_save_load_and_corrupt_snapshot(tmp_path):
    v = np.zeros((30, 40), dtype=np.float32)
    v[3, 5] = 1e6
    grid = MapGrid(asset="BTC", mode="raw", timeframe="1m", step=25.0, row0=2600, col0=100, period=60, values=v,
                   trace=np.full(40, 66000.0), venues=("binance",))
    st = Store(CFG, tmp_path)
    p = st.save_snapshot(Snapshot(version=7, created=1.0, grid=grid, source="DEMO"))
    grid2 = MapGrid(**{**grid.__dict__, "asset": "ETH"})
    p2 = st.save_snapshot(Snapshot(version=8, created=1.0, grid=grid2))
    p2.write_bytes(p2.read_bytes()[:-20])
    warnings: list[str] = []
    snaps = Store(CFG, tmp_path, warn=warnings.append).load_snapshots()
    assert [s.grid.asset for s in snaps] == ["BTC"] and snaps[0].version == 7
    assert abs(float(snaps[0].grid.values[3, 5]) - 1e6) < 1
    assert len(warnings) == 1 and "truncated" in warnings[0] and p2.name in warnings[0]
    assert p.exists() and p2.with_name(p2.name + ".corrupt").exists()


_CHILD = textwrap.dedent(
    """
    import sys, numpy as np
    sys.path.insert(0, {root!r})
    from liqmap.core import events as ev
    from liqmap.core.store import Store
    st = Store({{"store": {{"flush_seconds": 0.0, "retention_days": 7.0}}}}, {data!r})
    batch = 4000
    i = 0
    while True:
        ids = np.arange(i, i + batch)
        rows = np.zeros(batch, dtype=ev.LIQ_DTYPE)
        rows["ts"] = 1.7e9 + ids; rows["price"] = 66000.0 + ids % 97; rows["qty"] = 0.5
        rows["usd"] = rows["price"] * 0.5; rows["side"] = 1; rows["venue"] = ids % 5
        st.append_events("liquidations", "BTC", rows)
        st.append_events("liquidations", "ETH", rows[:100])
        st.flush()
        i += batch
        print(i, flush=True)
    """
)


def test_kill_9_mid_flush_loses_nothing_flushed(tmp_path):
    """A real subprocess flushing in a loop is SIGKILLed at several moments; every reported flush reloads."""
    rng = np.random.default_rng(7)
    data = tmp_path / "data"
    reported = 0
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=str(ROOT), data=str(data))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The child restarts ids at 0 each round; flushed files from earlier rounds repeat those ids.
        try:
            n = 0
            target = 5 + round_ * 3
            for _ in range(target):
                line = proc.stdout.readline()
                assert line, proc.stderr.read()
                n = int(line)
            time.sleep(float(rng.uniform(0.0, 0.03)))  # land somewhere inside a later flush
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        reported = max(reported, n)
        warnings: list[str] = []
        st = Store(CFG, data, warn=warnings.append)
        df = st.load("liquidations", "BTC")
        ids = np.unique((df["ts"].to_numpy() - 1.7e9).round().astype(np.int64))
        assert not warnings, warnings
        assert not list(data.rglob("*.corrupt"))
        # Every id flushed before the kill is back, and what loaded is a whole number of flushes.
        assert len(ids) >= n and ids[0] == 0 and ids[-1] == len(ids) - 1
        assert len(ids) % 4000 == 0
        assert st.load("liquidations", "ETH").height > 0
    assert not list(data.rglob(".*.tmp-*"))  # leftovers from the killed writes were cleaned on load


def test_load_events_by_asset_in_one_pass(tmp_path):
    st = Store(CFG, tmp_path)
    st.append_events("liquidations", "BTC", _liqs(np.arange(10)))
    st.append_events("liquidations", "ETH", _liqs(np.arange(3), venue=4))
    st.flush()
    st.append_events("liquidations", "BTC", _liqs(np.arange(10, 12)))
    st.flush()
    got = st.load_events_by_asset("liquidations", since=1.7e9 + 1)
    assert set(got) == {"BTC", "ETH"}
    np.testing.assert_array_equal(got["BTC"]["ts"], 1.7e9 + np.arange(1, 12))
    assert (got["ETH"]["venue"] == 4).all() and len(got["ETH"]) == 2
