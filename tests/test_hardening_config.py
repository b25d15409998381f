"""Every setting validated (issue 18 item 3): out-of-range, NaN and inf values in a config file, the
environment or a flag give one line naming the file/variable/flag and the key, and exit 2 — before anything
runs, so nothing is deleted or spun on a bad value."""

from __future__ import annotations

import numpy as np
import pytest

from liqmap.cli import main as cli_main
from liqmap.core.events import LIQ_DTYPE
from liqmap.core.store import Store

# (section, key, TOML value) — each was accepted before the range table (issue 18 finding 4).
BAD_FILE_VALUES = [
    ("store", "retention_days", "-1"),
    ("store", "retention_days", "0"),
    ("store", "retention_days", "nan"),
    ("store", "flush_seconds", "0"),
    ("store", "flush_seconds", "-5"),
    ("store", "flush_seconds", "inf"),
    ("store", "compact_after_seconds", "-1"),
    ("store", "oi_every_seconds", "-1"),
    ("store", "max_pending_rows", "0"),
    ("app", "hz", "0"),
    ("app", "hz", "nan"),
    ("app", "hz", "1e9"),
    ("buckets", "target_bp", "inf"),
    ("model", "half_life_hours", "nan"),
    ("model", "taker_alpha", "-0.5"),
    ("model", "cap_rel", "0"),
    ("model", "range_pct", "1000"),
    ("model", "max_buckets", "0"),
    ("model", "max_buckets", "-3"),
    ("model", "heatmap_clip_pct", "150"),
    ("model", "leverage_tiers", "[5.0, 10.0, nan, 50.0, 100.0]"),
    ("model", "leverage_tiers", "[5.0, 10.0, 1e9, 50.0, 100.0]"),
    ("model", "forecast_horizon_hours", "0"),
    ("model", "prior_weight", "2"),
    ("engine", "columns", "0"),
    ("engine", "workers", "0"),
    ("engine", "fast_hz", "0"),
    ("engine", "max_queue", "-1"),
    ("engine", "ring_capacity_trade", "-1"),
    ("engine", "ring_capacity_liq", "0"),
    ("feeds", "stale_seconds", "-1"),
    ("feeds", "watchdog_seconds", "0"),
    ("feeds", "retries", "-1"),
    ("feeds", "batch_ms", "0"),
    ("feeds", "backfill_hours", "-6"),
    ("feeds", "oi_poll_seconds", "0"),
    ("feeds", "dedup_size", "-1"),
    ("feeds", "close_timeout_seconds", "0"),
    ("demo", "speed", "0"),
    ("demo", "speed", "nan"),
    ("demo", "tick_ms", "0"),
    ("demo", "book_levels", "0"),
    ("demo", "whale_share", "1.5"),
    ("demo", "preroll_minutes", "-1"),
    ("demo", "seed", "-1"),
    ("recording", "flush_seconds", "0"),
    ("replay", "tick_seconds", "0"),
    ("replay", "report_book_levels", "-1"),
    ("doctor", "connect_timeout_seconds", "0"),
]


@pytest.mark.parametrize("section,key,value", BAD_FILE_VALUES, ids=[f"{s}.{k}={v}" for s, k, v in BAD_FILE_VALUES])
def test_bad_config_value_is_one_line_exit_2(tmp_path, capsys, section, key, value):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[{section}]\n{key} = {value}\n")
    assert cli_main(["doctor", "--config", str(cfg), "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert str(cfg) in err[0] and f"{section}.{key}" in err[0]


def test_bad_endpoint_and_table_values(tmp_path, capsys):
    for body, needle in [
        ('[feeds.endpoints]\nokx_ws = "file:///etc/passwd"\n', "feeds.endpoints.okx_ws"),
        ('[feeds.watchdog_by_kind]\nliq = -5.0\n', "feeds.watchdog_by_kind"),
        ('[reports.walls.min_usd_by_asset]\nBTC = nan\n', "min_usd_by_asset"),
        ('[universe]\nvenues = ["okx", "okx"]\n', "universe.venues"),
    ]:
        cfg = tmp_path / "c.toml"
        cfg.write_text(body)
        assert cli_main(["doctor", "--config", str(cfg)]) == 2, body
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], (body, err)


@pytest.mark.parametrize("argv,needle", [
    (["--demo", "--speed", "nan"], "--speed nan"),
    (["--demo", "--speed", "inf"], "--speed inf"),
    (["--demo", "--speed", "-1"], "--speed -1"),
    (["--demo", "--speed", "0"], "--speed 0"),
    (["--demo", "--hz", "0"], "--hz 0"),
    (["--demo", "--hz", "nan"], "--hz nan"),
    (["--demo", "--hz", "1e6"], "--hz 1e+06"),
    (["collect", "--demo", "--duration", "nan"], "--duration nan"),
    (["collect", "--demo", "--duration", "-5"], "--duration -5"),
    (["collect", "--demo", "--status-every", "0"], "--status-every 0"),
    (["record", "x.gz", "--demo", "--duration", "inf"], "--duration inf"),
    (["doctor", "--seconds", "nan"], "--seconds nan"),
    (["--demo", "--seed", "-1"], "--seed -1"),
])
def test_bad_flag_is_one_line_exit_2(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert cli_main([*argv, "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "x.gz").exists()


def test_bad_environment_value_names_the_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LIQMAP_STORE__RETENTION_DAYS", "-1")
    assert cli_main(["doctor", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "LIQMAP_STORE__RETENTION_DAYS" in err and "store.retention_days" in err


def test_negative_retention_never_deletes_history(tmp_path, capsys):
    """The finding: retention_days = -1 deleted all 7 files. Now the config is refused (exit 2) and a Store
    given such a value directly refuses to apply it."""
    st = Store({}, tmp_path)
    rows = np.zeros(3, dtype=LIQ_DTYPE)
    rows["ts"] = 1.7e9
    for _ in range(7):
        st.append_events("liquidations", "BTC", rows)
        st.flush()
    before = sorted(p.name for p in (tmp_path / "history" / "liquidations").iterdir())
    assert len(before) == 7
    cfg = tmp_path / "c.toml"
    cfg.write_text("[store]\nretention_days = -1\n")
    assert cli_main(["collect", "--demo", "--duration", "1", "--config", str(cfg), "--data-dir", str(tmp_path)]) == 2
    warned: list[str] = []
    bad = Store({"store": {"retention_days": -1.0}}, tmp_path, warn=warned.append)
    assert bad.retain() == 0 and warned
    assert sorted(p.name for p in (tmp_path / "history" / "liquidations").iterdir()) == before
