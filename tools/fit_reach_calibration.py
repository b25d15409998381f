"""Refit the chance-of-reach calibration map (``liqmap.core.calibration.DEMO_MAP``) on the clusters as they are
listed now, and judge it per market condition — re-run it whenever the reach or the cluster choice changes
(issue 17 item 2).

The NEXT 1H panel prints each cluster's chance of reach through a monotone map fitted on what happened on the
demo. The map is only right for the clusters it was fitted on: when the model changes which clusters are listed
or how far it thinks price goes (the drift-aware reach did; a new σ will), the map must be fitted again. This
script:

1. scores the demo's recordings (``LIQMAP_BENCH_FORECAST_CACHE``) of every market condition (steady, trend,
   range, cascade, empty; ``--conditions``) through the benchmark's own path (``benchmarks/bench_forecast.py``:
   ``_score_seed`` with the calibration checkpoints on), collecting per NEXT 1H cluster the walk's raw chance,
   whether price reached it within the hour, and what the market was doing (``calibration.regime``). A market
   not recorded there is skipped and named, never recorded here;
2. chooses the fit on the FIT seeds only (default 1-10, all conditions together): isotonic over 10, 8, 6 or 5
   bins, or logistic on logit(raw), by leave-one-seed-out (each seed number, all its conditions, judged by the
   map fitted on the other seeds): the smallest pooled log-loss (docs/benchmarks.md, "The judging rule");
3. judges the chosen map — beside the walk's raw chance and the map now in the code — per condition and pooled
   over conditions, on the fit seeds and each CHECK group (default 11-20 and 21-30, never used to fit or choose)
   and the check groups together: per decile a 90 % interval from resampling seeds, off / within / undecided
   (``calibration.judged``);
4. with ``--write``, replaces ``DEMO_MAP`` in ``liqmap/core/calibration.py`` by the new knots.

Usage::

    LIQMAP_BENCH_FORECAST_CACHE=/work/fc-cache python tools/fit_reach_calibration.py [--fit 1-10]
        [--check 11-20,21-30] [--conditions steady,trend,range,cascade,empty] [--write] [--json OUT]
        [--pairs EARLIER.json]

Model parameters over the defaults: ``LIQMAP_BENCH_FORECAST_MODEL`` (JSON), as for the benchmarks. About 4 s of
CPU per recorded market (150 markets: ~6 minutes on two workers, ``LIQMAP_BENCH_FORECAST_WORKERS``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CAL_FILE = ROOT / "liqmap" / "core" / "calibration.py"
# Candidate fits: isotonic over this many bins of the raw chance (10 = deciles, the reliability table's own), or
# "logistic" — two parameters on logit(raw) (Platt scaling): smoother, less swayed by a few seeds' runs.
CANDIDATES = (10, 8, 6, 5, "logistic")
LOGISTIC_GRID = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)
CONDITIONS = ("steady", "trend", "range", "cascade", "empty")
POOLED = "all conditions"


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


def collect(bf, seeds: tuple[int, ...], conditions=CONDITIONS, jobs=None) -> tuple[dict, list]:
    """{(condition, seed): [cluster info, ...]} for the recorded markets, and the (seed, condition) not recorded
    (skipped). Each cluster's info: raw chance, reached, distance, σ, drift t toward it, volatility ratio."""
    jobs = list(jobs) if jobs is not None else [(s, c) for c in conditions for s in seeds]
    have = [(s, c) for s, c in jobs if (p := bf._cache_path(s, bf.HOURS, c)) and os.path.exists(p)]
    runs = bf._run_seeds(tuple(have)) if have else []
    out = {}
    for r in runs:
        info = r["calib"].get("info")
        if info is None:  # an older benchmark: the pairs only
            info = [{"raw": p, "reached": bool(h)} for p, h in r["calib"]["clusters"]]
        out[(r["condition"], r["seed"])] = info
    return out, [j for j in jobs if j not in have]


def fit_logistic(cal, pairs):
    """P(reached) = 1 / (1 + exp(−(a·logit(raw) + b))), a and b by maximum likelihood (Newton), as knots of a
    piecewise-linear map on ``LOGISTIC_GRID`` between (0, 0) and (1, 1) (a > 0 keeps it monotone)."""
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


