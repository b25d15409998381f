"""The reports panel's NEXT 1H section: the forecast clusters laid out for the panel's width."""

from __future__ import annotations

from liqmap.ui.reports_table import build_rows

FORECAST = {
    "horizon_hours": 1.0, "sigma_hour": 0.0145, "tails": "t3", "price": 63_937.0,
    "clusters": [
        {"side": "short", "price_lo": 64_175.0, "price_hi": 64_475.0, "price": 64_320.0, "distance_pct": 0.599,
         "at_risk_usd": 2_200_000.0, "expected_usd": 1_474_000.0, "reach": 0.67},
        {"side": "long", "price_lo": 63_000.0, "price_hi": 63_025.0, "price": 63_012.5, "distance_pct": -1.446,
         "at_risk_usd": 1_050_000.0, "expected_usd": 262_500.0, "reach": 0.25},
    ],
}


def _section(rows):
    i = next(k for k, r in enumerate(rows) if r.section == "forecast")
    return [r for r in rows[i:] if r.section == "forecast"]


def test_forecast_rows_in_a_wide_panel():
    rows = _section(build_rows({"forecast": FORECAST}, 25.0, width=60))
    assert rows[0].text == "NEXT 1H (2)" and rows[0].kind == "header"
    assert rows[1].text == " at risk × reach · vol 1.45%/h" and rows[1].kind == "info"
    assert rows[2].text == " ▲ shorts 64,175–64,475 +0.60% $2.2M 67% ≈$1.5M"
    assert rows[3].text == " ▼ longs         63,012 −1.45% $1.1M 25% ≈$262k"
    assert all(r.kind == "rec" and r.record is not None for r in rows[2:])


def test_forecast_rows_shrink_to_a_narrow_panel_without_cutting_essentials():
    rows = _section(build_rows({"forecast": FORECAST}, 25.0, width=30))
    recs = [r.text for r in rows if r.kind == "rec"]
    assert recs == [" ▲ S 64,320 +0.60% $2.2M 67%", " ▼ L 63,012 −1.45% $1.1M 25%"]
    assert all(len(t) <= 30 for t in recs)


def test_no_forecast_yet_and_other_horizons():
    rows = _section(build_rows({}, 25.0, width=60))
    assert [r.text for r in rows] == ["NEXT 1H (0)", "  none yet"]
    rows = _section(build_rows({"forecast": {**FORECAST, "horizon_hours": 0.5, "clusters": []}}, 25.0, width=60))
    assert rows[0].text == "NEXT 30M (0)"


def test_a_cluster_says_how_much_of_it_is_positions_held_for_days():
    """``resting_usd`` (the resting layer, docs/model.md §3 step 13): sized by the public OI, never seen open, so
    the panel says so when it is a tenth or more of the cluster's USD at risk; the narrow panel drops it first."""
    held = {**FORECAST, "clusters": [{**FORECAST["clusters"][0], "at_risk_usd": 1.1e9, "resting_usd": 1.0e9},
                                     {**FORECAST["clusters"][1], "resting_usd": 50_000.0}]}
    rows = _section(build_rows({"forecast": held}, 25.0, width=70))
    assert rows[2].text == " ▲ shorts 64,175–64,475 +0.60% $1.1B 91% held days 67% ≈$1.5M"
    assert rows[3].text == " ▼ longs         63,012 −1.45% $1.1M               25% ≈$262k"  # 5 %: not said
    narrow = [r.text for r in _section(build_rows({"forecast": held}, 25.0, width=30)) if r.kind == "rec"]
    assert narrow == [" ▲ S 64,320 +0.60% $1.1B 67%", " ▼ L 63,012 −1.45% $1.1M 25%"]
