"""`liqmap collect` (headless engine on the demo market) and `liqmap export` round trips through polars."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from liqmap.cli import main as cli_main
from liqmap.commands.export import ExportError, parse_time
from liqmap.config import DEFAULTS
from liqmap.core import events as ev
from liqmap.core.snapshot import MapGrid, Snapshot
from liqmap.core.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_environ():
    """``cli.main`` pins the colour system in os.environ; keep that from leaking into other tests."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _seed_store(d: Path) -> np.ndarray:
    cfg = copy.deepcopy(DEFAULTS)
    st = Store(cfg, d)
    rng = np.random.default_rng(11)
    n = 300
    lq = np.zeros(n, dtype=ev.LIQ_DTYPE)
    lq["ts"] = 1.7e9 + np.arange(n) * 10.0
    lq["price"] = 66000 + rng.normal(0, 100, n)
    lq["qty"] = rng.uniform(0.01, 1, n)
    lq["usd"] = lq["price"] * lq["qty"]
    lq["side"] = rng.choice([1, -1], n)
    lq["venue"] = rng.integers(0, 5, n)
    st.append_events("liquidations", "BTC", lq[:150])
    st.flush()
    st.append_events("liquidations", "BTC", lq[150:])
    st.append_events("liquidations", "ETH", lq[:7])
    st.append_records("sweeps", "BTC", [{"ts": 1.7e9 + 5, "side": "buy", "usd": 2e6, "venue": "okx",
                                         "cross_venues": ["binance", "bybit"],
                                         "cleared_wall": {"price": 66100.0, "usd": 3.5e6, "side": -1}}])
    st.flush()
    v = np.zeros((40, 30), dtype=np.float32)
    v[10, 3], v[20, 29], v[0, 0] = 1.5e6, 2.5e4, 7.0
    grid = MapGrid(asset="BTC", mode="raw", timeframe="5m", step=25.0, row0=2620, col0=5_666_000, period=300,
                   values=v, trace=np.linspace(66000, 66300, 30), long=v * 0.25, short=v * 0.75,
                   venues=("binance", "okx"))
    st.save_snapshot(Snapshot(version=3, created=1.7e9, grid=grid, source="DEMO"))
    return lq


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson"])
def test_export_liquidations_round_trip(tmp_path, fmt, capsys):
    lq = _seed_store(tmp_path / "data")
    out = tmp_path / f"liqs.{fmt}"
    rc = cli_main(["export", str(out), "--what", "liquidations", "--asset", "BTC", "--format", fmt,
                   "--data-dir", str(tmp_path / "data")])
    assert rc == 0, capsys.readouterr().err
    df = {"parquet": pl.read_parquet, "csv": pl.read_csv, "ndjson": pl.read_ndjson}[fmt](out)
    assert df.height == 300 and set(df["asset"].unique()) == {"BTC"}
    np.testing.assert_allclose(df["ts"].to_numpy(), lq["ts"])
    np.testing.assert_allclose(df["usd"].to_numpy(), lq["usd"], rtol=1e-12)
    assert df["side"].to_list() == [{1: "long", -1: "short"}[int(x)] for x in lq["side"]]  # words, not codes
    assert set(df["price_kind"].unique()) == {"fill"}
    assert df["venue"].to_list() == [ev.VENUES[v] for v in lq["venue"]]
    assert "wrote 300 liquidations rows" in capsys.readouterr().err


def test_export_time_range_and_all_assets(tmp_path):
    _seed_store(tmp_path / "data")
    out = tmp_path / "x.parquet"
    assert cli_main(["export", str(out), "--what", "liquidations", "--since", "1700000100",
                     "--until", "2023-11-14T22:38:20Z", "--data-dir", str(tmp_path / "data")]) == 0
    df = pl.read_parquet(out)
    # 22:38:20Z is 1.7e9 + 1500 s: BTC rows 10..149 and ETH has none at/after +100
    assert df["ts"].min() >= 1.7e9 + 100 and df["ts"].max() < 1.7e9 + 1500
    assert df.height == 140
    assert cli_main(["export", str(out), "--what", "liquidations", "--data-dir", str(tmp_path / "data")]) == 0
    assert pl.read_parquet(out).height == 307  # every asset without --asset


def test_export_sweeps_csv_flattens_lists(tmp_path):
    _seed_store(tmp_path / "data")
    out = tmp_path / "sweeps.csv"
    assert cli_main(["export", str(out), "--what", "sweeps", "--format", "csv",
                     "--data-dir", str(tmp_path / "data")]) == 0
    df = pl.read_csv(out)
    assert df["cross_venues"][0] == "binance,bybit" and df["usd"][0] == 2e6
    # a nested record is flat columns, never Python's dict text
    assert df["cleared_wall_price"][0] == 66100.0 and df["cleared_wall_usd"][0] == 3.5e6
    assert "cleared_wall" not in df.columns and not any("{" in str(v) for v in df.row(0))


