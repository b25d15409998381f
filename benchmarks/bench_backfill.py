"""Live start back-fill speed: 6 h × 65 assets of Binance's, Bybit's and OKX's history through the synthetic models
(issue 17 item 5).

``backfill``: seconds from the start of the back-fill until the last asset's model is warm, running the real
``liqmap.feeds.backfill.backfill`` against a real aiohttp server on 127.0.0.1 that answers each venue's paths per
symbol in its documented response shapes (the shapes ``tests/test_backfill.py`` serves): Binance's
``/fapi/v1/klines`` and ``/futures/data/openInterestHist``, Bybit's ``/v5/market/kline`` and
``/v5/market/open-interest``, OKX's ``/api/v5/market/candles`` (paged, 300 a page) and contract open-interest
history. No kline/OI response is recorded in tests/data, so each asset's 6 h — 360 one-minute bars, 72
five-minute OI samples per venue — is generated from its reference price: a seeded random walk, quote volume by
asset rank, taker buys leaning into the rises; Bybit and OKX carry 0.6 and 0.5 of Binance's size. Into a real
``Engine`` holding all 65 assets, the asset on screen (BTC) first as the live start orders it.

``detail.screen_map_s``: time until the screen asset's map is usable — its history fed and released, and its
Synthetic 1m view built by the engine. Baseline in the same run: ``bare_fetch_parse_s``, the same 65
assets' responses fetched from the same server and parsed into rows with no model (what any back-fill pays
before the model does any work). ``loop_stall_max_ms`` / ``loop_stall_p99_ms``: how late a 10 ms timer on the event
loop fired meanwhile (the back-fill's model replay runs in a worker thread; on the loop it blocked the UI).
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

T_END_MS = 1_763_900_000_000  # the last kline's close
HOURS = 6.0
SCREEN = "BTC"
SHARE = {"bybit": 0.6, "okx": 0.5}  # of Binance's volume and open interest


def _responses(asset: str, rank: int, ref: float, hours: float = HOURS) -> dict[str, object]:
    """Path → body (or a callable of the query, for OKX's pages) of one asset on the three venues."""
    from liqmap.feeds.backfill import binance, bybit, okx

    rng = np.random.default_rng(1000 + rank)
    n = int(hours * 60)
    close = ref * np.exp(np.cumsum(rng.normal(0.0, 0.0009, n)))
    opens = np.r_[ref, close[:-1]]
    high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.0007, n))
    low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.0007, n))
    scale = 4e7 / (1 + rank) ** 1.2  # quote volume per minute by rank: BTC ~$40M, the 65th ~$0.3M
    quote = scale * rng.uniform(0.5, 1.5, n)
    buy = quote * np.clip(0.5 + 40 * (close / opens - 1), 0.05, 0.95)
    t_close = T_END_MS - 60_000 * np.arange(n)[::-1]
    digits = max(2, int(-np.floor(np.log10(ref))) + 5)
    px = [tuple(f"{x:.{digits}f}" for x in row) for row in zip(opens, high, low, close, strict=True)]
    klines = [[int(tc - 59_999), *p, f"{q / c:.3f}", int(tc), f"{q:.4f}", int(q / 5e3) + 1, f"{b / c:.3f}",
               f"{b:.4f}", "0"] for tc, p, c, q, b in zip(t_close, px, close, quote, buy, strict=True)]
    t_oi = t_close[4::5]
    oi0 = scale * 300 / ref  # open interest ~ 300 minutes of volume, in base units
    oi = oi0 * (1 + 0.5 * (close[4::5] / ref - 1) + np.cumsum(rng.normal(0, 0.004, len(t_oi))))
    hist = [{"symbol": f"{asset}USDT", "sumOpenInterest": f"{x:.3f}", "sumOpenInterestValue": f"{x * c:.2f}",
             "timestamp": int(t)} for t, x, c in zip(t_oi, oi, close[4::5], strict=True)]
    by, ok = SHARE["bybit"], SHARE["okx"]
    bybit_wrap = lambda rows: json.dumps({"retCode": 0, "retMsg": "OK", "result": {"list": rows}})  # noqa: E731
    bybit_k = [[str(int(tc - 59_999)), *p, f"{q * by / c:.3f}", f"{q * by:.4f}"]
               for tc, p, c, q in zip(t_close[::-1], px[::-1], close[::-1], quote[::-1], strict=True)]
    bybit_oi = [{"openInterest": f"{2 * x * by:.3f}", "singleOpenInterest": f"{x * by:.3f}", "timestamp": str(int(t))}
                for t, x in zip(t_oi[::-1], oi[::-1], strict=True)]
    okx_c = [[str(int(tc - 59_999)), *p, f"{q * ok / c:.3f}", f"{q * ok / c:.3f}", f"{q * ok:.4f}", "1"]
             for tc, p, c, q in zip(t_close[::-1], px[::-1], close[::-1], quote[::-1], strict=True)]
    okx_oi = [[str(int(t)), f"{x * ok:.3f}", f"{x * ok:.3f}", f"{x * ok * c:.2f}"]
              for t, x, c in zip(t_oi[::-1], oi[::-1], close[4::5][::-1], strict=True)]

    def paged(rows: list, cursor: str):
        def answer(q: dict) -> str:
            older = [r for r in rows if cursor not in q or int(r[0]) < int(q[cursor])]
            return json.dumps({"code": "0", "msg": "", "data": older[:int(q.get("limit", 100))]})
        return answer

    return {binance.KLINES_PATH: json.dumps(klines), binance.OI_HIST_PATH: json.dumps(hist),
            bybit.KLINE_PATH: bybit_wrap(bybit_k), bybit.OI_PATH: bybit_wrap(bybit_oi),
            okx.CANDLES_PATH: paged(okx_c, "after"), okx.OI_PATH: paged(okx_oi, "end")}


