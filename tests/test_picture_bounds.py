"""Issue 20 items 1 and 7: the demo's heat modes show peaks, not the bulk, and the NEXT 1H clusters are bright.

Renders ``liqmap --demo`` (seed 1) in Pilot at 200×60 for BTC, ETH and PENDLE (a small asset) in Synthetic,
Synthetic Heatmap and Hybrid after the pre-roll, reads the ramp levels the widgets drew, and asserts
``ramp_top_share`` ≤ 0.10, ``ramp_contrast`` ≥ 4, the median heat cell in the lower half of the ramp, a window
full of data, and every on-screen NEXT 1H cluster drawn in the top quarter of the ramp (the live column's NEXT 1H
strip or the newest columns). The rendering lives in ``benchmarks/picture_check.py``, which prints the whole
picture when run by hand.
"""

from __future__ import annotations

from benchmarks.picture_check import render_problems


def test_demo_heat_modes_show_peaks_and_bright_next_hour_clusters():
    problems = render_problems()
    assert not problems, problems
