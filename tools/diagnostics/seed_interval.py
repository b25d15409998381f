"""Item 4's misses against what a map could know (docs/benchmarks.md, session 19).

Scores one (condition, ten-seed group) of the forecast benchmark's recordings seed by seed and prints, for the
forecast and every oracle, the pooled ratio to the distance baseline with a 90 % bootstrap interval over the seeds
(4,000 resamples, a fixed seed). Run it with the benchmark's environment, from the repository root, e.g.

    LIQMAP_BENCH_FORECAST_DEGRADE=1 LIQMAP_BENCH_FORECAST_CACHE=/tmp/fc PYTHONPATH=$PWD \\
        python tools/diagnostics/seed_interval.py cascade 21

(add ``LIQMAP_BENCH_FORECAST_PREROLL=21600 LIQMAP_BENCH_FORECAST_BACKFILL=klines`` for the back-filled markets).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.getcwd())
os.environ.setdefault("LIQMAP_BENCH_FORECAST_WORKERS", "2")

import benchmarks.bench_forecast as bf  # noqa: E402  (after the path and the workers are set)

NAMES = ("model", "at_risk", "baseline", "oracle_forecast", "oracle_shift1", "oracle_sigma10", "oracle_seen",
         "oracle_seen_shift1", "oracle_entry", "oracle_seen_entry")


def main(condition: str, first: int) -> dict:
    seeds = tuple(range(first, first + 10))
    runs = bf._run_seeds(tuple((s, condition) for s in seeds))
    rp = bf.RANGE_PCT
    # per seed, the liquidation USD each ranking's top buckets caught (summed over assets and checkpoints)
    per = np.array([[sum(r["acc"].get((rp, a, n), 0.0) for a in bf.ASSETS) for n in NAMES] for r in runs])
    base = NAMES.index("baseline")
    draws = np.random.default_rng(0).integers(0, len(seeds), (4000, len(seeds)))
    out: dict = {"condition": condition, "seeds": f"{seeds[0]}-{seeds[-1]}"}
    for j, name in enumerate(NAMES):
        if j == base:
            continue
        boot = per[draws, j].sum(1) / per[draws, base].sum(1)
        out[name] = [round(float(per[:, j].sum() / per[:, base].sum()), 3),
                     round(float(np.percentile(boot, 5)), 3), round(float(np.percentile(boot, 95)), 3)]
    out["per_seed_model"] = [round(float(m / b), 2) if b > 0 else None for m, b in zip(per[:, 0], per[:, base])]
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
