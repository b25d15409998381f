"""The reports and the verdict restated for a venue filter (``liqmap.core.reports.venue_view.for_venues``).

Two venues disagree on purpose: binance holds a bid wall under price and a bid-heavy book, okx an ask wall
above and an ask-heavy book. Over all venues the verdict names both magnets; filtered to one venue it must
name only that venue's wall, its book side, and the model levels of that venue alone.
"""

from __future__ import annotations

import numpy as np

from liqmap.core.book import Book
from liqmap.core.buckets import index
from liqmap.core.events import VENUE_ID
from liqmap.core.reports import Reports, for_venues

STEP = 10.0
MID = 60000.0
CFG = {"reports": {
    "walls": {"k_median": 5.0, "range_pct": 3.0, "min_usd": 1e6, "min_usd_by_asset": {"BTC": 1e6},
              "min_age_s": 10.0, "min_seen_share": 0.8, "pull_drop": 0.7, "traded_share": 0.3,
              "keep_ended_s": 300.0, "per_venue": True, "venue_share": 0.1, "max_per_side": 10},
}}
BID_WALL, ASK_WALL = 59400.0, 60900.0


def book(bid_size: float, ask_size: float, walls: dict[float, float]) -> Book:
    """One level per bucket ±1% around mid, plus ``walls`` {price: BTC} (negative price side by sign)."""
    bids = {MID - STEP * i: bid_size for i in range(1, 61)}
    asks = {MID + STEP * i: ask_size for i in range(1, 61)}
    for p, q in walls.items():
        (bids if p < MID else asks)[p] = q
    b = Book()
    b.replace(list(bids.items()), list(asks.items()))
    return b


def books() -> dict[str, Book]:
    return {"binance": book(2.0, 0.5, {BID_WALL: 60.0}),  # $3.6M bid wall, bid-heavy book
            "okx": book(0.5, 2.0, {ASK_WALL: 50.0})}  # $3.0M ask wall, ask-heavy book


def synth_for(levels: dict[float, float]):
    """Model levels as the synthetic model hands them out: (bucket int64, long USD, short USD)."""
    idx = np.array([int(index(p, STEP)) for p in levels], dtype=np.int64)
    usd = np.array(list(levels.values()))
    longs = np.where(idx * STEP < MID, usd, 0.0)
    return idx, longs, usd - longs


def run_reports(synth=None) -> tuple[Reports, float]:
    rep = Reports("BTC", CFG, tick=0.1)
    t = 1_700_000_000.0
    for k in range(13):  # 12 s: past min_age_s, so the walls are confirmed
        rep.update(t + k, books(), step=STEP, synth=synth)
    return rep, t + 12


def test_all_venue_verdict_names_both_walls_and_records_carry_the_breakdown():
    rep, _ = run_reports()
    res = rep.result()
    assert res["verdict"].startswith("▼ 59,400 −1.0% wall $3.6M · ▲ 60,900 +1.5% wall $3.0M · book: ")
    by_side = {w["side"]: w for w in res["walls"]}
    # The wall level on binance plus okx's ordinary 0.5 BTC ladder level in the same bucket.
    assert by_side["bid"]["venue_usd"] == {"binance": BID_WALL * 60.0, "okx": BID_WALL * 0.5}
    assert sum(by_side["bid"]["venue_usd"].values()) == by_side["bid"]["usd"]
    assert set(res["asymmetry"]["by_venue"]) == {"binance", "okx"}


def test_filter_to_one_venue_changes_the_verdict_walls_and_book_read():
    rep, now = run_reports()
    res = rep.result()
    b = for_venues(res, ["binance"], now=now, step=STEP)
    o = for_venues(res, ["okx"], now=now, step=STEP)
    # Each venue's verdict names only its own wall and its own book side.
    assert "▼ 59,400" in b["verdict"] and "▲" not in b["verdict"]
    assert "book: bids" in b["verdict"]
    assert "▲ 60,900" in o["verdict"] and "▼" not in o["verdict"]
    assert "book: asks" in o["verdict"]
    assert "book: bids" in res["verdict"] or "book: asks" in res["verdict"]
    assert b["verdict"] != o["verdict"] != res["verdict"]
    # Walls: binance's bid wall only, restated to binance's USD (the whole wall sits on binance).
    assert [(w["side"], w["price"]) for w in b["walls"]] == [("bid", BID_WALL)]
    assert [(w["side"], w["price"]) for w in o["walls"]] == [("ask", ASK_WALL)]
    assert b["walls"][0]["venues"] == ["binance"]
    # The book read is exactly the one over that venue's book alone.
    only = Reports("BTC", CFG, tick=0.1)
    for k in range(13):
        only.update(now - 12 + k, {"binance": books()["binance"]}, step=STEP)
    alone = only.result()["asymmetry"]
    assert abs(b["asymmetry"]["bid_share"] - alone["bid_share"]) < 1e-12
    assert b["asymmetry"]["dominant"] == "bids" and o["asymmetry"]["dominant"] == "asks"
    assert b["venues"] == ["binance"]