async def _serve(bodies: dict[str, dict[str, object]]):
    """A real HTTP server on 127.0.0.1 answering every venue's paths per ``symbol`` (``instId``) query parameter."""
    from aiohttp import web

    async def answer(request):
        q = dict(request.query)
        body = bodies[request.path].get(q.get("symbol", q.get("instId", "")))
        if body is None:
            return web.Response(status=400, text='{"code":-1121,"msg":"Invalid symbol."}')
        return web.Response(text=body(q) if callable(body) else body, content_type="application/json")

    app = web.Application()
    for path in bodies:
        app.router.add_get(path, answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def _run() -> dict:
    import aiohttp

    from liqmap.config import DEFAULTS
    from liqmap.core.assets import default_universe
    from liqmap.core.engine import Engine
    from liqmap.core.market import Market
    from liqmap.core.view import View
    from liqmap.feeds.backfill import BACKFILL_VENUES, backfill, fetch_asset
    from liqmap.feeds.venues import symbol_for

    uni = default_universe()
    assets = [a for a in uni if all(symbol_for(v, a) for v in BACKFILL_VENUES)]
    t0 = time.perf_counter()
    bodies: dict[str, dict[str, object]] = {}
    for rank, a in enumerate(assets):
        for path, body in _responses(a, rank, uni[a].ref_price).items():
            venue = "okx" if path.startswith("/api/v5") else "bybit" if path.startswith("/v5") else "binance"
            bodies.setdefault(path, {})[symbol_for(venue, a)] = body
    gen_s = time.perf_counter() - t0
    runner, base = await _serve(bodies)
    try:
        cfg = copy.deepcopy(DEFAULTS)
        for v in BACKFILL_VENUES:
            cfg["feeds"]["endpoints"][f"{v}_rest"] = base
        cfg["feeds"]["backfill_hours"] = HOURS
        cfg["universe"]["assets"] = assets

        # baseline: the same fetches and parses, no model
        async with aiohttp.ClientSession() as s:
            t0 = time.perf_counter()
            rows = 0
            rests = {v: base for v in BACKFILL_VENUES}
            for a in [SCREEN] + [x for x in assets if x != SCREEN]:
                oi, tr, _ = await fetch_asset(s, rests, {v: uni[a].markets[v] for v in BACKFILL_VENUES}, HOURS, 10.0)
                rows += len(oi) + len(tr)
            bare = time.perf_counter() - t0

        now = T_END_MS / 1000.0 + 1.0
        eng = Engine(cfg, Market(assets), clock=lambda: now)
        marks: dict[str, float] = {}
        release = eng.release
        start = time.perf_counter()
        cpu0 = time.process_time()

        def timed_release(asset: str) -> None:
            release(asset)
            if asset not in marks:
                marks[asset] = time.perf_counter() - start
                if asset == SCREEN:  # the engine's first build of the screen view: the map is usable
                    view = View(SCREEN, "synthetic", "1m", tuple(eng.market.venues), 60, None, 240)
                    snap = eng.build(view, now, force=True)
                    marks["screen_map"] = time.perf_counter() - start
                    marks["screen_levels"] = float(snap.grid is not None)

        eng.release = timed_release
        stalls: list[float] = []
        ticking = asyncio.Event()

        async def ticker() -> None:
            # the event loop's responsiveness meanwhile: how late a 10 ms timer fires (the UI's frame budget)
            while not ticking.is_set():
                t = time.perf_counter()
                await asyncio.sleep(0.01)
                stalls.append(time.perf_counter() - t - 0.01)

        tick = asyncio.ensure_future(ticker())
        res = await backfill(eng, cfg, assets, first=SCREEN, now=lambda: now)
        total = time.perf_counter() - start
        ticking.set()
        await tick
        cpu = time.process_time() - cpu0
        ok = [a for a, r in res.items() if r.startswith("ok") and r.endswith(", ".join(BACKFILL_VENUES) + ")")]
        warm = [a for a in assets if (m := eng.state(a).model) is not None and m.stats["intervals"] > 0]
        b, lo, sh = eng.state(SCREEN).model.levels()
        model_s = sum(s.model.memory_bytes() for s in eng.states() if s.model is not None)
    finally:
        await runner.cleanup()
    return {
        "value": round(total, 2), "unit": f"s to the last of {len(assets)} models warm ({HOURS:g} h each)",
        "target": 180.0, "ok": total <= 180.0 and marks.get("screen_map", 1e9) <= 10.0 and len(ok) == len(assets),
        "detail": {
            "assets": len(assets), "venues": list(BACKFILL_VENUES), "ok_assets": len(ok), "warm_models": len(warm),
            "order_first": list(res)[:3],
            "screen_asset": SCREEN, "screen_fed_s": round(marks.get(SCREEN, float("nan")), 3),
            "screen_map_s": round(marks.get("screen_map", float("nan")), 3), "screen_map_target_s": 10.0,
            "screen_levels": int(len(b)), "screen_usd": round(float(lo.sum() + sh.sum())),
            "cpu_s": round(cpu, 2), "rows": rows, "bare_fetch_parse_s": round(bare, 2),
            "ratio_vs_bare": round(total / bare, 2) if bare else None,
            "model_s_per_asset": round((total - bare) / len(assets), 4),
            "models_bytes": int(model_s), "generate_s": round(gen_s, 2),
            "loop_stall_max_ms": round(1e3 * max(stalls, default=float("nan")), 1),
            "loop_stall_p99_ms": round(1e3 * float(np.percentile(stalls, 99)), 1) if stalls else None,
        },
    }


def backfill_bench() -> dict:
    return asyncio.run(_run())


BENCHMARKS = {"backfill": backfill_bench}

if __name__ == "__main__":
    print(json.dumps({"name": "backfill", **backfill_bench()}))
