"""Replay: a recording pushed through the same venue parsers as live (``FrameParser`` drives the live feed
classes' own ``message_handler``), into a ``Market`` and L2 books — only the socket differs.

Two uses:

- ``replay_headless(path, cfg)`` processes the whole file as fast as possible, then builds the report of
  ``docs/replay-report.md``.
- ``ReplaySource(path, cfg, market, speed)`` is the app's data source for ``liqmap --replay FILE``: ``run()``
  paces frames by receipt time × ``speed`` into the parsers; ``now()`` is the recording's clock (give it to
  the engine so the map's time axis is the recording's), ``health()`` the per-venue health, ``books(asset)``
  the books per venue.

Both are one path: the ``ReplaySource`` in a ``Runtime``. With an engine there, the source steps it in
recording time (``Engine.ingest`` of every asset every ``replay.tick_seconds`` of receipt time, before the
frames after the tick, so the synthetic model and the reports evolve as they would have live), and the
engine's own loop only builds (``Engine.ingest_by_source``). The reports therefore depend on the file alone,
not on the speed or the machine: the TUI at the end of a replay shows the headless report's.

A damaged file stops the replay at the damage with everything before it processed; the one-line
``RecordingError`` is kept in ``.error`` (and in the report), and the commands exit 2.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from liqmap.core.assets import Asset
from liqmap.core.book import Book
from liqmap.core.events import ASK, BID, PRICE_KIND_NAMES, REPLAY_ONLY_VENUES, VENUES
from liqmap.core.market import Market

from .ingest import Ingest
from .recording import InfoAnswer, Recording, RecordingError, assets_from_contracts, open_recording

REPORT_KEY = "liqmap_replay_report"
REPORT_VERSION = 1
# A quiet stretch longer than this (recording seconds) is skipped: headless replay steps the engine once
# across it instead of once per tick (a 6 h gap took over 300 s), and the paced app jumps it instead of
# waiting (a 1 h gap was 1 h of a frozen map). Skipped gaps are counted and shown.
GAP_S = 30.0


def replay_setting(cfg: dict | None, key: str, default: Any) -> Any:
    return ((cfg or {}).get("replay") or {}).get(key, default)


def Replayer(cfg: dict, market: Market, assets: dict[str, Asset] | Iterable[str] | None = None,
             on_book: Callable[[str, str, Book], None] | None = None) -> Ingest:
    """A recording's ingest: the one sink (``feeds/ingest.py``) on the recording's clock, every parsed
    liquidation kept for the report."""
    return Ingest(cfg, market, assets, keep_liquidations=True, on_book=on_book)


# ---------------------------------------------------------------------------------------------- headless


def _venue_report(replayer: Ingest, market: Market) -> dict[str, Any]:
    out: dict[str, Any] = {}
    health = replayer.health()
    for venue in sorted(set(replayer.parsers) | set(health)):
        h = health.get(venue, {})
        p = replayer.parsers.get(venue)
        stats = dict(p.stats) if p is not None else {}
        events = {k: int(n) for k, n in sorted((p.events if p is not None else {}).items())}
        out[venue] = {
            "frames": int(h.get("frames", 0)),
            "rest_frames": int(h.get("rest_frames", 0)),
            "events": events,
            "accepted": {k: int(n) for k, n in sorted(h.get("events", {}).items())},
            "book_updates": int(replayer.book_updates.get(venue, 0)),
            "errors": int(h.get("parse_errors", 0)),
            "errors_by_kind": dict(sorted(h.get("errors_by_kind", {}).items())),
            "parser": {k: int(v) for k, v in sorted(stats.items()) if isinstance(v, (int, np.integer))},
            "implausible": ({f"{k}:{r}": int(n) for (k, r), n in sorted(p.rejected.items())}
                            if p is not None else {}),
            "lag_ewma_s": h.get("lag_ewma"),
            "lag_max_s": h.get("lag_max"),
        }
    for venue, n in sorted(replayer.skipped_venues.items()):
        out.setdefault(venue, {"frames": 0})
        out[venue]["skipped_frames"] = int(n)
    return out


def _book_report(book: Book, depth: int) -> dict[str, Any]:
    bp, bq = book.levels(BID, depth)
    ap, aq = book.levels(ASK, depth)
    return {
        "ts": float(book.ts),
        "levels": {"bids": len(book.bids), "asks": len(book.asks)},
        "bids": [[float(p), float(q)] for p, q in zip(bp, bq)],
        "asks": [[float(p), float(q)] for p, q in zip(ap, aq)],
    }


def _liq_rows(liqs: np.ndarray, limit: int) -> list[dict[str, Any]]:
    rows = liqs[-limit:] if limit and len(liqs) > limit else liqs
    return [
        {
            "ts": float(r["ts"]),
            "venue": VENUES[int(r["venue"])],
            "side": "long" if int(r["side"]) > 0 else "short",
            "price": float(r["price"]),
            "qty": float(r["qty"]),
            "usd": float(r["usd"]),
            "price_kind": PRICE_KIND_NAMES[int(r["price_kind"])] if int(r["price_kind"]) < len(PRICE_KIND_NAMES) else "",
        }
        for r in rows
    ]


def _asset_report(asset: str, cfg: dict, market: Market, replayer: Ingest, engine) -> dict[str, Any]:
    depth = int(replay_setting(cfg, "report_book_levels", 20))
    limit = int(replay_setting(cfg, "report_max_liquidations", 5000))
    trades = market.gather("trade", asset)
    liqs = replayer.liquidations(asset)
    oi = market.gather("oi", asset)
    books = replayer.books(asset)
    last_price = float(trades["price"][-1]) if len(trades) else None
    if last_price is None:
        mids = [b.mid() for b in books.values() if b.mid()]
        last_price = float(np.median(mids)) if mids else (float(oi["mark"][-1]) if len(oi) else None)
    step = None
    synthetic = None
    reports = None
    exact = None
    if engine is not None:
        st = engine.state(asset)
        step = st.step
        if st.model is not None:
            idx, lo, sh = st.model.levels()
            # the forecast weighs each tier over its leverage band (docs/model.md §5), not the drawn thin lines
            f_lv = st.model.forecast_levels() if hasattr(st.model, "forecast_levels") else (idx, lo, sh)
            synthetic = {
                "levels": [{"price": float(i * step), "long_usd": float(a), "short_usd": float(b)}
                           for i, a, b in zip(idx, lo, sh)],
                "total_long_usd": float(np.sum(lo)),
                "total_short_usd": float(np.sum(sh)),
                # every USD here is the model's placed USD × this (public OI ÷ OI held, docs/model.md §3 step 12)
                "usd_scale": float(st.model.usd_scale()) if hasattr(st.model, "usd_scale") else 1.0,
                "forecast_levels": [{"price": float(i * step), "long_usd": float(a), "short_usd": float(b)}
                                    for i, a, b in zip(*f_lv)],
                "forecast": _forecast_report(st.model, f_lv, step, last_price, st.reachlog),
            }
            # how the forecasts made along the recording did once their hour had passed (core/hitrate.py)
            synthetic["forecast"]["hit"] = st.hitrate.score().to_dict()
            # the chance of reach those forecasts' clusters printed against what price did within their hour
            # (core/calibration.py): as printed, and the walk's raw chance
            synthetic["forecast"]["reliability"] = st.reachlog.table()
            synthetic["forecast"]["reliability_raw"] = st.reachlog.table(raw=True)
        reports = st.report_dicts or None
        # exact positions (Hyperliquid's tracked wallets) and the model's live accuracy against them
        exact = st.exact.view.to_dict() if st.exact is not None and st.exact.view is not None else None
    if step is None and last_price:
        from liqmap.core.buckets import bucket_step

        a = replayer.assets.get(asset)
        step = bucket_step(last_price, a.tick if a else 0.0, float(cfg.get("buckets", {}).get("target_bp", 5.0)))
    oi_last = {}
    for v in VENUES:
        sel = oi[oi["venue"] == VENUES.index(v)] if len(oi) else oi
        if len(sel):
            oi_last[v] = {"ts": float(sel["ts"][-1]), "oi": float(sel["oi"][-1]), "oi_usd": float(sel["oi_usd"][-1])}
    return {
        "step": step,
        "last_price": last_price,
        "trades": {"count": int(replayer.trade_count[asset]), "usd": float(replayer.trade_usd[asset])},
        "open_interest": oi_last,
        "books": {v: _book_report(b, depth) for v, b in sorted(books.items())},
        "liquidations": _liq_rows(liqs, limit),
        "liquidation_totals": {
            "count": int(len(liqs)),
            "long_usd": float(liqs["usd"][liqs["side"] > 0].sum()) if len(liqs) else 0.0,
            "short_usd": float(liqs["usd"][liqs["side"] < 0].sum()) if len(liqs) else 0.0,
        },
        "synthetic": synthetic,
        "reports": _plain(reports),
        "exact": _plain(exact),
    }


def _forecast_report(model, levels, step: float, price: float | None, reachlog=None) -> dict[str, Any]:
    """The model's next-hour forecast at the end of the replay (the engine's own summary, top 5 clusters, the
    chance of reach through the asset's calibration map as the engine prints it)."""
    from liqmap.core.calibration import calibration_for, regime_of
    from liqmap.core.forecast import summary

    fc = summary(levels, step, price, model.sigma_hour, model.horizon_hours, model.tails, top=5,
                 calibration=calibration_for(getattr(model, "params", None), reachlog, regime_of(model)),
                 resting=model.resting_levels() if hasattr(model, "resting_levels") else None)
    return {"horizon_hours": fc["horizon_hours"], "sigma_hour": fc["sigma_hour"], "calibration": fc["calibration"],
            "clusters": fc["clusters"]}