def log_loss(pairs) -> float:
    """Mean log-loss of (chance, reached) pairs, the chance clipped to [0.01, 0.99] (a map's ends are 0 and 1)."""
    p = np.clip(np.array([float(x[0]) for x in pairs]), 0.01, 0.99)
    y = np.array([float(bool(x[1])) for x in pairs])
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _pairs(infos) -> list[tuple[float, bool]]:
    return [(float(i["raw"]), bool(i["reached"])) for i in infos]


def choose_bins(cal, per_seed: dict) -> tuple:
    """The candidate fit whose leave-one-seed-out map predicts the fit seeds best: each seed number (all its
    conditions: keys (condition, seed) or plain seeds) judged by the map fitted on the other seeds, the pooled
    log-loss (smallest wins; docs/benchmarks.md "The judging rule"), the worst decile gap beside it."""
    seed_of = {k: (k[1] if isinstance(k, tuple) else k) for k in per_seed}
    numbers = sorted(set(seed_of.values()))
    scores = {}
    for how in CANDIDATES:
        judged = []
        for s in numbers:
            rest = [x for k, xs in per_seed.items() if seed_of[k] != s for x in _as_pairs(xs)]
            m = fit_with(cal, rest, how)
            judged.extend((float(m(p)), h) for k, xs in per_seed.items() if seed_of[k] == s for p, h in _as_pairs(xs))
        t = cal.reliability(judged)
        scores[how] = (round(log_loss(judged), 5), t["max_gap_points"], t["brier"])
    best = min(scores, key=lambda b: scores[b])
    return best, {str(k): v for k, v in scores.items()}


def _as_pairs(xs) -> list[tuple[float, bool]]:
    return _pairs(xs) if xs and isinstance(xs[0], dict) else [(float(p), bool(h)) for p, h in xs]


# A map conditioned on the market's regime (docs/model.md §7): the raw chance's logit is first moved by
# k · ln(volatility of the last 15 minutes ÷ the window's), clipped (``calibration.regime``, ``calibration.shifted``),
# then mapped. k = 0 is the plain map. Chosen on the FIT seeds like the form: adopted only if its leave-one-seed-out
# log-loss is smaller AND its leave-one-seed-out tables have no more "off" deciles in any condition.
SHIFTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def _shift_pairs(cal, infos, k: float) -> list[tuple[float, bool]]:
    return [(float(cal.shifted(i["raw"], i.get("vol_ratio", 1.0), k)), bool(i["reached"])) for i in infos]


def choose_shift(cal, per: dict, how) -> tuple[float, dict]:
    """The regime shift k (``SHIFTS``) for the fit form ``how``, by leave-one-seed-out on ``per`` ({(condition,
    seed): infos}, the FIT seeds): per k the pooled log-loss and the "off" deciles per condition of the held-out
    judgements (``calibration.judged``); k > 0 only where it beats k = 0 on log-loss with no condition worse off."""
    numbers = sorted({k[1] for k in per})
    res = {}
    for k in SHIFTS:
        shifted = {key: _shift_pairs(cal, xs, k) for key, xs in per.items()}
        judged = []  # (condition, seed, chance judged, reached)
        for s in numbers:
            m = fit_with(cal, [x for key, xs in shifted.items() if key[1] != s for x in xs], how)
            judged.extend((key[0], key[1], float(m(p)), h) for key, xs in shifted.items() if key[1] == s for p, h in xs)
        off = {c: cal.judged([r for r in judged if r[0] == c])["verdicts"]["off"] for c in sorted({r[0] for r in judged})}
        res[k] = {"logloss": round(log_loss([(r[2], r[3]) for r in judged]), 5), "off": off}
    ok = [k for k in SHIFTS if k == 0.0 or (res[k]["logloss"] < res[0.0]["logloss"]
                                            and all(res[k]["off"][c] <= res[0.0]["off"][c] for c in res[0.0]["off"]))]
    best = min(ok, key=lambda k: res[k]["logloss"])
    return best, {str(k): v for k, v in res.items()}


def write_shift(k: float, path: Path = CAL_FILE) -> None:
    """Replace DEMO_VOL_SHIFT's value in liqmap/core/calibration.py."""
    text = path.read_text()
    new, n = re.subn(r"^DEMO_VOL_SHIFT = [-0-9.e]+", f"DEMO_VOL_SHIFT = {float(k)!r}", text, count=1, flags=re.M)
    if n != 1:
        raise SystemExit(f"{path}: no DEMO_VOL_SHIFT to replace")
    path.write_text(new)