def test_export_grid_round_trip(tmp_path):
    _seed_store(tmp_path / "data")
    out = tmp_path / "grid.parquet"
    assert cli_main(["export", str(out), "--what", "grid", "--asset", "BTC", "--mode", "raw", "--timeframe",
                     "5m", "--data-dir", str(tmp_path / "data")]) == 0
    df = pl.read_parquet(out)
    assert df.height == 3
    # Pivot the long table back into the grid and compare cell by cell (within the codec's quantization).
    grid = np.zeros((40, 30))
    r = ((df["price"].to_numpy() / 25.0).round().astype(int) - 2620)
    c = ((df["ts"].to_numpy() / 300).round().astype(int) - 5_666_000)
    grid[r, c] = df["value"].to_numpy()
    expect = np.zeros((40, 30))
    expect[10, 3], expect[20, 29], expect[0, 0] = 1.5e6, 2.5e4, 7.0
    np.testing.assert_allclose(grid, expect, rtol=0.0101)  # the snapshot codec keeps 1 % precision
    np.testing.assert_allclose(df["long"].to_numpy() + df["short"].to_numpy(), df["value"].to_numpy(), rtol=0.0101)
    assert set(df["venues"]) == {"binance,okx"} and df["trace"].null_count() == 0


def test_export_nothing_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "none.parquet"
    assert cli_main(["export", str(out), "--what", "walls", "--data-dir", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("liqmap: export: no walls stored") and "\n" not in err and not out.exists()
    assert cli_main(["export", str(out), "--what", "grid", "--asset", "SOL",
                     "--data-dir", str(tmp_path / "empty")]) == 1
    assert "no hybrid 1m snapshot for SOL" in capsys.readouterr().err
    assert cli_main(["export", str(out), "--since", "yesterday", "--data-dir", str(tmp_path)]) == 1
    assert "--since: 'yesterday'" in capsys.readouterr().err


def test_parse_time():
    assert parse_time("1700000000", "since") == 1.7e9
    assert parse_time("1700000000000", "since") == 1.7e9  # milliseconds
    assert parse_time("2023-11-14T22:13:20Z", "since") == 1.7e9
    assert parse_time("2023-11-14T22:13:20", "since") == 1.7e9  # naive = UTC
    assert parse_time(None, "since") is None
    with pytest.raises(ExportError):
        parse_time("soon", "until")


def _collect(tmp_path, *extra, duration="6"):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    return subprocess.Popen(
        [sys.executable, "-m", "liqmap", "collect", "--demo", "--assets", "BTC,ETH", "--seed", "3",
         "--status-every", "1", "--data-dir", str(tmp_path / "data"), *(["--duration", duration] if duration else []),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))


def test_collect_demo_headless_sigterm_persist_restore(tmp_path):
    """A real `liqmap collect --demo`: status lines on stderr, SIGTERM stops it cleanly with history and
    snapshots on disk that export reads; a second run restores the snapshots and stops after --duration."""
    p = _collect(tmp_path, duration=None)
    lines = []
    deadline = time.time() + 60
    while time.time() < deadline:  # wait for three status lines: the engine is running
        line = p.stderr.readline()
        assert line, "".join(lines)
        lines.append(line)
        if sum(1 for ln in lines if ln.startswith("collect DEMO")) >= 3:
            break
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, "".join(lines) + err
    assert "collect: stopped" in err
    status = [ln for ln in "".join(lines).splitlines() + err.splitlines() if ln.startswith("collect DEMO")]
    assert "events" in status[-1] and "views" in status[-1]
    assert int(status[-1].split("·")[1].split()[0].replace(",", "")) > 0
    data = tmp_path / "data"
    snaps = sorted(p.name for p in (data / "snapshots").glob("*.lqs"))
    assert "BTC_hybrid_1m_binance+bybit+okx+deribit+hyperliquid.lqs" in snaps
    # two assets × five timeframes in the default mode, and the screen asset's three other modes × five
    assert len(snaps) == 2 * 5 + 3 * 5
    st = Store({}, data)
    assert st.load("open_interest", "BTC").height > 0
    assert not list(data.rglob("*.corrupt"))
    out_file = tmp_path / "g.parquet"
    assert cli_main(["export", str(out_file), "--what", "grid", "--asset", "BTC", "--data-dir", str(data)]) == 0
    assert pl.read_parquet(out_file)["trace"].drop_nans().len() > 0
    # A second run restores those snapshots at start and stops by itself.
    p2 = _collect(tmp_path, duration="1")
    _, err2 = p2.communicate(timeout=90)
    assert p2.returncode == 0 and "restored 25 snapshots" in err2, err2
