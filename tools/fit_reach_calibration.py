"""Refit the chance-of-reach calibration map (``liqmap.core.calibration.DEMO_MAP``) on the clusters as they are
listed now — re-run it whenever the reach or the cluster choice changes (issue 17 item 2).

The NEXT 1H panel prints each cluster's chance of reach through a monotone map fitted on what happened on the
demo (``calibration.fit``). The map is only right for the clusters it was fitted on: when the model changes
which clusters are listed (the drift-aware reach did), the map must be fitted again. This script:

1. scores the demo's steady-market recordings (``LIQMAP_BENCH_FORECAST_CACHE``, the ``forecast_skill``
   recordings; a seed not recorded there is skipped and named, never recorded here) through the benchmark's own
   path (``benchmarks/bench_forecast.py``: ``_score_seed`` with the calibration checkpoints on), collecting per
   NEXT 1H cluster (the walk's raw chance, reached within the hour?);
2. chooses the fit on the FIT seeds only (default 1-10; isotonic over 10, 8, 6 or 5 bins, or logistic on
   logit(raw)), by leave-one-seed-out: each seed judged by the map fitted on the other nine, the candidate whose
   worst pooled decile gap is smallest;
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
# Candidate fits: isotonic over this many bins of the raw chance (10 = deciles, the reliability table's own), or
# "logistic" — two parameters on logit(raw) (Platt scaling): smoother, less swayed by a few seeds' runs.
CANDIDATES = (10, 8, 6, 5, "logistic")
LOGISTIC_GRID = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)


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


def fit_logistic(cal, pairs):
    """P(reached) = 1 / (1 + exp(−(a·logit(raw) + b))), a and b by maximum likelihood (Newton), as knots of a
    piecewise-linear map on ``LOGISTIC_GRID`` between (0, 0) and (1, 1) (a > 0 keeps it monotone)."""
    import numpy as np

    p = np.clip(np.array([float(x[0]) for x in pairs]), 1e-4, 1 - 1e-4)
    y = np.array([float(bool(x[1])) for x in pairs])
    x = np.log(p / (1 - p))
    w = np.array([1.0, 0.0])
    for _ in range(50):
        q = 1 / (1 + np.exp(-(w[0] * x + w[1])))
        g = np.array([((q - y) * x).sum(), (q - y).sum()])
        v = q * (1 - q)
        h = np.array([[(v * x * x).sum(), (v * x).sum()], [(v * x).sum(), v.sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        w -= step
        if abs(step).max() < 1e-10:
            break
    a, b = max(float(w[0]), 1e-3), float(w[1])
    grid = np.array(LOGISTIC_GRID)
    ys = 1 / (1 + np.exp(-(a * np.log(grid / (1 - grid)) + b)))
    return cal.CalibrationMap(((0.0, 0.0), *((float(g), round(float(v), 3)) for g, v in zip(grid, ys)), (1.0, 1.0)))


def fit_with(cal, pairs, how):
    return fit_logistic(cal, pairs) if how == "logistic" else cal.fit(pairs, bins=how)


def choose_bins(cal, per_seed: dict[int, list]) -> tuple:
    """The candidate fit whose leave-one-seed-out map is best calibrated on the fit seeds (each seed judged by the
    map fitted on the others; the worst decile gap of those judgements pooled, Brier to break ties)."""
    scores = {}
    for how in CANDIDATES:
        judged = []
        for s in per_seed:
            rest = [x for t, xs in per_seed.items() if t != s for x in xs]
            m = fit_with(cal, rest, how)
            judged.extend((float(m(p)), h) for p, h in per_seed[s])
        t = cal.reliability(judged)
        scores[how] = (t["max_gap_points"], t["brier"])
    best = min(scores, key=lambda b: (scores[b][0] if scores[b][0] is not None else 1e9, scores[b][1]))
    return best, {str(k): v for k, v in scores.items()}


def write_map(knots, path: Path = CAL_FILE) -> None:
    """Replace the tuple assigned to DEMO_MAP in liqmap/core/calibration.py (its comment above stays)."""
    text = path.read_text()
    body = "".join(f"    ({x!r}, {y!r}),\n" for x, y in knots)
    new, n = re.subn(r"DEMO_MAP: tuple\[tuple\[float, float\], \.\.\.\] = \(\n.*?\n\)\n",
                     "DEMO_MAP: tuple[tuple[float, float], ...] = (\n" + body + ")\n", text, count=1, flags=re.S)
    if n != 1:
        raise SystemExit(f"{path}: no DEMO_MAP tuple found to replace")
    path.write_text(new)


def _rows(table: dict) -> str:
    return "; ".join(f"{r['predicted']:.2f}→{r['observed']:.2f} ({r['n']})" for r in table["rows"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fit", default="1-10", help="seeds the map is fitted (and its bins chosen) on")
    ap.add_argument("--check", default="11-20,21-30", help="seed groups it is judged on, comma-separated ranges")
    ap.add_argument("--write", action="store_true", help="write the fitted knots into calibration.DEMO_MAP")
    ap.add_argument("--json", help="write the report (and every group's (raw, reached) pairs) here")
    ap.add_argument("--pairs", help="re-use the pairs of an earlier --json report instead of scoring (same model)")
    args = ap.parse_args(argv)
    if not args.pairs and not os.environ.get("LIQMAP_BENCH_FORECAST_CACHE"):
        raise SystemExit("fit_reach_calibration: set LIQMAP_BENCH_FORECAST_CACHE to the demo recordings' directory")
    t0 = time.perf_counter()
    bf = _bench()
    from liqmap.core import calibration as cal

    groups = {"fit": _seeds(args.fit)}
    for g in args.check.split(","):
        if g.strip():
            groups[g.strip()] = _seeds(g)
    pairs, missing = {}, {}
    old = json.loads(Path(args.pairs).read_text())["pairs"] if args.pairs else None
    for name, seeds in groups.items():
        if old is not None:
            known = {int(s): [tuple(x) for x in xs] for per in old.values() for s, xs in per.items()}
            pairs[name] = {s: known[s] for s in seeds if s in known}
            missing[name] = [s for s in seeds if s not in known]
        else:
            pairs[name], missing[name] = collect(bf, seeds)
    fit_pairs = pairs["fit"]
    if not fit_pairs:
        raise SystemExit("fit_reach_calibration: none of the fit seeds is recorded in the cache")
    bins, loo = choose_bins(cal, fit_pairs)
    new = fit_with(cal, [x for xs in fit_pairs.values() for x in xs], bins)
    report = {"fit_seeds": sorted(fit_pairs), "chosen": bins, "leave_one_seed_out_gap": loo,
              "knots": [list(k) for k in new.knots], "current_knots": [list(k) for k in cal.DEMO.knots],
              "model_params": bf.MODEL_PARAMS or None, "groups": {}}
    print(f"fit on seeds {sorted(fit_pairs)} (missing: {missing['fit'] or 'none'}); fit chosen by leave-one-seed-out "
          f"(worst gap, Brier) {loo} -> {bins}")
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
