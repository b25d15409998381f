"""The core's typed parameters (liqmap/core/params.py): config builds them, the defaults live once."""

from __future__ import annotations

import dataclasses

import pytest

from liqmap import config
from liqmap.core.engine import Engine
from liqmap.core.market import Market
from liqmap.core.params import CoreParams, ModelParams, core_params, section_defaults
from liqmap.core.reports import Reports
from liqmap.core.reports.defaults import REPORT_DEFAULTS


def test_config_builds_frozen_typed_params_from_the_settings_it_loaded(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("[model]\nhalf_life_hours = 12\nleverage_tiers = [5, 10]\nleverage_weights = [0.5, 0.5]\n"
                 "[engine]\ncolumns = 120\n[reports.walls]\nmin_usd = 1.0\n", encoding="utf-8")
    cp = config.core_params(config.load(p, environ={}))
    assert cp.model.half_life_hours == 12.0 and cp.model.leverage_tiers == (5.0, 10.0)
    assert cp.engine.columns == 120 and cp.reports.walls["min_usd"] == 1.0
    assert cp.reports.walls["k_median"] == REPORT_DEFAULTS["walls"]["k_median"]  # the rest from the defaults
    with pytest.raises(dataclasses.FrozenInstanceError):
        cp.engine.columns = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cp.reports.walls["min_usd"] = 2.0  # type: ignore[index]
    # the core takes them as they are, and reads them (no settings dict behind them)
    eng = Engine(cp, Market(["BTC"]))
    assert eng.core is cp and eng.columns == 120
    assert Reports("BTC", cp.reports).cfg is cp.reports


def test_the_settings_defaults_are_the_parameter_classes_defaults():
    d = config.DEFAULTS
    assert d["model"] == section_defaults(ModelParams) and d["reports"] == REPORT_DEFAULTS
    assert core_params(d) == CoreParams()  # nothing restated anywhere else: the same values both ways


def test_a_setting_the_core_does_not_know_is_refused_not_dropped():
    with pytest.raises(ValueError, match="ModelParams has no parameter nope"):
        core_params({"model": {"nope": 1.0}})