def write_map(knots, path: Path = CAL_FILE) -> None:
    """Replace the tuple assigned to DEMO_MAP in liqmap/core/calibration.py (its comment above stays)."""
    text = path.read_text()
    body = "".join(f"    ({x!r}, {y!r}),\n" for x, y in knots)
    new, n = re.subn(r"DEMO_MAP: tuple\[tuple\[float, float\], \.\.\.\] = \(\n.*?\n\)\n",
                     "DEMO_MAP: tuple[tuple[float, float], ...] = (\n" + body + ")\n", text, count=1, flags=re.S)
    if n != 1:
        raise SystemExit(f"{path}: no DEMO_MAP tuple found to replace")
    path.write_text(new)


def baseline_knots(path: Path) -> tuple:
    """DEMO_MAP as another tree's calibration.py writes it (read as text: that tree's module is not imported)."""
    m = re.search(r"DEMO_MAP: tuple\[tuple\[float, float\], \.\.\.\] = \(\n(.*?)\n\)\n", path.read_text(), flags=re.S)
    if not m:
        raise SystemExit(f"{path}: no DEMO_MAP tuple found")
    return tuple((float(a), float(b)) for a, b in re.findall(r"\(([-0-9.e]+), ([-0-9.e]+)\)", m.group(1)))


def baseline_shift(path: Path) -> float:
    """DEMO_VOL_SHIFT as another tree's calibration.py sets it (0 where it has none: the plain map)."""
    m = re.search(r"^DEMO_VOL_SHIFT = ([-0-9.e]+)", path.read_text(), flags=re.M)
    return float(m.group(1)) if m else 0.0


def tables(cal, per: dict, groups: dict, maps: dict, conditions) -> dict:
    """{group: {condition or POOLED: {map name: calibration.judged table}}} over the recorded markets ``per``
    ({(condition, seed): infos}); each map turns a cluster's info (raw chance, regime) into the chance judged."""
    out = {}
    for g, seeds in groups.items():
        out[g] = {}
        for c in (*conditions, POOLED):
            keys = [k for k in per if k[1] in seeds and (c == POOLED or k[0] == c)]
            if not keys:
                continue
            out[g][c] = {name: cal.judged([(k[0], k[1], float(fn(i)), bool(i["reached"])) for k in keys for i in per[k]])
                         for name, fn in maps.items()}
    return out


