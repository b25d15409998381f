"""Refit the chance-of-reach calibration map (``liqmap.core.calibration.DEMO_MAP``) on the clusters as they are
listed now — re-run it whenever the reach or the cluster choice changes (issue 17 item 2).

The NEXT 1H panel prints each cluster's chance of reach through a monotone map fitted on what happened on the
demo (``calibration.fit``). The map is only right for the clusters it was fitted on: when the model changes
which clusters are listed (the drift-aware reach did), the map must be fitted again. This script:

1. scores the demo's steady-market recordings (``LIQMAP_BENCH_FORECAST_CACHE``, the ``forecast_skill``
   recordings; a seed not recorded there is skipped and named, never recorded here) through the benchmark's own
   path (``benchmarks/bench_forecast.py``: ``_score_seed`` with the calibration checkpoints on), collecting per
   NEXT 1H cluster (the walk's raw chance, reached within the hour?);
2. chooses the fit's number of bins on the FIT seeds only (default 1-10), by leave-one-seed-out: each seed
   judged by the map fitted on the other nine, the bins whose worst pooled decile gap is smallest;
3. fits the map on all FIT seeds with those bins and judges it — and the map now in the code — on each CHECK
   group (default 11-20 and 21-30, never used to fit or choose): reliability table per decile, the largest gap
   over deciles with at least 20 clusters (``calibration.MIN_ROW_N``), the Brier score;
4. with ``--write``, replaces ``DEMO_MAP`` in ``liqmap/core/calibration.py`` by the new knots.

Usage::

    LIQMAP_BENCH_FORECAST_CACHE=/work/fc-cache python tools/fit_reach_calibration.py [--fit 1-10]
        [--check 11-20,21-30] [--write] [--json OUT]

Model parameters over the defaults: ``LIQMAP_BENCH_FORECAST_MODEL`` (JSON), as for the benchmarks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAL_FILE = ROOT / "liqmap" / "core" / "calibration.py"
BINS = (10, 8, 6, 5)  # candidates for the fit's bins (10 = deciles, the reliability table's own)


def _bench():
    """benchmarks/bench_forecast.py as a module (it is not a package), with its calibration checkpoints on."""
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("bench_forecast", ROOT / "benchmarks" / "bench_forecast.py")
    bf = importlib.util.module_from_spec(spec)
    sys.modules["bench_forecast"] = bf
    spec.loader.exec_module(bf)
    bf.CALIBRATE = True  # forked seed workers inherit it
    return bf


def _seeds(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return tuple(out)


def collect(bf, seeds: tuple[int, ...]) -> tuple[dict[int, list], list[int]]:
    """{seed: [(raw chance, reached), ...]} for the recorded seeds, and the seeds not recorded (skipped)."""
    have = [s for s in seeds if (p := bf._cache_path(s, bf.HOURS, "steady")) and os.path.exists(p)]
    runs = bf._run_seeds(tuple((s, "steady") for s in have)) if have else []
    return {r["seed"]: r["calib"]["clusters"] for r in runs}, [s for s in seeds if s not in have]


def choose_bins(cal, per_seed: dict[int, list]) -> tuple[int, dict[int, float]]:
    """The bins whose leave-one-seed-out map is best calibrated on the fit seeds (worst decile gap, pooled)."""
    scores = {}
    for bins in BINS:
        judged = []
        for s in per_seed:
            rest = [x for t, xs in per_seed.items() if t != s for x in xs]
            m = cal.fit(rest, bins=bins)
            judged.extend((float(m(p)), h) for p, h in per_seed[s])
        scores[bins] = cal.reliability(judged)["max_gap_points"]
    best = min(scores, key=lambda b: (scores[b] if scores[b] is not None else 1e9, -b))
    return best, scores


def write_map(knots) -> None:
    """Replace the tuple assigned to DEMO_MAP in liqmap/core/calibration.py (its comment above stays)."""
    text = CAL_FILE.read_text()
    body = "".join(f"    ({x!r}, {y!r}),\n" for x, y in knots)
    new, n = re.subn(r"DEMO_MAP: tuple\[tuple\[float, float\], \.\.\.\] = \(\n.*?\n\)\n",
                     "DEMO_MAP: tuple[tuple[float, float], ...] = (\n" + body + ")\n", text, count=1, flags=re.S)
    if n != 1:
        raise SystemExit(f"{CAL_FILE}: no DEMO_MAP tuple found to replace")
    CAL_FILE.write_text(new)


def _rows(table: dict) -> str:
    return "; ".join(f"{r['predicted']:.2f}→{r['observed']:.2f} ({r['n']})" for r in table["rows"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fit", default="1-10", help="seeds the map is fitted (and its bins chosen) on")
    ap.add_argument("--check", default="11-20,21-30", help="seed groups it is judged on, comma-separated ranges")
    ap.add_argument("--write", action="store_true", help="write the fitted knots into calibration.DEMO_MAP")
    ap.add_argument("--json", help="write the report (and every group's (raw, reached) pairs) here")
    args = ap.parse_args(argv)
    if not os.environ.get("LIQMAP_BENCH_FORECAST_CACHE"):
        raise SystemExit("fit_reach_calibration: set LIQMAP_BENCH_FORECAST_CACHE to the demo recordings' directory")
    t0 = time.perf_counter()
    bf = _bench()
    from liqmap.core import calibration as cal

    groups = {"fit": _seeds(args.fit)}
    for g in args.check.split(","):
        if g.strip():
            groups[g.strip()] = _seeds(g)
    pairs, missing = {}, {}
    for name, seeds in groups.items():
        pairs[name], missing[name] = collect(bf, seeds)
    fit_pairs = pairs["fit"]
    if not fit_pairs:
        raise SystemExit("fit_reach_calibration: none of the fit seeds is recorded in the cache")
    bins, loo = choose_bins(cal, fit_pairs)
    new = cal.fit([x for xs in fit_pairs.values() for x in xs], bins=bins)
    report = {"fit_seeds": sorted(fit_pairs), "bins": bins, "leave_one_seed_out_gap": loo,
              "knots": [list(k) for k in new.knots], "current_knots": [list(k) for k in cal.DEMO.knots],
              "model_params": bf.MODEL_PARAMS or None, "groups": {}}
    print(f"fit on seeds {sorted(fit_pairs)} (missing: {missing['fit'] or 'none'}); bins by leave-one-seed-out "
          f"worst gap {loo} -> {bins}")
    print("knots:", ", ".join(f"({x:g}, {y:g})" for x, y in new.knots))
    for name, per in pairs.items():
        flat = [x for xs in per.values() for x in xs]
        if not flat:
            print(f"{name}: no recorded seeds (missing {missing[name]})")
            continue
        g = {"seeds": sorted(per), "missing": missing[name], "raw": cal.reliability(flat),
             "current_map": cal.reliability([(float(cal.DEMO(p)), h) for p, h in flat]),
             "refit": cal.reliability([(float(new(p)), h) for p, h in flat])}
        report["groups"][name] = g
        for k in ("raw", "current_map", "refit"):
            t = g[k]
            print(f"{name:>6} {k:>11}: gap {t['max_gap_points']} Brier {t['brier']} n={t['n']} | {_rows(t)}")
    if args.write:
        write_map(new.knots)
        print(f"wrote {len(new.knots)} knots into {CAL_FILE.relative_to(ROOT)}")
    report["run_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        report["pairs"] = {n: {s: xs for s, xs in per.items()} for n, per in pairs.items()}
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
