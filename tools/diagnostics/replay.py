"""The forecast benchmark's replay for the diagnostics: fresh models per asset fed a recorded market's updates up
to each checkpoint (the loop of ``benchmarks/bench_forecast.py``'s ``_score_seed``, without its scoring)."""

import importlib.util
import os
import pickle
import sys
from pathlib import Path

import numpy as np

from liqmap.config import DEFAULTS
from liqmap.core import buckets
from liqmap.core.forecast import reach_probability
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


def reach_of(model, idx: np.ndarray, step: float, price: float) -> np.ndarray:
    """The model's chance that price reaches each bucket of ``idx`` within the hour (its walk, with its drift)."""
    return reach_probability(np.log((idx + 0.5) * step / price), model.sigma_hour, model.horizon_hours, model.tails,
                             model.drift_hour)


def on_range(buckets_usd: tuple, idx: np.ndarray) -> np.ndarray:
    """(bucket, USD) arrays as a profile over the range's buckets ``idx`` (0 where the pair has none)."""
    have = dict(zip(np.asarray(buckets_usd[0]).tolist(), np.asarray(buckets_usd[1]).tolist()))
    return np.array([have.get(int(x), 0.0) for x in idx])


def truth_scorer(bf, rec: dict, asset: str, t: float, price: float, idx: np.ndarray, step: float, add):
    """At one checkpoint, ``(score, truth_usd)``: ``score(name, profile)`` adds to ``add((asset, name), usd)`` the
    next hour's true liquidation USD inside the range that fell in the profile's top buckets (the benchmark's
    scoring, ``bf._top_buckets``); ``truth_usd`` is all of it inside the range."""
    log = rec["truth"][(asset, t)]
    bi = buckets.index(log["price"], step)
    usd = log["usd"]
    inside = (bi >= idx[0]) & (bi <= idx[-1])

    def score(name: str, profile: np.ndarray) -> None:
        _, top = bf._top_buckets(price, step, dict(zip(idx.tolist(), profile.tolist())))
        add((asset, name), float(usd[inside & np.isin(bi, top)].sum()))

    return score, float(usd[inside].sum())