def _line(t: dict) -> str:
    rows = "; ".join(f"{r['predicted']:.2f}→{r['observed']:.2f} [{r['interval_points'][0]:+.0f},"
                     f"{r['interval_points'][1]:+.0f}] ({r['n']}/{r['seeds']}){'' if r['judged'] else '*'}"
                     f"{'!' if r['verdict'] == 'off' else ''}" for r in t["rows"])
    v = t["verdicts"]
    return (f"gap {t['max_gap_points']} excess {t['excess_points']} off/within/undecided "
            f"{v['off']}/{v['within']}/{v['undecided']} Brier {t['brier']} n={t['n']} | {rows}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fit", default="1-10", help="seeds the map is fitted (and its form chosen) on")
    ap.add_argument("--check", default="11-20,21-30", help="seed groups it is judged on, comma-separated ranges")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="market conditions scored (comma list)")
    ap.add_argument("--write", action="store_true", help="write the fitted knots into calibration.DEMO_MAP")
    ap.add_argument("--json", help="write the report (and every market's clusters) here")
    ap.add_argument("--pairs", help="re-use the clusters of an earlier --json report instead of scoring (same model)")
    ap.add_argument("--no-shift", action="store_true", help="fit the plain map only (no regime shift)")
    ap.add_argument("--quiet", action="store_true", help="print the pooled tables only")
    ap.add_argument("--baseline-map", help="another tree's liqmap/core/calibration.py: its DEMO_MAP judged beside "
                                           "(e.g. /work/main/liqmap/core/calibration.py, for main vs branch)")
    args = ap.parse_args(argv)
    if not args.pairs and not os.environ.get("LIQMAP_BENCH_FORECAST_CACHE"):
        raise SystemExit("fit_reach_calibration: set LIQMAP_BENCH_FORECAST_CACHE to the demo recordings' directory")
    t0 = time.perf_counter()
    bf = _bench()
    from liqmap.core import calibration as cal

    conditions = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
    groups = {"fit": _seeds(args.fit)}
    checks = [g.strip() for g in args.check.split(",") if g.strip()]
    for g in checks:
        groups[g] = _seeds(g)
    every = sorted({s for seeds in groups.values() for s in seeds})
    if args.pairs:  # an earlier report's clusters (same model); with the cache set, markets it lacks are scored
        old = json.loads(Path(args.pairs).read_text())["clusters"]
        per = {(c, int(s)): xs for c, by in old.items() for s, xs in by.items() if c in conditions and int(s) in every}
        missing = [(s, c) for c in conditions for s in every if (c, s) not in per]
        if missing and os.environ.get("LIQMAP_BENCH_FORECAST_CACHE"):
            more, missing = collect(bf, (), (), jobs=missing)
            per.update(more)
    else:
        per, missing = collect(bf, tuple(every), conditions)
    if len(checks) > 1:  # the hold-out groups together: the judged set
        groups["+".join(checks)] = tuple(s for g in checks for s in groups[g])
    fit_per = {k: v for k, v in per.items() if k[1] in groups["fit"]}
    if not fit_per:
        raise SystemExit("fit_reach_calibration: none of the fit seeds is recorded in the cache")
    bins, loo = choose_bins(cal, fit_per)
    shift, shifts = (choose_shift(cal, fit_per, bins) if not args.no_shift and any(
        "vol_ratio" in x for xs in fit_per.values() for x in xs) else (0.0, {}))
    new = fit_with(cal, [x for xs in fit_per.values() for x in _shift_pairs(cal, xs, shift)], bins)
    cur_k = cal.DEMO_VOL_SHIFT
    maps = {"raw": lambda i: i["raw"],
            "current_map": lambda i: cal.DEMO(cal.shifted(i["raw"], i.get("vol_ratio", 1.0), cur_k)),
            "refit": lambda i: new(cal.shifted(i["raw"], i.get("vol_ratio", 1.0), shift))}
    if args.baseline_map:
        base, base_k = baseline_knots(Path(args.baseline_map)), baseline_shift(Path(args.baseline_map))
        bmap = cal.CalibrationMap(base)
        maps = {"baseline_map": lambda i: bmap(cal.shifted(i["raw"], i.get("vol_ratio", 1.0), base_k)), **maps}
    tab = tables(cal, per, groups, maps, conditions)
    report = {"fit_seeds": sorted({k[1] for k in fit_per}), "conditions": list(conditions), "chosen": bins,
              "leave_one_seed_out_logloss_gap_brier": loo, "vol_shift": shift, "vol_shift_leave_one_seed_out": shifts,
              "knots": [list(k) for k in new.knots],
              "current_knots": [list(k) for k in cal.DEMO.knots], "model_params": bf.MODEL_PARAMS or None,
              "missing": [list(m) for m in missing], "tables": tab}
    print(f"fit on seeds {report['fit_seeds']} of {', '.join(conditions)} ({len(fit_per)} markets); missing: "
          f"{len(missing)} markets {[f'{c}{s}' for s, c in missing][:12]}{' ...' if len(missing) > 12 else ''}")
    print(f"chosen by leave-one-seed-out (log-loss, worst gap, Brier) {loo} -> {bins}")
    print(f"regime shift k by leave-one-seed-out (log-loss, off deciles per condition) {shifts} -> {shift}")
    print("knots:", ", ".join(f"({x:g}, {y:g})" for x, y in new.knots))
    for g, by in tab.items():
        for c, t in by.items():
            if args.quiet and c != POOLED:
                continue
            for k in maps:
                print(f"{g:>11} {c:>14} {k:>11}: {_line(t[k])}")
    if args.write:
        write_map(new.knots)
        write_shift(shift)
        print(f"wrote {len(new.knots)} knots and DEMO_VOL_SHIFT = {shift} into {CAL_FILE.relative_to(ROOT)}")
    report["run_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        by: dict = {}
        for (c, s), xs in per.items():
            by.setdefault(c, {})[str(s)] = xs
        report["clusters"] = by
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
