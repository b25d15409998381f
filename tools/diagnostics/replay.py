"""The forecast benchmark's replay for the diagnostics: fresh models per asset fed a recorded market's updates up
to each checkpoint (the loop of ``benchmarks/bench_forecast.py``'s ``_score_seed``, without its scoring)."""

from liqmap.config import DEFAULTS
from liqmap.core.synthetic import SyntheticModel


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