def _plain(x: Any) -> Any:
    """JSON-ready: numpy scalars/arrays and dataclass-likes turned into plain values."""
    if x is None or isinstance(x, (str, bool, int)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, np.generic):
        return _plain(x.item())
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [_plain(v) for v in x]
    if hasattr(x, "to_dict"):
        return _plain(x.to_dict())
    return str(x)


async def replay_headless(path: str, cfg: dict, assets: Iterable[str] | None = None,
                          progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Replay the whole file and return the report (``docs/replay-report.md``); never raises for file
    damage — ``report["error"]`` holds the one-line message and ``report["complete"]`` is False.

    The runtime with the recording as its source, unpaced, the engine stepped every ``replay.tick_seconds``
    of receipt time (the report is this front end)."""
    import copy

    from liqmap.runtime import Runtime

    t0 = time.perf_counter()
    try:
        rec: Recording | None = open_recording(path)
    except RecordingError:
        rec = None  # the source says why
    names = list(assets) if assets is not None else (rec.assets if rec is not None and rec.assets else None)
    rcfg = copy.copy(cfg)
    rcfg["universe"] = {**cfg["universe"], "assets": names or list(cfg["universe"]["assets"]),
                        "venues": [v for v in cfg["universe"]["venues"] if v in VENUES] or list(VENUES)}
    source = ReplaySource(path, rcfg, speed=0, progress=progress)
    rt = Runtime(rcfg, source, engine=rec is not None)  # attached: the source steps the engine (see the top)
    replayer, market, engine = rt.ingest, rt.market, rt.engine
    replayer.keep_liquidations = True  # the report lists them all, ring size aside
    await source.run(rt)
    gaps = source.gap_list
    assets_out = {a: _asset_report(a, cfg, market, replayer, engine) for a in sorted(replayer.touched)}
    return {
        REPORT_KEY: REPORT_VERSION,
        "file": str(path),
        "format": source.format,
        "complete": source.error is None,
        "error": source.error,
        "frames": replayer.frames,
        "first_ts": replayer.first_ts,
        "last_ts": replayer.now or None,
        "duration_s": (replayer.now - replayer.first_ts) if replayer.first_ts is not None else 0.0,
        "gaps": {"count": len(gaps), "skipped_s": float(sum(g["seconds"] for g in gaps)), "longest": gaps and
                 max(gaps, key=lambda g: g["seconds"]) or None},
        "engine": engine is not None,
        "venues": _venue_report(replayer, market),
        "rejected": {f"{k}:{r}": int(n) for (k, r), n in sorted(market.rejects.counts.items())},
        "assets": assets_out,
        # Hyperliquid's recorded clearinghouseState answers (None: the Positions layer is off or not a venue)
        "positions": rt.positions.report() if rt.positions is not None else None,
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }


def _ingest(engine, replayer: Ingest, now: float) -> None:
    replayer.flush()
    if engine is None:
        return
    for a in sorted(replayer.touched):
        engine.ingest(a, now)


class _Addresses(dict):
    """A recording's connection id → address map (its "open" lines, filled while it is read) that remembers
    what each id meant before the newest lines: frames gathered into a run before a reconnect reused an id
    are pushed with the address they came on (``before_news``)."""

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.news: dict[str, object] = {}  # id → its address before (``_NONE``: had none) since the last run

    def __setitem__(self, key: str, value: str) -> None:
        if key not in self.news:
            self.news[key] = dict.get(self, key, _NONE)
        dict.__setitem__(self, key, value)

    def before_news(self) -> dict[str, str]:
        """The map as it was before the lines read since ``news`` was cleared (self when there were none)."""
        if not self.news:
            return self
        old = dict(self)
        for key, value in self.news.items():
            if value is _NONE:
                old.pop(key, None)
            else:
                old[key] = value
        return old


_NONE = object()


# ------------------------------------------------------------------------------------------ app source


class ReplaySource:
    """``liqmap --replay FILE``: frames paced by receipt time × ``speed`` into the one ingest path — the
    runtime's ``FrameSource`` for a recording (``feeds/sources.py``).

    ``speed`` ≤ 0 or infinite means as fast as possible. The loop is yielded to at least every
    ``yield_every`` frames so the UI keeps painting however dense the file is. The map's clock is the
    recording's (``now``). Given a ``market`` (no runtime), it keeps an ingest of its own into that market
    and puts the market on the recording's clock.
    """

    label = "REPLAY"
    # Venues no longer live (BitMEX, closed 2026-09-23) still replay: the runtime adds them to its market.
    extra_venues = REPLAY_ONLY_VENUES

    def __init__(self, path: str, cfg: dict, market: Market | None = None, speed: float | None = 1.0,
                 on_book: Callable[[str, str, Book], None] | None = None, yield_every: int = 512,
                 tick: float | None = None, progress: Callable[[int], None] | None = None) -> None:
        self.path = str(path)
        self.cfg = cfg
        self.speed = 1.0 if speed is None else float(speed)
        try:
            head = open_recording(self.path).header.get("contracts")
        except RecordingError:
            head = None  # run() reports the damage
        names = list(market.assets) if market is not None else list(cfg["universe"]["assets"])
        self.assets = assets_from_contracts(head, names)
        self.replayer: Ingest | None = None
        if market is not None:
            self.replayer = Replayer(cfg, market, self.assets, on_book=on_book)
            # The market's "now" becomes the recording's: its future-timestamp check then means "ahead of
            # the receipt time", also for a recording made faster than real time (the demo market's).
            market.clock = self.now
        self.yield_every = max(1, int(yield_every))
        # Stepped in recording time (the headless report): ``on_tick(t)`` at every ``tick`` of receipt time
        # before the frames after it, once across a quiet gap, and at the end.
        # Given an engine (``attach``), the step is ``replay.tick_seconds`` and ``on_tick`` ingests it.
        self.tick = tick
        self.on_tick: Callable[[float], None] | None = None
        self.progress = progress  # called with the frame count every 50,000 frames
        self.format: str | None = None
        self.gap_list: list[dict[str, float]] = []
        self.error: str | None = None
        self.done = False
        self.gaps = 0  # quiet stretches longer than GAP_S jumped instead of waited out
        self.skipped_s = 0.0
        self._stop = asyncio.Event()
        self._start_wall: float | None = None
        self._start_rec: float | None = None
        self._meter = None  # the recording's ReadMeter while it plays

    def now(self) -> float:
        """The recording's clock: the receipt time replay has reached (wall time before the first frame)."""
        return (self.replayer.now if self.replayer is not None else 0.0) or time.time()

    clock = now

    def tiers(self):
        return None

    def attach(self, rt) -> None:
        """The runtime's ingest; with its engine, the engine stepped at this file's ticks (the one path of
        the headless report and the TUI)."""
        self.replayer = rt.ingest
        engine = rt.engine
        if engine is not None:
            engine.ingest_by_source = True
            self.tick = self.tick or float(replay_setting(self.cfg, "tick_seconds", 1.0))
            ingest = rt.ingest
            self.on_tick = lambda now: _ingest(engine, ingest, now)

    def on_view(self, asset: str) -> None:
        return None

    def health(self) -> dict[str, dict]:
        return self.replayer.health()

    def books(self, asset: str) -> dict[str, Book]:
        return self.replayer.books(asset)

    @property
    def status(self) -> str:
        """One phrase for a status line: the damage that stopped the replay, or the gaps jumped."""
        if self.error:
            return f"replay stopped: {self.error}"
        if self.gaps:
            return f"{self.gaps} quiet gap{'s' if self.gaps > 1 else ''} skipped ({self.skipped_s / 3600:.1f} h)"
        return ""

    @property
    def badge(self) -> str:
        """After REPLAY on the status bar: how far (share of the file, the recording's clock), or done."""
        if self.done:
            return "stopped" if self.error else "finished"
        meter = self._meter
        if meter is None:
            return ""
        t = self.replayer.now if self.replayer is not None else 0.0
        clock = time.strftime(" %d %b %H:%M:%S", time.gmtime(t)) if t else ""
        return f"{meter.share * 100:.0f}%{clock}"

    @property
    def frames(self) -> int:
        return self.replayer.frames

    async def stop(self) -> None:
        self._stop.set()

    close = stop

    def _due(self, t: float) -> float:
        """The monotonic time at which receipt time ``t`` plays (paced)."""
        return self._start_wall + (t - self._start_rec) / self.speed

    async def run(self, rt=None, stop: asyncio.Event | None = None) -> None:
        """Play the file once; returns at its end (or at damage: ``.error`` says why).

        Paced (the app), each engine step waits for its own time on the recording's clock and runs off the
        event loop (the UI keeps painting), and the frames wait for it: the steps see exactly the frames
        they see unpaced (the headless report)."""
        ingest = self.replayer
        tick, next_tick = self.tick, None
        on_tick = self.on_tick if tick else None
        finished = False
        paced = self.speed > 0 and math.isfinite(self.speed)

        async def step(t: float) -> None:
            if paced:
                delay = self._due(t) - time.monotonic()
                if delay > 0.002:
                    await asyncio.sleep(delay)
                await asyncio.to_thread(on_tick, t)
            else:
                on_tick(t)

        # Frames are pushed in runs (``Ingest.push_many``): a run ends before anything else happens — a step,
        # a pause, a loop turn, a positions answer — so everything sees exactly the frames it saw frame by frame.
        run: list = []
        push_many = ingest.push_many
        addresses: _Addresses | None = None

        async def drain() -> None:
            if run:
                batch = run[:]
                run.clear()
                await push_many(batch, addresses.before_news())

        try:
            rec = open_recording(self.path)
            addresses = rec.addresses = _Addresses(rec.addresses)
            self._meter = rec.meter
            self.format = rec.format
            n = 0
            count = ingest.frames
            now = ingest.now  # the receipt time reached (the frames in ``run`` included)
            # recorded positions answers (Hyperliquid's clearinghouseState) go to the runtime's Positions layer,
            # where they were between the frames; without one they are not read
            positions = getattr(rt, "positions", None)
            for fr in rec.read(answers=positions is not None):
                if self._stop.is_set() or (stop is not None and stop.is_set()):
                    break
                if addresses.news:  # a connection (re)opened under a recorded id: the run so far keeps the old address
                    await drain()
                    addresses.news.clear()
                if type(fr) is InfoAnswer:
                    await drain()
                    positions.replay(fr)
                    continue
                t = fr.t
                if on_tick is not None and next_tick is None:
                    next_tick = math.floor(t / tick) * tick + tick
                if self._start_rec is None:
                    self._start_rec, self._start_wall = t, time.monotonic()
                elif t - now > GAP_S and now:
                    await drain()
                    gap = t - now
                    self.gaps += 1
                    self.skipped_s += gap
                    self.gap_list.append({"from": now, "to": t, "seconds": gap})
                    self._start_rec += gap  # the clock jumps the quiet stretch
                    if on_tick is not None:  # quiet hours: one step at the gap's start, then on at the next tick
                        await step(next_tick)
                        next_tick = math.floor(t / tick) * tick
                if on_tick is not None and t >= next_tick:
                    await drain()
                    while t >= next_tick:
                        await step(next_tick)
                        next_tick += tick
                if paced:
                    delay = self._due(t) - time.monotonic()
                    if delay > 0.002:
                        await drain()
                        ingest.flush()
                        await asyncio.sleep(delay)
                        n = 0
                run.append(fr)
                if t > now:
                    now = t
                count += 1
                n += 1
                if n >= self.yield_every:
                    await drain()
                    n = 0
                    if on_tick is None:
                        ingest.flush()
                    await asyncio.sleep(0)
                if self.progress is not None and count % 50000 == 0:
                    await drain()
                    self.progress(ingest.frames)
            await drain()
            finished = True
        except RecordingError as e:
            await drain()  # the frames read before the damage count
            self.error = str(e)
            finished = True
        finally:
            # the last step at the last frame (not when cancelled: a step may still be running in its thread)
            if on_tick is not None and self.format is not None and finished:
                on_tick(ingest.now)
            ingest.flush()
            self.done = True
