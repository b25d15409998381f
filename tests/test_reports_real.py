"""The reports over the real Binance USD-M BTCUSDT recording (hftbacktest sample, MIT; see data/real/NOTICE.md).

The test rebuilds the book itself (REST snapshot + depth diffs with U/u/pu sequencing, plain dicts keyed by the
exchange's price strings) and reads trades from the ``@trade`` frames (``m`` = buyer is maker → taker SELL),
steps the reports once per second of exchange time, and then checks every reported wall against the rebuilt
book and every reported sweep against the raw trades.
"""

from __future__ import annotations

import gzip
import math
import statistics
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from liqmap.core.book import Book
from liqmap.core.buckets import bucket_step, index
from liqmap.core.events import ASK, BID, BUY, SELL, VENUE_ID, trades
from liqmap.core.reports import Reports

DATA = Path(__file__).parent / "data" / "real" / "binance-usdm" / "hftbacktest_usdm_btcusdt_20240808.gz"

GAP_MS = 100.0
CFG = {"reports": {
    "walls": {"k_median": 5.0, "range_pct": 1.0, "min_usd": 5e5, "min_usd_by_asset": {}, "min_age_s": 10.0},
    "sweeps": {"gap_ms": GAP_MS, "min_usd": 5e4, "min_usd_by_asset": {}, "warmup_s": 0.0, "warmup_factor": 1.0,
               "k_sigma": 3.0, "max_kept": 100000, "keep_s": 3600.0},
    "absorptions": {"min_usd": 5e5, "min_usd_by_asset": {}},
}}


def _frames():
    with gzip.open(DATA, "rt") as fh:
        for line in fh:
            _, raw = line.rstrip("\n").split(" ", 1)
            yield orjson.loads(raw)


@pytest.fixture(scope="module")
def replay():
    ref = {BID: {}, ASK: {}}  # price string → qty string: the independent book
    book = Book()  # what the reports read
    rep = None
    pending: list[dict] = []  # depth diffs seen before the REST snapshot
    last_u = None
    raw_trades: list[tuple] = []  # (T ms, trade id, price, qty, side) for every trade in the file
    batch: list[tuple] = []
    next_tick = None
    ticks = 0
    gaps = 0
    per_tick: list[tuple[float, list]] = []  # (tick time, the trade rows handed to that tick)
    ended: list[tuple[dict, float]] = []

    def apply(d):
        for side, key in ((BID, "b"), (ASK, "a")):
            lv = []
            for p, q in d[key]:
                if float(q) == 0.0:
                    ref[side].pop(p, None)
                else:
                    ref[side][p] = q
                lv.append((float(p), float(q)))
            book.apply(side, lv, d["E"] / 1000.0)

    def tick(now):
        nonlocal batch, ticks
        rows = trades(batch) if batch else None
        rep.update(now, {"binance": book}, rows, None, step)
        per_tick.append((now, batch))
        # Walls that ended in this tick, with the rebuilt book's USD in their bucket at this moment.
        for w in rep.result()["walls"]:
            if w["status"] != "active" and w["ended"] == now:
                side = BID if w["side"] == "bid" else ASK
                usd = sum(float(p) * float(q) for p, q in ref[side].items()
                          if int(index(float(p), step)) == w["bucket"])
                ended.append((w, usd))
        batch = []
        ticks += 1

    step = None
    for msg in _frames():
        if "lastUpdateId" in msg:  # the REST snapshot
            L = msg["lastUpdateId"]
            for side, key in ((BID, "bids"), (ASK, "asks")):
                ref[side] = {p: q for p, q in msg[key] if float(q) != 0.0}
            book.replace([(float(p), float(q)) for p, q in msg["bids"]],
                         [(float(p), float(q)) for p, q in msg["asks"]], msg["E"] / 1000.0)
            step = bucket_step(book.mid(), 0.1, 5.0)
            rep = Reports("BTC", CFG, tick=0.1)
            first = True
            for d in pending:
                if d["u"] < L:
                    continue
                if first:
                    assert d["U"] <= L <= d["u"]
                    first = False
                apply(d)
                last_u = d["u"]
            pending = []
            continue
        data, stream = msg["data"], msg["stream"]
        if stream.endswith("@trade"):
            if data.get("X", "MARKET") != "MARKET":
                continue
            side = SELL if data["m"] else BUY
            p, q = float(data["p"]), float(data["q"])
            raw_trades.append((data["T"], data["t"], p, q, side))
            if rep is not None:
                batch.append((data["T"] / 1000.0, p, q, p * q, side, VENUE_ID["binance"]))
            t = data["T"] / 1000.0
        elif stream.startswith("btcusdt@depth"):
            if rep is None:
                pending.append(data)
                continue
            if data["u"] < (last_u or 0):
                continue
            if last_u is not None and data["pu"] != last_u:
                gaps += 1
            apply(data)
            last_u = data["u"]
            t = data["E"] / 1000.0
        else:
            continue
        if rep is None:
            continue
        if next_tick is None:
            next_tick = math.floor(t) + 1.0
            t_start = t
        while t >= next_tick:
            tick(next_tick)
            next_tick += 1.0
    tick(next_tick)
    return {"rep": rep, "per_tick": per_tick, "ended": ended, "t_start": t_start, "t_end": next_tick, "ref": ref,
            "raw": sorted(raw_trades), "step": step, "ticks": ticks, "gaps": gaps,
            "book": book}


