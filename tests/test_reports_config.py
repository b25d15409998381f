"""The ``reports`` settings: every parameter in DEFAULTS, per-asset floor tables merged from a config file."""

from __future__ import annotations

import pytest

from liqmap import config
from liqmap.core.reports import Reports
from liqmap.core.reports._common import floor_usd, params


def test_defaults_cover_every_report():
    rep = config.DEFAULTS["reports"]
    assert set(rep) == {"walls", "asymmetry", "sweeps", "absorptions", "convergence", "verdict"}
    w = rep["walls"]
    assert (w["k_median"], w["pull_drop"], w["traded_share"], w["min_seen_share"]) == (5.0, 0.7, 0.3, 0.8)
    assert w["min_usd_by_asset"] == {"BTC": 1e6, "ETH": 5e5} and w["min_usd"] == 5e4  # Coinglass floors
    assert rep["asymmetry"]["ranges_pct"] == [0.5, 1.0, 2.0]
    assert rep["sweeps"]["cluster_window_s"] == 60.0 and rep["sweeps"]["cluster_buckets"] == 2
    assert rep["sweeps"]["cross_venue_ms"] == 200.0 and rep["sweeps"]["stats_window_s"] == 1800.0
    assert rep["absorptions"]["refill_ratio"] == 1.5
    c = rep["convergence"]
    assert (c["buckets"], c["window_s"], c["min_components"], c["synthetic_pct"]) == (2, 900.0, 3, 90.0)


def test_per_asset_floors_merge_from_file(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("[reports.walls]\nk_median = 4\n[reports.walls.min_usd_by_asset]\nsol = 200000\nBTC = 2e6\n"
                 "[reports.sweeps.min_usd_by_asset]\nDOGE = 30000\n")
    cfg = config.load(p, environ={})
    w = cfg["reports"]["walls"]
    assert w["k_median"] == 4.0
    assert w["min_usd_by_asset"] == {"BTC": 2e6, "ETH": 5e5, "SOL": 2e5}  # merged over the defaults
    assert floor_usd(params(cfg, "walls"), "sol") == 2e5
    assert floor_usd(params(cfg, "walls"), "XRP") == 5e4
    assert floor_usd(params(cfg, "sweeps"), "DOGE") == 3e4
    rep = Reports("SOL", cfg)
    assert rep.walls.floor == 2e5 and rep.tick == 0.01  # the tick comes from the asset universe


@pytest.mark.parametrize("body, needle", [
    ("[reports.walls.min_usd_by_asset]\nSOL = \"big\"\n", "reports.walls.min_usd_by_asset"),
    ("[reports.walls]\nmin_usd_by_asset = 3\n", "reports.walls.min_usd_by_asset"),
    ("[reports.walls]\nk_median = \"five\"\n", "reports.walls.k_median"),
    ("[reports.sweeps]\nnot_a_key = 1\n", "reports.sweeps.not_a_key"),
])
def test_bad_report_settings_name_the_key(tmp_path, body, needle):
    p = tmp_path / "config.toml"
    p.write_text(body)
    with pytest.raises(config.ConfigError) as e:
        config.load(p, environ={})
    assert needle in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize("section, key, value", [
    ("walls", "pull_drop", 1.5), ("walls", "k_median", 0.5), ("sweeps", "min_levels", 0),
    ("convergence", "min_components", 5), ("absorptions", "window_s", 0.0), ("convergence", "weights", [1.0, 1.0]),
])
def test_out_of_range_values_are_refused(section, key, value):
    from liqmap.core.reports import check_params
    with pytest.raises(ValueError, match=f"reports.{section}.{key}"):
        Reports("BTC", {"reports": {section: {key: value}}})
    check_params(None)  # the defaults themselves pass
