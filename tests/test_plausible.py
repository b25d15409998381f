"""No impossible number leaves a parser (issue 18 item 1): real demo frames of all five venues, one number
replaced by an absurd value, go through the real venue parsers; no output row and no book level may then
be non-finite, non-positive where it cannot be, beyond the venue's price band or the USD ceilings, or far
from the clock. Rejections are counted by reason. The engine then survives the most extreme values that
still pass (a report with only finite numbers)."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import random
from collections import Counter

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqmap.config import DEFAULTS
from liqmap.core.events import ASK, BID
from liqmap.feeds import plausible as pl
from liqmap.feeds.demo import DemoSource
from liqmap.feeds.parser import FrameParser
from liqmap.feeds.recording import RecordingWriter, contracts_of
from liqmap.feeds.replay import replay_headless

START = 1_790_000_000.0
ASSETS = ["BTC", "PEPE"]  # PEPE: a 1000-lot symbol on most venues, prices near 1e-5
SRC = DemoSource({"demo": {**DEFAULTS["demo"]}}, assets=ASSETS, seed=5, start=START)
FRAMES = [f for f in SRC.run_for(40) if isinstance(f[3], str)]
WARM = 300  # context frames before the mutated one, so every venue has a last good price

ABSURD = ["1e30", 1e30, "1.8e19", 1e308, "-5", -5, "nan", "NaN", "inf", "-inf", "Infinity", "0", 0, "1e-30",
          "１２３", "６５０００", "9" * 40, 1e300, "1e400", "0x10", "1_000", " 12 "]


def _ref_prices() -> dict[str, float]:
    """Each asset's median trade price on the clean frames: the yardstick for 'beyond the band'."""
    got: dict[str, list[float]] = {a: [] for a in ASSETS}
    parsers = {v: FrameParser(v, SRC.assets, lambda k, a, r: got[a].extend(r["price"]) if k == "trade" else None)
               for v in {f[1] for f in FRAMES}}

    async def go():
        for t, v, c, raw in FRAMES:
            await parsers[v].feed(raw, t, c)

    asyncio.run(go())
    return {a: float(np.median(p)) for a, p in got.items()}


REF = _ref_prices()


def _numeric_paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numeric_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numeric_paths(v, prefix + (i,))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix
    elif isinstance(obj, str):
        try:
            float(obj)
            yield prefix
        except ValueError:
            pass


def _mutate(raw: str, rnd: random.Random, value=None) -> str | None:
    msg = orjson.loads(raw)
    paths = list(_numeric_paths(msg))
    if not paths:
        return None
    path = rnd.choice(paths)
    node = msg
    for p in path[:-1]:
        node = node[p]
    old = node[path[-1]]
    if value is None:
        if rnd.random() < 0.5:
            value = rnd.choice(ABSURD)
        else:  # the right number off by orders of magnitude, as a string or a number like the original
            x = float(old) * 10.0 ** rnd.randint(-40, 40)
            value = repr(x) if isinstance(old, str) else x
    node[path[-1]] = value
    return json.dumps(msg, ensure_ascii=rnd.random() < 0.5, allow_nan=True)


def _wrong_rows(kind: str, asset: str, rows: np.ndarray, receipt: float) -> int:
    ref = REF[asset]
    price = rows["mark" if kind == "oi" else "price"]
    bad = ~np.isfinite(rows["ts"]) | (rows["ts"] < receipt - pl.PAST_S - 1e-9) | (rows["ts"] > receipt + pl.FUTURE_S)
    bad |= ~np.isfinite(price) | (price < ref / pl.BAND ** 2) | (price > ref * pl.BAND ** 2)
    if kind == "oi":
        bad |= ~np.isfinite(rows["oi"]) | (rows["oi"] < 0) | ~(rows["oi_usd"] <= pl.MAX_OI_USD) | (rows["oi_usd"] < 0)
    else:
        bad |= ~np.isfinite(rows["qty"]) | (rows["qty"] <= 0) | ~(rows["usd"] <= pl.MAX_EVENT_USD) | (rows["usd"] <= 0)
    return int(np.count_nonzero(bad))


def _wrong_levels(asset: str, book) -> int:
    ref = REF[asset]
    n = 0
    for side in (BID, ASK):
        p, q = book.levels(side)
        n += int(np.count_nonzero(~np.isfinite(p) | ~np.isfinite(q) | (q <= 0) | (p < ref / pl.BOOK_BAND ** 2)
                                  | (p > ref * pl.BOOK_BAND ** 2) | ~(p * q <= pl.MAX_LEVEL_USD)))
    return n


def _run_one(index: int, mutated: str) -> tuple[int, int, int]:
    """(rows out, wrong rows/levels out, values rejected) for one mutated frame after its venue's context."""
    t, venue, conn, _ = FRAMES[index]
    out: list[tuple[str, str, np.ndarray]] = []
    parser = FrameParser(venue, SRC.assets, lambda k, a, r: out.append((k, a, r)))

    async def go():
        for ft, fv, fc, raw in FRAMES[:index]:
            if fv == venue:
                await parser.feed(raw, ft, fc)
        out.clear()
        before = sum(parser.rejected.values()) + sum(parser.errors.values())
        await parser.feed(mutated, t, conn)
        return sum(parser.rejected.values()) + sum(parser.errors.values()) - before

    rejected = asyncio.run(go())
    wrong = sum(_wrong_rows(k, a, r, t) for k, a, r in out)
    wrong += sum(_wrong_levels(a, b) for a, b in parser.books.items())
    return sum(len(r) for _, _, r in out), wrong, rejected