def test_a_shared_wall_is_restated_to_the_chosen_venues_part():
    shared = {"binance": book(1.0, 1.0, {BID_WALL: 45.0}), "okx": book(1.0, 1.0, {BID_WALL: 15.0})}
    rep = Reports("BTC", CFG, tick=0.1)
    t = 1_700_000_000.0
    for k in range(13):
        rep.update(t + k, shared, step=STEP)
    res = rep.result()
    wall = next(w for w in res["walls"] if w["side"] == "bid")
    part = sum(u for v, u in wall["venue_usd"].items() if v == "okx")
    o = for_venues(res, ["okx"], now=t + 12, step=STEP)
    assert abs(o["walls"][0]["usd"] - part) < 1e-6 and o["walls"][0]["usd"] < wall["usd"] / 2
    assert o["walls"][0]["peak_usd"] == wall["peak_usd"]  # peak stays the all-venue number


def test_model_levels_of_the_chosen_venue_drive_the_magnets():
    rep, now = run_reports()
    res = rep.result()
    # binance's own model holds a $9M long cluster at 59,000 (bigger than its wall); okx's holds nothing below.
    syn_b = synth_for({59000.0: 9e6})
    b = for_venues(res, ["binance"], now=now, step=STEP, synth=syn_b)
    assert b["verdict"].startswith("▼ 59,000 −1.7% liqs $9.0M")
    o = for_venues(res, ["okx"], now=now, step=STEP, synth=synth_for({61200.0: 5e5}))
    assert "▼" not in o["verdict"] and o["verdict"].startswith("▲ 60,900 +1.5% wall $3.0M")


def test_filter_to_every_venue_reproduces_the_all_venue_reports():
    syn = synth_for({59000.0: 2e6, 61000.0: 1e6})
    rep, now = run_reports(syn)
    res = rep.result()
    again = for_venues(res, ["binance", "okx"], now=now, step=STEP, synth=syn)
    assert again["verdict"] == res["verdict"]
    assert [(w["side"], w["price"], w["usd"]) for w in again["walls"]] == \
        [(w["side"], w["price"], w["usd"]) for w in res["walls"]]
    assert again["asymmetry"]["bid_share"] == res["asymmetry"]["bid_share"]


def test_sweeps_and_absorptions_follow_the_filter():
    from liqmap.core.events import BUY, trades as trade_rows

    rep = Reports("BTC", CFG, tick=0.1)
    t = 1_700_000_000.0
    for k in range(13):
        rep.update(t + k, books(), step=STEP)
    # A fast run of taker buys through many levels on okx only: a sweep there, none on binance.
    rows = [(t + 13 + i * 0.01, MID + 10 * i, 40.0, (MID + 10 * i) * 40.0, BUY, VENUE_ID["okx"])
            for i in range(12)]
    rep.update(t + 13, books(), trade_rows(rows), step=STEP)
    rep.update(t + 15, books(), step=STEP)
    res = rep.result()
    assert res["sweeps"] and all("okx" in c["venues"] for c in res["sweeps"])
    o = for_venues(res, ["okx"], now=t + 15, step=STEP)
    b = for_venues(res, ["binance"], now=t + 15, step=STEP)
    assert [c["total_usd"] for c in o["sweeps"]] == [c["total_usd"] for c in res["sweeps"]]
    assert b["sweeps"] == []


def test_verdict_names_what_each_magnet_is_and_does_not_flip_on_a_flickering_wall():
    from types import SimpleNamespace

    from liqmap.core.reports.verdict import VerdictMemory, verdict

    step, mid = 25.0, 64_000.0
    wall = SimpleNamespace(status="active", bucket=int(index(63_600.0, step)), usd=9e6)

    def levels(d: dict) -> tuple:  # long levels below mid, at this test's step
        idx = np.array([int(index(p, step)) for p in d], dtype=np.int64)
        usd = np.array(list(d.values()))
        return idx, usd, np.zeros_like(usd)

    cluster = levels({63_300.0: 5e4})
    mem = VerdictMemory(switch_ratio=1.5, hold_s=30.0)
    t = 1_700_000_000.0
    assert verdict(mid, step, [wall], None, [], cluster, memory=mem, now=t).startswith("▼ 63,600 −0.6% wall $9.0M")
    gone = SimpleNamespace(status="pulled", bucket=wall.bucket, usd=9e6)
    # pulled for a moment: still the wall, not the $50k cluster (it was 63,600 → 63,300 → 63,600 before)
    assert verdict(mid, step, [gone], None, [], cluster, memory=mem, now=t + 5).startswith("▼ 63,600 −0.6% wall")
    assert verdict(mid, step, [wall], None, [], cluster, memory=mem, now=t + 6).startswith("▼ 63,600 −0.6% wall")
    # gone for longer than the hold: the cluster is named, and says it is liquidations
    assert verdict(mid, step, [gone], None, [], cluster, memory=mem, now=t + 6 + 31).startswith(
        "▼ 63,300 −1.1% liqs $50k")
    # something much larger replaces a held magnet at once
    big = levels({63_300.0: 5e4, 63_000.0: 4e7})
    assert verdict(mid, step, [wall], None, [], big, memory=mem, now=t + 40).startswith("▼ 63,000 −1.6% liqs $40M")
    # price trades through the named magnet: it is no longer below; the next one is named
    below = verdict(62_900.0, step, [wall], None, [], big, memory=mem, now=t + 41)
    assert not below.startswith("▼ 63,000") and below.startswith("▲ 63,000")  # now above: named on that side
    # without memory (a one-off restatement) the strongest candidate is named as before
    assert verdict(mid, step, [gone], None, [], cluster).startswith("▼ 63,300 −1.1% liqs $50k")