def test_book_rebuilt_consistently(replay):
    assert replay["gaps"] == 0
    assert replay["ticks"] > 300  # ≈ 5 min 45 s of exchange time
    assert replay["step"] == 25.0
    b = replay["book"]
    assert {float(p) for p in replay["ref"][BID]} == set(b.bids)


def test_every_wall_exists_in_the_rebuilt_book(replay):
    rep, ref, step = replay["rep"], replay["ref"], replay["step"]
    walls = rep.result()["walls"]
    active = [w for w in walls if w["status"] == "active"]
    assert active, "thresholds chosen so that this recording has walls"
    side_of = {"bid": BID, "ask": ASK}
    for w in active:
        side = side_of[w["side"]]
        levels = {p: float(p) * float(q) for p, q in ref[side].items()
                  if int(index(float(p), step)) == w["bucket"]}
        assert sum(levels.values()) == pytest.approx(w["usd"], rel=1e-9)
        # The reported price is a real level on that side, the largest in its bucket.
        by_price = {float(p): u for p, u in levels.items()}
        assert w["price"] in by_price
        assert by_price[w["price"]] == max(by_price.values())
        assert w["usd"] >= 5e5 and w["age_s"] >= 10.0
        # Density: USD over the median non-empty bucket of that side within ±1% of mid (a confirmed wall
        # stays active until it shrinks, so it may have slipped under k = 5 since).
        mid = rep.records().mid
        per = defaultdict(float)
        for p, q in ref[side].items():
            per[int(index(float(p), step))] += float(p) * float(q)
        near = [u for b, u in per.items() if b * step + step > mid * 0.99 and b * step <= mid * 1.01]
        med = statistics.median(near)
        assert w["density"] == pytest.approx(w["usd"] / med, rel=1e-9)
        assert w["density"] >= 3.0
        assert w["venues"] == ["binance"]
        assert w["distance_bp"] == pytest.approx((w["price"] / mid - 1) * 1e4)
        assert (w["distance_bp"] < 0) == (side == BID)


def test_pulled_and_consumed_walls_match_the_book_and_the_trades(replay):
    """Each wall that ended: its last size is the rebuilt book's, it fell ≥ 70% from its peak, and its
    traded USD is exactly the trades on its side in its bucket handed to the ticks after the peak."""
    ended, step = replay["ended"], replay["step"]
    assert ended, "the recording has walls that end"
    for w, ref_usd in ended:
        assert w["usd"] == pytest.approx(ref_usd, rel=1e-9, abs=1e-6)
        assert w["usd"] <= 0.3 * w["peak_usd"] + 1e-6
        hitting = SELL if w["side"] == "bid" else BUY  # sells hit bids, buys lift asks
        traded = sum(r[3] for now, rows in replay["per_tick"] if w["peak_ts"] < now <= w["ended"]
                     for r in rows if r[4] == hitting and int(index(r[1], step)) == w["bucket"])
        assert w["traded_usd"] == pytest.approx(traded, rel=1e-9, abs=1e-6)
        fall = w["peak_usd"] - w["usd"]
        assert w["status"] == ("consumed" if traded >= 0.3 * fall else "pulled")


def _runs(raw):
    """Independent segmentation: same-side trades in trade-id order while the gap is ≤ GAP_MS."""
    runs, cur = [], []
    for r in raw:
        if cur and (r[4] != cur[-1][4] or r[0] / 1000.0 - cur[-1][0] / 1000.0 > GAP_MS / 1000.0):
            runs.append(cur)
            cur = []
        cur.append(r)
    if cur:
        runs.append(cur)
    return runs