def fuzz(n: int, seed: int = 1) -> Counter:
    rnd = random.Random(seed)
    c: Counter = Counter()
    while c["mutations"] < n:
        i = rnd.randrange(WARM, len(FRAMES))
        mutated = _mutate(FRAMES[i][3], rnd)
        if mutated is None:
            continue
        rows, wrong, rejected = _run_one(i, mutated)
        c["mutations"] += 1
        c["rows_out"] += rows
        c["accepted_wrong"] += wrong
        c["rejected_or_dropped"] += rejected > 0
    return c


def test_fuzz_accepts_nothing_wrong():
    c = fuzz(400)
    print(dict(c))
    assert c["mutations"] == 400 and c["accepted_wrong"] == 0
    assert c["rejected_or_dropped"] > 100  # the absurd values were seen and counted, not silently lost


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(WARM, len(FRAMES) - 1), seed=st.integers(0, 10**6),
       value=st.sampled_from(ABSURD) | st.floats() | st.integers(-10**30, 10**30)
       | st.text(alphabet="0123456789.eE+-١٢٣４５６", min_size=1, max_size=12))
def test_property_no_parser_emits_an_impossible_number(index, seed, value):
    mutated = _mutate(FRAMES[index][3], random.Random(seed), value)
    if mutated is None:
        return
    _, wrong, _ = _run_one(index, mutated)
    assert wrong == 0


def test_full_width_digits_and_huge_values_are_counted_by_reason():
    i = next(i for i in range(WARM, len(FRAMES)) if FRAMES[i][1] == "binance" and "aggTrade" in FRAMES[i][3])
    msg = orjson.loads(FRAMES[i][3])
    for value, reason in (("６５０００.5", ("frame", "non_ascii_number")),
                          ("1e30", ("trade", "price_out_of_bounds")),
                          (repr(REF["BTC"] * 50), ("trade", "price_off_band"))):
        msg["data"]["p"] = value
        t, venue, conn, _ = FRAMES[i]
        out = []
        parser = FrameParser(venue, SRC.assets, lambda k, a, r: out.append(r) if k == "trade" else None)

        async def go():
            for ft, fv, fc, raw in FRAMES[:i]:
                if fv == venue:
                    await parser.feed(raw, ft, fc)
            out.clear()
            await parser.feed(json.dumps(msg, ensure_ascii=False), t, conn)

        asyncio.run(go())
        assert not out, value
        got = parser.errors if reason[0] == "frame" else parser.rejected
        assert got[reason] == 1, (value, dict(parser.errors), dict(parser.rejected))


def test_band_reanchors_after_a_real_regime_change():
    p = pl.Plausibility()
    dt = np.dtype([("ts", "f8"), ("price", "f8"), ("qty", "f8"), ("usd", "f8"), ("side", "i1"), ("venue", "u1")])

    def rows(px):
        r = np.zeros(1, dtype=dt)
        r["ts"], r["price"], r["qty"], r["usd"], r["side"] = 1.7e9, px, 1.0, px, 1
        return r

    assert len(p.rows("trade", "X", rows(100.0), 1.7e9)) == 1
    assert len(p.rows("trade", "X", rows(5000.0), 1.7e9)) == 0  # ×50 in one print: refused
    for _ in range(pl.REANCHOR - 2):
        assert len(p.rows("trade", "X", rows(5000.0), 1.7e9)) == 0
    p.rows("trade", "X", rows(5000.0), 1.7e9)  # the 20th agreeing print moves the reference
    assert len(p.rows("trade", "X", rows(5001.0), 1.7e9)) == 1
    assert p.rejected[("trade", "price_off_band")] == pl.REANCHOR


def _walk_numbers(x, path="report"):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _walk_numbers(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _walk_numbers(v, f"{path}[{i}]")
    elif isinstance(x, float):
        yield path, x


async def test_engine_survives_the_most_extreme_values_that_pass(tmp_path):
    """Trades at the edge of the band and at the USD ceiling, a book level at the ceiling: the headless
    replay (parsers → rings → engine → model → reports) finishes with every report number finite."""
    src = DemoSource({"demo": {**DEFAULTS["demo"]}}, assets=["BTC"], seed=3, start=START)
    path = tmp_path / "edge.jsonl.gz"
    ref = None
    with RecordingWriter(path, ["binance", "bybit", "okx", "bitmex", "deribit"], ["BTC"],
                         contracts=contracts_of(src.assets)) as w:
        for n, (t, v, c, raw) in enumerate(src.run_for(120)):
            if v == "binance" and isinstance(raw, str) and '"aggTrade"' in raw and n > 200:
                m = orjson.loads(raw)
                ref = ref or float(m["data"]["p"])
                edge = ref * (pl.BAND * 0.99 if n % 2 else 1 / (pl.BAND * 0.99))
                m["data"]["p"] = repr(edge)
                m["data"]["q"] = repr(pl.MAX_EVENT_USD * 0.99 / edge)
                raw = json.dumps(m)
            w.frame(t, v, c, raw)
    rep = await replay_headless(str(path), {**DEFAULTS, "universe": {**DEFAULTS["universe"], "assets": ["BTC"]}})
    assert rep["complete"] and rep["error"] is None
    btc = rep["assets"]["BTC"]
    assert btc["trades"]["usd"] > pl.MAX_EVENT_USD  # the extreme trades were accepted ...
    nums = list(_walk_numbers(rep))
    assert nums and all(math.isfinite(x) for _, x in nums)  # ... and nothing overflowed
    assert btc["synthetic"] is not None and btc["synthetic"]["total_long_usd"] >= 0
    with gzip.open(path, "rt") as f:
        assert sum(1 for _ in f) > 1000
