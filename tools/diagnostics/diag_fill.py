#!/usr/bin/env python3
"""Diagnostic (issue 17 item 4, session 11: "The cap yields while the open interest fills" in docs/benchmarks.md): how
far the asset's open interest grows within the hour in each recorded market, as the model's gate measures it
(``liqmap/core/model/filling.py``: the OI summed over venues in USD now ÷ its close at the minute an hour ago), at
every OI sample from minute 10 to the end of the model's first hour, before the sample counts (as the gate judges a
step). Reads only the recordings' OI rows; the model is not involved.

    PYTHONPATH=$PWD python tools/diagnostics/diag_fill.py steady,trend,range,cascade,empty 1-10
"""

from __future__ import annotations

import os
import pickle
import sys

from liqmap.core.model.filling import OIFill

CACHE = os.environ.get("LIQMAP_BENCH_FORECAST_CACHE", "/work/fc-cache")


def main() -> None:
    conds = sys.argv[1].split(",")
    a, b = (int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1-10").split("-"))
    for cond in conds:
        suffix = "" if cond == "steady" else "_" + cond
        over = {1.5: 0, 2: 0, 3: 0, 4: 0}
        n, peaks = 0, []
        for seed in range(a, b + 1):
            path = os.path.join(CACHE, f"seed{seed}_h2_p1_r0{suffix}_v2.pkl")
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                rec = pickle.load(f)
            feed = rec["feed"]
            t0 = feed[0][0]
            for asset in ("BTC", "ETH", "SOL"):
                fill, peak = OIFill(8, 60), 0.0
                for now, batch in feed:
                    if now - t0 > 3600:
                        break
                    rows = batch[asset].get("oi") if batch[asset] else None
                    if rows is None or not len(rows):
                        continue
                    for ts, oi, oi_usd, mark, venue in rows.tolist():
                        if now - t0 >= 600:
                            r = fill.ratio()
                            n += 1
                            for k in over:
                                over[k] += r >= k
                            peak = max(peak, r)
                        fill.add(ts, int(venue), oi_usd if oi_usd > 0 else oi * mark)
                peaks.append(round(peak, 2))
        share = {k: round(v / n, 3) for k, v in over.items()} if n else {}
        print(f"{cond} {a}-{b}: share of samples >= {share}; largest per seed x asset (top 5) {sorted(peaks)[-5:]}")


if __name__ == "__main__":
    main()
