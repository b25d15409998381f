"""A snapshot source for the UI tests, the tmux end-to-end test and the UI benchmarks, built from real data.

Data: the real Binance USD-M BTCUSDT recording in ``tests/data/real/binance-usdm`` (hftbacktest, MIT):
~21k real trades and one real 1000-level REST depth snapshot. The UI needs hours of history and several
assets, the recording has 5¾ minutes of one, so:

- history: the first 80% of the trades are spread over the last ``history_s`` seconds (time-stretched),
  prices rescaled by each asset's reference price (so ETH looks like ETH, with BTC's real structure);
- flow (``FixtureSource(flow=True)``): the rest is replayed at real pace, shifted to "now", so the live
  column fills and the body shifts once per column, like a live market;
- liquidations: the real trades of the largest 3% notional stand in as liquidation rows (taker sell →
  longs liquidated), so Raw and Hybrid have real price/time structure;
- the "model": ``BookModel`` places the real depth snapshot's bid/ask notional as long/short levels, a
  stand-in for the synthetic model with the same interface (``column_profiles``, ``levels``).

Grids come from the project's own ``liqmap.core.grids.build_view`` over a real ``Market``; nothing here
draws anything. Reports are plain dicts in the shape ``liqmap.core.reports`` produces.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from liqmap.core.assets import default_universe
from liqmap.core.buckets import bucket_step, index
from liqmap.core.events import LIQ_DTYPE, TRADE_DTYPE, VENUE_ID
from liqmap.core.grids import build_view, rows_around
from liqmap.core.market import Market
from liqmap.core.snapshot import Snapshot
from liqmap.ui.source import SourceStatus, View

REC = Path(__file__).parent / "data" / "real" / "binance-usdm" / "hftbacktest_usdm_btcusdt_20240808.gz"
VENUES5 = ("binance", "bybit", "okx", "deribit", "hyperliquid")  # the live venues


@lru_cache(maxsize=1)
def real_btc() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trades, bids[(price, qty)], asks) from the real recording."""
    ts, px, qty, side = [], [], [], []
    bids = asks = None
    with gzip.open(REC, "rt") as f:
        for line in f:
            if '@trade"' in line:
                d = json.loads(line.split(" ", 1)[1])["data"]
                ts.append(d["T"] / 1000.0)
                px.append(float(d["p"]))
                qty.append(float(d["q"]))
                side.append(-1 if d["m"] else 1)  # buyer is maker → the taker sold
            elif bids is None and '"lastUpdateId"' in line:
                d = json.loads(line.split(" ", 1)[1])
                bids = np.array(d["bids"], dtype=np.float64)
                asks = np.array(d["asks"], dtype=np.float64)
    tr = np.zeros(len(ts), TRADE_DTYPE)
    tr["ts"], tr["price"], tr["qty"], tr["side"] = ts, px, qty, side
    tr["usd"] = tr["price"] * tr["qty"]
    tr["venue"] = VENUE_ID["binance"]
    return tr, bids, asks


@lru_cache(maxsize=None)
def ref_price(asset: str) -> tuple[float, float]:
    a = default_universe()[asset]
    return float(a.ref_price), float(a.tick)