def test_every_sweep_is_a_run_of_real_trades(replay):
    rep, raw = replay["rep"], replay["raw"]
    # The file delivers trades in id order with non-decreasing trade time (what the detector relies on).
    assert [r[1] for r in raw] == sorted(r[1] for r in raw)
    clusters = rep.result()["sweeps"]
    members = [m for c in clusters for m in c["members"]]
    assert members, "thresholds chosen so that this recording has sweeps"
    assert sum(c["count"] for c in clusters) == len(members)
    side_name = {BUY: "buy", SELL: "sell"}
    runs = {(run[0][0] / 1000.0, side_name[run[0][4]]): run for run in _runs(raw)}
    for s in members:
        run = runs.get((s["ts"], s["side"]))
        assert run is not None, f"no run of {s['side']} trades starts at {s['ts']}"
        assert run[-1][0] / 1000.0 == s["end_ts"]
        assert len(run) == s["trades"]
        assert sum(r[2] * r[3] for r in run) == pytest.approx(s["usd"], rel=1e-9)
        assert sum(r[3] for r in run) == pytest.approx(s["qty"], rel=1e-9)
        prices = [r[2] for r in run]
        assert (min(prices), max(prices)) == (s["price_lo"], s["price_hi"])
        assert (prices[0], prices[-1]) == (s["price_first"], s["price_last"])
        assert len(set(prices)) == s["levels"]
        assert s["bp"] == pytest.approx((s["price_hi"] - s["price_lo"]) / s["price_lo"] * 1e4)
        # It qualified: notional over its threshold, and a move of ≥ max(3 ticks, 3 bp) or ≥ 3 levels.
        assert s["usd"] >= s["threshold_usd"] >= 5e4
        moved = s["price_hi"] - s["price_lo"] >= max(0.3, 3.0 * s["price_lo"] / 1e4) - 1e-9
        assert moved or s["levels"] >= 3
        assert s["venue"] == "binance" and s["cross_venue"] is False and s["liq_count"] == 0
    # And no qualifying run was missed: every run (after the first few seconds) of ≥ 3 levels whose USD
    # is above the largest threshold any sweep reported is among the sweeps.
    top = max(s["threshold_usd"] for s in members)
    t0 = replay["t_start"] + 5.0
    found = {(s["ts"], s["side"]) for s in members}
    for run in _runs(raw):
        if run[0][0] / 1000.0 < t0 or run[-1][0] / 1000.0 > replay["t_end"] - 1.0:
            continue
        if sum(r[2] * r[3] for r in run) > top and len({r[2] for r in run}) >= 3:
            assert (run[0][0] / 1000.0, side_name[run[0][4]]) in found


def test_result_is_json(replay):
    d = replay["rep"].result()
    back = orjson.loads(orjson.dumps(d))
    assert back["verdict"] == d["verdict"] and "book:" in d["verdict"]
    assert len(back["sweeps"]) == len(d["sweeps"])


def test_absorptions_match_the_raw_trades(replay):
    """Absorbed USD is exactly the taker flow into the level's bucket over its life; a break is a real print
    beyond the level by more than the allowed excursion (max(2 ticks, 2 bp))."""
    raw, step = replay["raw"], replay["step"]
    absorptions = replay["rep"].result()["absorptions"]
    assert absorptions, "the recording has an absorption"
    for a in absorptions:
        taker = SELL if a["side"] == "bid" else BUY
        flow = [r for r in raw if a["start"] <= r[0] / 1000.0 <= a["last"] and r[4] == taker
                and int(index(r[2], step)) == a["bucket"]]
        assert sum(r[2] * r[3] for r in flow) == pytest.approx(a["usd"], rel=1e-9)
        assert flow[0][0] / 1000.0 == a["start"] and flow[-1][0] / 1000.0 == a["last"]
        assert a["refill"] == pytest.approx(a["usd"] / a["peak_visible_usd"]) and a["refill"] >= 1.5
        allowed = max(2 * 0.1, 2.0 * a["price"] / 1e4)
        beyond = [(r[0] / 1000.0, (a["price"] - r[2]) if a["side"] == "bid" else (r[2] - a["price"])) for r in raw]
        if a["outcome"] == "broke":
            assert any(t == a["outcome_ts"] and d > allowed for t, d in beyond)
            # ... and nothing broke it between its start and that print
            assert all(d <= allowed + 1e-9 for t, d in beyond if a["start"] <= t < a["outcome_ts"])
        elif a["outcome"] == "held":
            assert all(d <= allowed + 1e-9 for t, d in beyond if a["start"] <= t <= a["outcome_ts"])
