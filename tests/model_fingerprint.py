"""Fingerprint of everything the synthetic model outputs, for the behaviour-neutral refactors of issues 15/17.

A refactor of ``SyntheticModel`` (the module split, the numpy fast paths) must leave its outputs bit-identical.
This feeds the model two fixed event streams — a recorded demo market (seed 1, written once by
``tools/model_fingerprint.py`` into ``tests/data/model/``, so later changes to the demo simulator do not move the
reference) and the ``model_update`` benchmark's seeded synthetic hour — under several parameter sets that reach
every code path (thin lines and spread bands, profile and high/low entries, the cold-start prior), and hashes
each output array: levels, forecast levels, forecast, column profiles of every timeframe, the consumed ledger,
provenance, stats, and the same after a rebucket. ``tests/data/model/fingerprint.json`` holds the hashes computed
by the code before the refactor; ``tests/test_model_neutral.py`` compares.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from liqmap.core import events as ev
from liqmap.core.synthetic import SyntheticModel

DATA = Path(__file__).resolve().parent / "data" / "model"
DEMO_FILE = DATA / "demo_seed1.npz"
FINGERPRINT_FILE = DATA / "fingerprint.json"

# Parameter sets: each reaches a different placement / entry / source path of the model.
VARIANTS = {
    "defaults": {},
    "bands": {"leverage_spread": 1.0, "forecast_leverage_spread": 1.0},
    "highlow_prior": {"entry_mode": "highlow", "prior_weight": 0.5, "prior_entry_sigma_pct": 2.0,
                      "leverage_spread": 0.3},
    "prior_thin": {"prior_weight": 0.3, "half_life_hours": 2.0, "prior_half_life_hours": 1.0},
}
KINDS = (("oi", ev.OI_DTYPE), ("trade", ev.TRADE_DTYPE), ("liq", ev.LIQ_DTYPE))


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


def load_demo() -> dict:
    """{asset: (step, [(now, oi, trades, liqs), ...])} from the recorded demo market."""
    z = np.load(DEMO_FILE)
    out = {}
    for asset in json.loads(str(z["assets"])):
        cuts = z[f"{asset}/cuts"]  # (updates, 3) end offsets per kind
        nows = z[f"{asset}/now"]
        rows = {k: z[f"{asset}/{k}"] for k, _ in KINDS}
        feed, prev = [], np.zeros(3, np.int64)
        for i, now in enumerate(nows):
            feed.append((float(now), *(rows[k][prev[j]:cuts[i, j]] for j, (k, _) in enumerate(KINDS))))
            prev = cuts[i]
        out[asset] = (float(z[f"{asset}/step"]), feed)
    return out


def synthetic_feed(seconds: int = 900) -> tuple[float, list]:
    """The ``model_update`` benchmark's seeded five-venue BTC flow: its first ``seconds``, one second at a time."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import bench_model

    oi, trades, liqs = bench_model.hour_of_flow()
    o_s, t_s, l_s = (bench_model._per_second(a) for a in (oi, trades, liqs))
    return 25.0, [(bench_model.T0 + k + 1, o_s[k], t_s[k], l_s[k]) for k in range(seconds)]


def outputs(m: SyntheticModel, now: float) -> dict:
    out = {}
    b, lo, sh = m.levels()
    out["levels"] = digest(b, lo, sh)
    out["levels_binance"] = digest(*m.levels(("binance",)))
    out["forecast_levels"] = digest(*m.forecast_levels())
    out["forecast"] = digest(*m.forecast())
    out["totals"] = digest(np.array([m.total_long(), m.total_short(), m.total_long(("bybit", "okx")),
                                     m.sigma_hour, m.last_price or 0.0, m.step]))
    out["consumed"] = digest(m.consumed)
    out["stats"] = digest(np.array([m.stats[k] for k in sorted(m.stats)]))
    out["memory_bytes"] = m.memory_bytes()
    if len(b):
        top = b[np.argsort(lo + sh)[-3:]]
        out["provenance"] = hashlib.sha256(json.dumps([m.provenance(int(x)) for x in top],
                                                      sort_keys=True).encode()).hexdigest()[:24]
        mid = int(np.median(b))
        for tf, n in (("1m", 90), ("5m", 30), ("15m", 12), ("1h", 4)):
            per = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}[tf]
            cur = int(now // per)
            cl, cs = m.column_profiles(tf, cur - n + 1, cur + 1, mid - 300, 600)
            out[f"columns_{tf}"] = digest(cl, cs)
        m1 = int(now // 60)
        cl, cs = m.column_profiles("1m", m1 - 30, m1 + 1, mid - 300, 600, venues=("okx", "deribit"))
        out["columns_1m_okx"] = digest(cl, cs)
    return out


def run(step: float, feed: list, params: dict) -> dict:
    m = SyntheticModel("BTC", step, params)
    out = {}
    mid = len(feed) // 2
    for i, (now, oi, tr, lq) in enumerate(feed):
        m.update(oi, tr, lq)
        m.advance(now)
        if i == mid:
            out["mid"] = outputs(m, now)
    now = feed[-1][0]
    out["end"] = outputs(m, now)
    m.rebucket(step * 2.0)
    out["rebucketed"] = outputs(m, now)
    return out


def fingerprint() -> dict:
    res = {}
    for asset, (step, feed) in load_demo().items():
        for name, params in VARIANTS.items():
            res[f"demo/{asset}/{name}"] = run(step, feed, params)
    step, feed = synthetic_feed()
    for name in ("defaults", "bands"):
        res[f"bench/BTC/{name}"] = run(step, feed, VARIANTS[name])
    return res
