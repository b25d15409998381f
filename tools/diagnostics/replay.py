"""The forecast benchmark's replay for the diagnostics: fresh models per asset fed a recorded market's updates up
to each checkpoint (the loop of ``benchmarks/bench_forecast.py``'s ``_score_seed``, without its scoring)."""

import importlib.util
import os
import pickle
import sys
from pathlib import Path

import numpy as np

from liqmap.config import DEFAULTS
from liqmap.core.synthetic import SyntheticModel


def bench():
    """``benchmarks/bench_forecast.py`` as a module (loaded once, registered as ``bench_forecast``)."""
    if "bench_forecast" not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_forecast.py"
        spec = importlib.util.spec_from_file_location("bench_forecast", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["bench_forecast"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["bench_forecast"]


def sims(src, asset) -> list:
    """The demo source's simulators of one asset: its market and, if it has one, its shadow venue's."""
    sh = src.shadows.get(asset)
    return [src.sim(asset)] + ([sh] if sh is not None else [])


def open_positions(src, asset) -> tuple[np.ndarray, np.ndarray]:
    """(every open position's row, its USD at entry) across the asset's simulators: the truth the model never sees."""
    ss = sims(src, asset)
    parts = [s.pos for s in ss]
    return np.concatenate(parts), np.concatenate([s.usd_of(p["venue"], p["qty"], p["entry"]) for s, p in zip(ss, parts)])


def write(rec: dict, out: str, seed: int, condition: str) -> None:
    """Keep a diagnostic recording as ``out/seed{seed}_{condition}.pkl`` (what ``score`` steps read)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"seed{seed}_{condition}.pkl"), "wb") as fh:
        pickle.dump(rec, fh, protocol=pickle.HIGHEST_PROTOCOL)
    print("recorded", seed, condition, len(rec["checkpoints"]), "checkpoints")


def models_for(rec: dict, assets, params: dict):
    """One synthetic model per asset of a recorded market, with these model parameters."""
    return {a: SyntheticModel(a, rec["steps"][a], params=params, markets=rec["markets"][a], cfg=DEFAULTS)
            for a in assets}


def checkpoints(rec: dict, models: dict):
    """Yield ``(asset, t, price, per_range)`` at each of the recording's checkpoints, after every model was fed
    the updates before it."""
    feed, done = rec["feed"], 0
    for a, t, px, per_range, upto in rec["checkpoints"]:
        while done < upto:
            now, batch = feed[done]
            for n, model in models.items():
                arrs = batch[n]
                if arrs:
                    model.update(oi=arrs.get("oi"), trades=arrs.get("trade"), liqs=arrs.get("liq"))
                model.advance(now)
            done += 1
        yield a, t, px, per_range
