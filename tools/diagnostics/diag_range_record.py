#!/usr/bin/env python3
"""Diagnostic (issue 17 item 4, range, session 11 helper range18): ``diag_empty.py record`` plus the simulator's full
liquidation rows of each checkpoint's next hour (id, side, entry, leverage: which true positions the hour took).

    PYTHONPATH=$PWD python tools/diagnostics/diag_range_record.py 1,2,3 range /tmp/range18

Reading the simulator's positions here is for diagnosis only: the model never sees them."""
import importlib.util
import os
import pickle
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("diag_empty", HERE / "diag_empty.py")
de = importlib.util.module_from_spec(spec)
spec.loader.exec_module(de)
from liqmap.feeds.demo import source as demo_source  # noqa: E402

if __name__ == "__main__":
    seeds, cond, out = [int(x) for x in sys.argv[1].split(",")], sys.argv[2], sys.argv[3]
    for seed in seeds:
        liqs = {}
        orig = demo_source.DemoSource.liquidations

        def liquidations(self, asset=None, since=None):
            log = orig(self, asset, since)
            liqs[(asset, since)] = log.copy()
            return log

        demo_source.DemoSource.liquidations = liquidations
        de.record(seed, cond, out)
        demo_source.DemoSource.liquidations = orig
        path = os.path.join(out, f"seed{seed}_{cond}.pkl")
        with open(path, "rb") as fh:
            rec = pickle.load(fh)
        rec["liqs_full"] = liqs
        with open(path, "wb") as fh:
            pickle.dump(rec, fh, protocol=pickle.HIGHEST_PROTOCOL)