def scaled(asset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Real trades and book, prices rescaled to ``asset``'s reference price; returns the factor too."""
    tr, bids, asks = real_btc()
    price, _ = ref_price(asset)
    k = price / float(np.median(tr["price"]))
    t = tr.copy()
    t["price"] *= k
    t["qty"] = t["usd"] / t["price"]
    b = bids.copy()
    a = asks.copy()
    b[:, 0] *= k
    a[:, 0] *= k
    b[:, 1] /= k
    a[:, 1] /= k
    return t, b, a, k


class BookModel:
    """Stand-in for the synthetic model: the real depth snapshot's notional as long (bids) / short (asks)
    levels, the same in every column. Same interface as ``liqmap.core.grids.SyntheticModel``."""

    def __init__(self, bids: np.ndarray, asks: np.ndarray, step: float) -> None:
        self.step = step
        bi = index(bids[:, 0], step)
        ai = index(asks[:, 0], step)
        lo = min(bi.min(), ai.min())
        hi = max(bi.max(), ai.max())
        self.lo = int(lo)
        n = int(hi - lo + 1)
        self.long = np.bincount(bi - lo, weights=bids[:, 0] * bids[:, 1], minlength=n)
        self.short = np.bincount(ai - lo, weights=asks[:, 0] * asks[:, 1], minlength=n)

    def _rows(self, arr: np.ndarray, row0: int, nrows: int) -> np.ndarray:
        out = np.zeros(nrows)
        a, b = max(row0, self.lo), min(row0 + nrows, self.lo + len(arr))
        if b > a:
            out[a - row0:b - row0] = arr[a - self.lo:b - self.lo]
        return out

    def column_profiles(self, tf, c0, c1, row0, nrows, venues=None):
        n = c1 - c0
        ramp = np.linspace(0.3, 1.0, n)[None, :]
        return (self._rows(self.long, row0, nrows)[:, None] * ramp,
                self._rows(self.short, row0, nrows)[:, None] * ramp)

    def levels(self, venues=None):
        idx = np.arange(self.lo, self.lo + len(self.long))
        return idx, self.long, self.short


def fixture_reports(asset: str, trades: np.ndarray, bids: np.ndarray, asks: np.ndarray, now: float) -> dict:
    """Walls from the real book's largest levels; sweeps from the largest real taker bursts per minute;
    absorptions at the busiest real price levels. Shapes as ``liqmap.core.reports`` emits them."""
    mid = (bids[0, 0] + asks[0, 0]) / 2
    walls = []
    for side, book in (("bid", bids), ("ask", asks)):
        usd = book[:, 0] * book[:, 1]
        for i in np.argsort(usd)[::-1][:3]:
            walls.append({"side": side, "price": float(book[i, 0]), "usd": float(usd[i]),
                          "distance_pct": float((book[i, 0] - mid) / mid * 100), "status": "active",
                          "venues": ["binance"], "age": 120.0})
    minute = np.floor(trades["ts"] / 60).astype(np.int64)
    sweeps = []
    if len(trades):
        order = np.argsort(trades["usd"])[::-1]
        seen = set()
        for i in order:
            m = int(minute[i])
            if m in seen:
                continue
            seen.add(m)
            t = trades[i]
            sweeps.append({"ts": float(t["ts"]), "side": "long" if t["side"] < 0 else "short",
                           "usd": float(t["usd"]), "price": float(t["price"]), "venue": "binance",
                           "levels": 3})
            if len(sweeps) >= 4:
                break
    absorptions = []
    if len(trades):
        vol = {}
        for p, u in zip(np.round(trades["price"][-2000:], 0), trades["usd"][-2000:]):
            vol[p] = vol.get(p, 0.0) + u
        for p, u in sorted(vol.items(), key=lambda kv: -kv[1])[:2]:
            absorptions.append({"price": float(p), "side": "bid", "usd": float(u), "duration": 45.0,
                                "outcome": "held", "ts": float(trades["ts"][-500])})
    conv = [{"price": walls[0]["price"], "parts": ["wall", "sweep", "absorption"], "usd": walls[0]["usd"]}]
    return {"walls": walls, "asymmetry": {"ratio": 1.42, "read": "bids dominate"}, "sweeps": sweeps,
            "absorptions": absorptions, "convergence": conv,
            "verdict": "magnet above +0.4% $2.1M · below -0.6% $1.3M · book: bids"}


class FixtureSource:
    """A ``SnapshotSource`` over a real ``Market`` filled from the recording (see the module doc)."""

    def __init__(self, assets=("BTC", "ETH", "SOL"), *, now: float | None = None, history_s: float = 4 * 3600,
                 flow: bool = False, label: str = "REPLAY", health: dict | None = None,
                 empty_assets: tuple[str, ...] = ()) -> None:
        self.now = time.time() if now is None else now
        self.flow = flow
        self.label = label
        self.market = Market(list(assets) + list(empty_assets), venues=VENUES5)
        self.assets = tuple(assets)
        self._pending: dict[str, np.ndarray] = {}
        self._books: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        self._cache: dict[tuple, Snapshot] = {}
        self._version = 0
        self.builds = 0
        self.health = health if health is not None else {
            v: {"state": "connected", "age": 0.4, "lag": 0.08} for v in VENUES5}
        for a in assets:
            t, b, k_asks, _ = scaled(a)
            split = int(len(t) * 0.8) if flow else len(t)
            hist, live = t[:split].copy(), t[split:].copy()
            t0, t1 = hist["ts"][0], hist["ts"][-1]
            hist["ts"] = self.now - history_s + (hist["ts"] - t0) / max(t1 - t0, 1e-9) * (history_s - 1.0)
            # Spread the real flow over the five venues (round robin) so the venue filter has something to do.
            hist["venue"] = np.arange(len(hist)) % 5
            self._add(a, hist)
            if flow:
                live["ts"] = self.now + (live["ts"] - live["ts"][0])
                live["venue"] = np.arange(len(live)) % 5
                self._pending[a] = live
            self._books[a] = (b, k_asks, hist["price"][-1])
        self._task = None
        self.running = True

    def _add(self, asset: str, trades: np.ndarray) -> None:
        if not len(trades):
            return
        self.market.add("trade", asset, trades)
        cut = np.quantile(trades["usd"], 0.97) if len(trades) > 30 else 0.0
        big = trades[trades["usd"] >= cut]
        liq = np.zeros(len(big), LIQ_DTYPE)
        for f in ("ts", "price", "qty", "usd", "venue"):
            liq[f] = big[f]
        liq["side"] = np.where(big["side"] < 0, 1, -1)
        self.market.add("liq", asset, liq)
        self._version += 1

    # ---- SnapshotSource -----------------------------------------------------------------------------
    def set_view(self, view: View) -> None:
        pass

    def status(self) -> SourceStatus:
        return SourceStatus("running", self.label, "", self.health)

    def latest(self, view: View) -> Snapshot | None:
        if view.asset not in self.assets:
            return None
        key = (view.key, self._version)
        snap = self._cache.get(key)
        if snap is not None:
            return snap
        now = self.clock()
        bids, asks, last = self._books[view.asset]
        trades = self.market.gather("trade", view.asset)
        if len(trades):
            last = float(trades["price"][-1])
        _, tick = ref_price(view.asset)
        step = bucket_step(last, tick, 5.0)
        centre = view.center if view.center is not None else last
        row0, nrows = rows_around(centre, step, max(view.rows, 8))
        spec = (View(view.asset, view.mode, view.timeframe, view.venues, rows=nrows, columns=view.columns), step, row0)
        grid = build_view(self.market, *spec, now, BookModel(bids, asks, step))
        reports = fixture_reports(view.asset, trades, bids, asks, now)
        self.builds += 1
        snap = Snapshot(version=self._version, created=now, grid=grid, reports=reports,
                        verdict=reports["verdict"], health=self.health, source=self.label, last_price=last)
        self._cache = {key: snap}  # one view on screen at a time
        return snap

    # ---- flow -----------------------------------------------------------------------------------------
    def clock(self) -> float:
        return time.time() if self.flow else self.now

    def start(self) -> None:
        if self.flow:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self, period: float = 0.25) -> None:
        while self.running:
            now = time.time()
            for a, rows in list(self._pending.items()):
                n = int(np.searchsorted(rows["ts"], now, side="right"))
                if n:
                    self._add(a, rows[:n])
                    self._pending[a] = rows[n:]
            await asyncio.sleep(period)

    def stop(self) -> None:
        self.running = False
        if self._task is not None:
            self._task.cancel()
