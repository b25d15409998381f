"""Queued opens (liqmap/core/model/pending.py) place what opening one by one places (issue 17 item 5).

The queue changes only the order of float additions, so every output of a model that queues its opens must match
the same model placing each open as it comes (``SyntheticModel.BATCH_OPENS = False``) to float tolerance, on
real-shaped input: the recorded demo market (BTC, SOL) and the ``model_update`` benchmark's five-venue hour, under
every parameter set of the neutrality fingerprint (thin lines, bands, high/low entries, the cold-start prior),
before and after a rebucket. Consumption, reconciliation, closes that zero a side, bands cut by the window and
the column history all happen in these feeds.
"""

from __future__ import annotations

import numpy as np
import pytest

import model_fingerprint as mf
from liqmap.core.synthetic import SyntheticModel

RTOL = 1e-9


def _snapshot(m: SyntheticModel, now: float) -> dict:
    out = {"levels": m.levels(), "levels_binance": m.levels(("binance",)), "forecast": m.forecast(),
           "totals": np.array([m.total_long(), m.total_short(), m.total_long(("bybit", "okx"))]),
           "consumed": m.consumed, "stats": np.array([m.stats[k] for k in sorted(m.stats)])}
    b = out["levels"][0]
    if len(b):
        mid = int(np.median(b))
        for tf, n, per in (("1m", 90, 60), ("5m", 30, 300), ("1h", 4, 3600)):
            cur = int(now // per)
            out[f"columns_{tf}"] = m.column_profiles(tf, cur - n + 1, cur + 1, mid - 300, 600)
        top = b[np.argsort(out["levels"][1] + out["levels"][2])[-3:]]
        out["provenance"] = [m.provenance(int(x)) for x in top]
    return out


def _run(step: float, feed: list, params: dict, batch: bool, monkeypatch) -> tuple[list, int]:
    monkeypatch.setattr(SyntheticModel, "BATCH_OPENS", batch)
    m = SyntheticModel("BTC", step, params)
    snaps, most_queued = [], 0
    for i, (now, oi, tr, lq) in enumerate(feed):
        m.update(oi, tr, lq)
        if m._queue is not None:
            most_queued = max(most_queued, len(m._queue), len(m._fc._queue) if m._fc is not None else 0)
        m.advance(now)
        if i in (len(feed) // 3, len(feed) - 1):
            snaps.append(_snapshot(m, now))
    m.rebucket(step * 2.0)
    snaps.append(_snapshot(m, feed[-1][0]))
    return snaps, most_queued


def _close(a, b, what: str) -> None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, what
    scale = max(float(np.abs(a).max()) if a.size else 0.0, 1.0)
    assert np.allclose(a, b, rtol=RTOL, atol=RTOL * scale), f"{what}: max diff {np.abs(a - b).max()}"


def _same(x: dict, y: dict) -> None:
    assert x.keys() == y.keys()
    for k in ("levels", "levels_binance", "forecast"):
        assert np.array_equal(x[k][0], y[k][0]), f"{k}: other buckets"
        for i in range(1, len(x[k])):
            _close(x[k][i], y[k][i], k)
    _close(x["totals"], y["totals"], "totals")
    _close(x["stats"], y["stats"], "stats")
    cx, cy = x["consumed"], y["consumed"]
    assert len(cx) == len(cy)
    for f in ("ts", "bucket", "side", "venues"):
        assert np.array_equal(cx[f], cy[f]), f"consumed {f}"
    _close(cx["usd"], cy["usd"], "consumed usd")
    for k in x:
        if k.startswith("columns_"):
            # the history stores float16 × a per-column scale (three significant digits, history.py): a
            # rebucket re-encodes merged buckets, where the float order can flip a last digit
            for i in (0, 1):
                a, b = x[k][i], y[k][i]
                assert np.allclose(a, b, rtol=2e-3, atol=1e-3 * max(float(a.max()), 1.0)), k
    for px, py in zip(x.get("provenance", []), y.get("provenance", []), strict=True):
        # a queued open that a close zeroes before it lands never marks its buckets' age; one by one it did,
        # and the bucket kept that stale "oldest" after its USD was gone: the queue's oldest is never older
        assert px["newest"] == py["newest"] and py["oldest"] >= px["oldest"]
        assert px["venues"].keys() == py["venues"].keys() and px["leverage"].keys() == py["leverage"].keys()
        _close([px["long_usd"], px["short_usd"], px["prior_usd"], *px["venues"].values(), *px["leverage"].values()],
               [py["long_usd"], py["short_usd"], py["prior_usd"], *py["venues"].values(), *py["leverage"].values()],
               "provenance")


FEEDS = {"demo_BTC": None, "demo_SOL": None, "bench": None}


@pytest.fixture(scope="module")
def feeds() -> dict:
    demo = mf.load_demo()
    return {"demo_BTC": demo["BTC"], "demo_SOL": demo["SOL"], "bench": mf.synthetic_feed(900)}


@pytest.mark.parametrize("variant", sorted(mf.VARIANTS))
@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_queued_opens_place_what_one_by_one_places(feeds, feed, variant, monkeypatch):
    step, rows = feeds[feed]
    one, _ = _run(step, rows, mf.VARIANTS[variant], False, monkeypatch)
    queued, most = _run(step, rows, mf.VARIANTS[variant], True, monkeypatch)
    assert most > 1, "the queue never held two opens: the batched path was not exercised"
    assert len(one[-2]["consumed"]) > 0, "nothing was swept: the feed does not test consumption"
    for x, y in zip(one, queued, strict=True):
        _same(x, y)


def test_a_sweep_reaching_a_queued_open_consumes_it(monkeypatch):
    """Opens wait in the queue; a trade down through their long levels within the same minute must find them
    there (the queue lands first), as one by one."""
    from liqmap.core import events as ev

    def feed(batch: bool) -> SyntheticModel:
        monkeypatch.setattr(SyntheticModel, "BATCH_OPENS", batch)
        m = SyntheticModel("BTC", 10.0, {"leverage_spread": 0.0, "forecast_leverage_spread": 0.0})
        t0 = 1_700_000_000.0
        oi = np.zeros(3, ev.OI_DTYPE)
        oi["ts"], oi["oi"], oi["mark"], oi["venue"] = t0 + np.array([0.0, 5.0, 10.0]), [1000, 1100, 1200], 50_000.0, 0
        oi["oi_usd"] = oi["oi"] * oi["mark"]
        tr = np.zeros(4, ev.TRADE_DTYPE)
        tr["ts"], tr["price"], tr["venue"], tr["side"] = t0 + np.array([1.0, 6.0, 12.0, 13.0]), \
            [50_000.0, 50_000.0, 50_000.0, 40_000.0], 0, [1, 1, 1, -1]
        tr["usd"] = 1e6
        tr["qty"] = tr["usd"] / tr["price"]
        m.update(oi[:1], tr[:1], None)
        m.update(oi[1:2], tr[1:2], None)
        m.update(oi[2:], None, None)
        if batch:
            assert len(m._queue) == 2  # both opens still waiting
        m.update(None, tr[2:], None)  # price falls 20 %: through every long tier
        return m

    one, queued = feed(False), feed(True)
    assert len(one.consumed) > 0 and (one.consumed["side"] == 1).any()
    assert np.array_equal(one.consumed["bucket"], queued.consumed["bucket"])
    _close(one.consumed["usd"], queued.consumed["usd"], "consumed usd")
    assert queued.total_long() == pytest.approx(one.total_long(), rel=1e-9, abs=1e-6)
