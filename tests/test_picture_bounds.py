"""Issue 20 item 7: the picture a trader glances at must not regress to a wash.

The demo (seed 1, dark theme, 200×60, after the pre-roll) rendered in Pilot for BTC, ETH and a small asset in
Synthetic, Synthetic Heatmap and Hybrid: in each, the share of heat cells at the top of the ramp ≤ 0.10, the top
level at least 4 above the median heat cell, the median in the lower half of the ramp, the window's oldest
columns holding a traded price, NEXT 1H clusters listed. The rendering and the bounds are
``benchmarks/picture_check.py``'s, which also checks the clusters' brightness (not met yet: docs/model.md §5).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _picture_check():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "picture_check.py"
    spec = importlib.util.spec_from_file_location("picture_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_demo_map_shows_peaks_not_a_wash_in_every_heat_mode():
    problems = _picture_check().render_problems(clusters_bright=False)
    assert not problems, problems
