#!/usr/bin/env python3
"""Quick look (issue 17 item 4): the forecast's ratio over the distance baseline on recorded markets, through the
benchmark's own ``_score_seed``, for one model variant; per asset and pooled, with the oracle beside it.

    PYTHONPATH=$PWD python tools/quick_fc.py empty 1-10 ['{"param": value}']

Reads LIQMAP_BENCH_FORECAST_CACHE (required: the directory of recorded demo markets); scores only what is recorded there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if not os.environ.get("LIQMAP_BENCH_FORECAST_CACHE"):
    sys.exit(f"{os.path.basename(__file__)}: set LIQMAP_BENCH_FORECAST_CACHE to the directory of recorded demo markets")
spec = importlib.util.spec_from_file_location("bench_forecast", HERE.parent / "benchmarks" / "bench_forecast.py")
bf = importlib.util.module_from_spec(spec)
sys.modules["bench_forecast"] = bf
spec.loader.exec_module(bf)


def seeds_of(s: str) -> list[int]:
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def main() -> None:
    cond, seeds = sys.argv[1], seeds_of(sys.argv[2])
    params = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    runs = []
    for s in seeds:
        p = bf._cache_path(s, bf.HOURS, cond)
        if not (p and os.path.exists(p)):
            continue
        runs.append(bf._score_seed(bf._recorded(s, bf.HOURS, cond), params))
    acc = bf._sum_acc(runs)
    sm = bf._summary(acc)
    per_seed = {r["seed"]: bf._summary(r["acc"])["ratio"] for r in runs}
    out = {"cond": cond, "seeds": [r["seed"] for r in runs], "params": params,
           "forecast": sm["ratio"], "at_risk": sm["at_risk_ratio"], "lines": sm["lines_ratio"],
           "oracle": sm["oracle_ratio"], "oracle_fc": sm["oracle_forecast_ratio"],
           "per_asset": {a: {k: round(v / sm["per_asset"][a]["baseline"], 3) if v and sm["per_asset"][a]["baseline"]
                             else None for k, v in sm["per_asset"][a].items() if k != "baseline"}
                         for a in bf.ASSETS},
           "per_seed": per_seed,
           "by_distance": sm["by_distance"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
