"""The Synthetic map shows levels, not a wash: the model's at-risk profile is about as sharp as the truth's.

Sharpness (liqmap/core/sharpness.py) = the share of a profile's USD in its top 10 % of buckets. On a short
deterministic demo run the model's profile within ±5 % of price — the live one and the finished 1-minute
column the map replays — is compared with the simulator's true open positions at the same moment.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from liqmap.config import DEFAULTS
from liqmap.core import buckets
from liqmap.core.sharpness import top_share
from liqmap.core.synthetic import SyntheticModel
from liqmap.feeds.demo import DemoSource, make_parsers

START = 1_700_000_000.0


def test_top_share_of_flat_spiky_and_empty_profiles():
    assert top_share(np.ones(100)) == pytest.approx(0.10)
    assert top_share(np.ones(95)) == pytest.approx(10 / 95)  # ceil(9.5) buckets
    spike = np.zeros(50)
    spike[7] = 3.0
    assert top_share(spike) == 1.0
    assert top_share(np.r_[np.full(90, 1.0), np.full(10, 11.0)]) == pytest.approx(110 / 200)
    assert top_share(np.r_[-5.0, 1.0, 1.0, 1.0]) == pytest.approx(1 / 3)  # negatives count as zero
    assert top_share(np.zeros(10)) is None and top_share(np.empty(0)) is None
    assert top_share(np.ones(100), share=0.5) == pytest.approx(0.5)


async def _models_on_demo(minutes: float, seed: int, variants: dict[str, dict]):
    """BTC of the demo market through the real parsers into one model per parameter variant (over the
    defaults), all fed the same events every 10 simulated seconds."""
    cfg = copy.deepcopy(DEFAULTS)
    src = DemoSource(cfg, assets=["BTC"], seed=seed, start=START, focus=[], books=False)
    rows: dict[str, list] = {"oi": [], "trade": [], "liq": []}

    def sink(kind: str, asset: str, r) -> int:
        if kind in rows:
            rows[kind].append(r)
        return len(r)

    parsers = make_parsers(src, sink, None, cfg)
    a = src.assets["BTC"]
    step = buckets.bucket_step(a.ref_price, a.tick, cfg["buckets"]["target_bp"])
    models = {name: SyntheticModel("BTC", step, params={**cfg["model"], **p}, markets=dict(a.markets), cfg=cfg)
              for name, p in variants.items()}
    end = src.now() + minutes * 60.0
    next_update = src.now() + 10.0
    last = a.ref_price
    while src.now() < end:
        for ts, venue, conn, raw in src.step():
            await parsers[venue].feed(raw, ts, conn)
        if src.now() >= next_update:
            next_update += 10.0
            batch = {}
            for kind, parts in rows.items():
                if parts:
                    x = np.concatenate(parts)
                    batch[kind] = x[np.argsort(x["ts"], kind="stable")]
                    parts.clear()
            if len(batch.get("trade", ())):
                last = float(batch["trade"]["price"][-1])
            for m in models.values():
                m.update(oi=batch.get("oi"), trades=batch.get("trade"), liqs=batch.get("liq"))
                m.advance(src.now())
    return src, models, step, last


def _profiles(model: SyntheticModel, now: float, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(live at-risk USD, the last finished 1m column as the map replays it) over the buckets ``idx``."""
    b, lu, su = model.levels()
    live = dict(zip(b.tolist(), (lu + su).tolist()))
    cur = int(math.floor(now / 60.0))
    col_l, col_s = model.column_profiles("1m", cur - 1, cur, int(idx[0]), len(idx))
    return np.array([live.get(int(i), 0.0) for i in idx]), (col_l + col_s)[:, 0]


async def test_model_profile_sharpness_against_the_true_positions():
    src, models, step, price = await _models_on_demo(30.0, seed=3, variants={"default": {},
                                                                              "bands": {"leverage_spread": 1.0}})
    lo = int(buckets.index(price * 0.95, step))
    hi = int(buckets.index(price * 1.05, step))
    idx = np.arange(lo, hi + 1)
    tr = src.truth("BTC")
    tb = buckets.index(tr["liq_price"], step)
    inside = (tb >= lo) & (tb <= hi)
    oracle = top_share(np.bincount(tb[inside] - lo, weights=tr["usd"][inside], minlength=len(idx)))
    assert oracle is not None and oracle > 0.3  # the truth is individual positions: far from flat (0.10)
    got = {}
    for name, m in models.items():
        live, column = _profiles(m, src.now(), idx)
        assert live.sum() > 0 and column.sum() > 0
        got[name] = top_share(live)
        # the map's past column keeps the live profile's shape (the history is exact up to float16)
        assert top_share(column) == pytest.approx(got[name], rel=0.05)
    # the default draws exact tier lines (leverage_spread 0): as sharp as the truth, within 20 %
    assert 0.8 * oracle <= got["default"] <= 1.2 * oracle, (got, oracle)
    # each tier spread over its whole leverage band: a wash, far less sharp than the truth
    assert got["bands"] < 0.6 * oracle, (got, oracle)
    # the default's forecast weighs those bands (a second state fed the same events), not the thin lines
    b, lu, su = models["default"].forecast_levels()
    fl = dict(zip(b.tolist(), (lu + su).tolist()))
    band_live, _ = _profiles(models["bands"], src.now(), idx)
    assert np.allclose([fl.get(int(i), 0.0) for i in idx], band_live, rtol=1e-9, atol=1e-6)
