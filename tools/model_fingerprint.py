"""Write the synthetic model's neutrality reference (tests/model_fingerprint.py explains what it holds).

    python tools/model_fingerprint.py record   # once: the demo market (seed 1) the fingerprint feeds the model
    python tools/model_fingerprint.py write    # the hashes the current model code produces -> fingerprint.json

Run ``write`` on the code BEFORE a behaviour-neutral refactor (the reference), never after one that is meant to
change the model: a change to the model's behaviour rewrites the reference on purpose, in its own commit.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import model_fingerprint as mf  # noqa: E402

ASSETS = ("BTC", "SOL")
MINUTES = 40.0
UPDATE_S = 10.0  # the engine's ingest cadence


async def _record() -> dict:
    from liqmap.config import DEFAULTS
    from liqmap.core import buckets
    from liqmap.core.market import Market
    from liqmap.feeds.demo import DemoSource, make_parsers

    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    src = DemoSource(cfg, assets=list(ASSETS), seed=1, start=1_700_000_000.0, focus=[], books=False)
    market = Market(list(ASSETS), clock=src.now)
    fresh = {a: {k: [] for k, _ in mf.KINDS} for a in ASSETS}

    def sink(kind: str, asset: str, rows) -> None:
        if market.add(kind, asset, rows) == len(rows) and kind in fresh[asset]:
            fresh[asset][kind].append(rows)

    parsers = make_parsers(src, sink, None, cfg)
    out = {a: {"now": [], **{k: [] for k, _ in mf.KINDS}} for a in ASSETS}
    end, next_update = src.now() + MINUTES * 60.0, src.now() + UPDATE_S
    while src.now() < end:
        for ts, venue, conn, raw in src.step():
            await parsers[venue].feed(raw, ts, conn)
        if src.now() >= next_update:
            next_update += UPDATE_S
            for a in ASSETS:
                out[a]["now"].append(src.now())
                for k, dt in mf.KINDS:
                    x = np.concatenate(fresh[a][k]) if fresh[a][k] else np.empty(0, dt)
                    out[a][k].append(x[np.argsort(x["ts"], kind="stable")])
                    fresh[a][k] = []
    arrays = {"assets": np.array(json.dumps(list(ASSETS)))}
    for a in ASSETS:
        s = src.assets[a]
        arrays[f"{a}/step"] = np.array(buckets.bucket_step(s.ref_price, s.tick, cfg["buckets"]["target_bp"]))
        arrays[f"{a}/now"] = np.array(out[a]["now"])
        arrays[f"{a}/cuts"] = np.cumsum([[len(out[a][k][i]) for k, _ in mf.KINDS]
                                         for i in range(len(out[a]["now"]))], axis=0)
        for k, dt in mf.KINDS:
            arrays[f"{a}/{k}"] = np.concatenate(out[a][k]).astype(dt)
    return arrays


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "record":
        mf.DATA.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(mf.DEMO_FILE, **asyncio.run(_record()))
        print(f"wrote {mf.DEMO_FILE} ({mf.DEMO_FILE.stat().st_size} bytes)")
    elif what == "write":
        mf.FINGERPRINT_FILE.write_text(json.dumps(mf.fingerprint(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {mf.FINGERPRINT_FILE}")
    else:
        sys.exit("usage: model_fingerprint.py record|write")


if __name__ == "__main__":
    main()
