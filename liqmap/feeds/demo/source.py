"""The demo market as a frame source: ``(receipt_ts, venue, conn, raw)`` tuples, like a recording row.

``DemoSource`` steps every simulated asset (assets in focus every ``tick_ms``, the others every
``coarse_tick_ms``, staggered so the work is spread evenly), turns what happened into each venue's frames
(``venues.py``) and stamps receipt times (exchange time + a per-venue latency). ``run_for`` yields
simulated time as fast as the CPU allows (tests, benchmarks, headless recording); ``frames()`` paces the
same stream to the wall clock × ``speed`` and runs forever.

Pre-roll (``preroll`` seconds, what ``liqmap --demo`` uses): every asset's simulation starts that long before
``start`` and is *pending* until ``catch_up(asset)`` has written its history (unpaced, past timestamps) up to
the live clock; only then does ``step`` include it. With ``lazy`` an asset's simulator is only built when
first needed, so start-up pays for the asset on screen alone (``preroll.py`` drives both for the app).
Without either, every asset is live from the first tick and the stream is what it always was.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np

from liqmap.config import DEFAULTS
from liqmap.core.assets import Asset, universe
from liqmap.core.events import VENUES

from ..frame import Frame
from .books import BookWalls, VenueBook, grid_step
from .contracts import DEMO_VENUES, shadow_contracts
from .market import AssetSim, ShadowSim, TickResult, asset_seed
from .venues import make_emitters

MARK_EVERY_MS = 1000


def _demo_cfg(cfg: dict | None) -> dict:
    out = dict(DEFAULTS["demo"])
    out.update((cfg or {}).get("demo", {}))
    return out


class DemoSource:
    """A deterministic five-venue market (same seed, start, assets and focus → byte-identical frames)."""

    def __init__(self, cfg: dict | None = None, assets=None, seed: int | None = None,
                 speed: float | None = None, start: float | None = None, focus=None,
                 prehistory: bool = True, books: bool = True, preroll: float = 0.0, lazy: bool = False) -> None:
        self.cfg = cfg or {}
        self.emit_books = books  # False: no book frames at all (headless uses that need no L2)
        d = self.demo = _demo_cfg(cfg)
        self.seed = int(d["seed"] if seed is None else seed)
        self.speed = float(d["speed"] if speed is None else speed)
        if assets is None:
            assets = d["assets"]
        if isinstance(assets, dict):
            self.assets: dict[str, Asset] = dict(assets)
        else:
            self.assets = universe(list(assets))
        # Start on a whole second of wall time unless told otherwise (tests pass a fixed start).
        self.start = float(int(time.time()) if start is None else start)
        self._t_ms = int(round(self.start * 1000))
        # Pre-roll: every asset's simulation begins this many (whole) seconds before ``start`` and is brought
        # up to the live clock by ``catch_up`` (past timestamps, unpaced) before ``step`` includes it.
        self.preroll = float(int(max(0.0, float(preroll))))
        self.history_start = self.start - self.preroll
        self.tick_ms = int(d["tick_ms"])
        self._off_levels = int(d["offscreen_book_levels"])
        self._off_book_ms = int(d["offscreen_book_s"] * 1000)
        self.coarse_ms = max(self.tick_ms, int(d["coarse_tick_ms"]) // self.tick_ms * self.tick_ms)
        self.preroll_tick_ms = max(self.tick_ms, int(d.get("preroll_tick_ms", 5000)))
        # History older than ``preroll_minutes`` (written only to fill a wide start view) is stepped coarser:
        # it costs the simulator, the parsers and the model per step, and a 1-minute column needs only a few.
        self.preroll_far_tick_ms = max(self.preroll_tick_ms, int(d.get("preroll_far_tick_ms", self.preroll_tick_ms)))
        self._fine_from_ms = int(round((self.start - 60.0 * float(d.get("preroll_minutes", 0.0))) * 1000))
        self._preroll_oi_ms = int(float(d.get("preroll_oi_seconds", 10.0)) * 1000)
        self._preroll_mark_ms = int(float(d.get("preroll_mark_seconds", 60.0)) * 1000)
        self._prehistory = prehistory
        self.names: list[str] = list(self.assets)
        self._stagger = {name: i for i, name in enumerate(self.names)}
        self.sims: dict[str, AssetSim] = {}  # built so far (all of them unless ``lazy``)
        # Venues an asset is listed on beyond its main simulator's slots (Hyperliquid past BitMEX's former 25),
        # each simulated beside it (market.ShadowSim): asset → its shadow, built with the asset's simulator.
        self.shadows: dict[str, ShadowSim] = {}
        self.books: dict[tuple[str, str], VenueBook] = {}
        # Book-only walls and their prints (``books.BookWalls``), per asset; none without books.
        self.book_walls: dict[str, BookWalls] = {}
        self._live: list[str] = []  # assets ``step`` advances, in universe order
        self.emitters = make_emitters(self.cfg)
        self._live_syms: tuple[int, frozenset[str]] = (-1, frozenset())
        self._lat_rng = np.random.default_rng([self.seed, 3])
        self._oi_poll_ms = int(float(self.emitters["binance"].f["oi_poll_seconds"]) * 1000)
        self._last: dict[tuple[str, str], int] = {}  # (asset, what) → last emission ms
        self._started = False
        if focus is None:
            app = (self.cfg.get("app") or {}).get("asset", DEFAULTS["app"]["asset"])
            extra = (self.cfg.get("universe") or {}).get("focus_extra", DEFAULTS["universe"]["focus_extra"])
            focus = [app, *extra]
        self.focus: set[str] = set()
        self.set_focus(focus)
        self.frames_out = 0
        if not lazy:
            for name in self.names:
                self.sim(name)
        if not self.preroll and not lazy:
            self._live = list(self.names)  # no history to write: everything is live from the start

    def sim(self, name: str) -> AssetSim:
        """The asset's simulator, built on first use (at the history start) with its venue books."""
        sim = self.sims.get(name)
        if sim is None:
            d = self.demo
            sim = self.sims[name] = AssetSim(self.assets[name], d, self.seed, self.history_start,
                                             prehistory=self._prehistory)
            extra, share = shadow_contracts(sim.asset, sim.rank, sim.weight)
            extra = {v: c for v, c in extra.items() if v in self.emitters}
            if extra:
                self.shadows[name] = ShadowSim(sim.asset, d, self.seed, self.history_start, extra, share,
                                               prehistory=self._prehistory)
            grid = grid_step(sim.asset.ref_price, sim.asset.tick, d["book_step_bp"])
            for v, c in self.contracts_of(name).items():
                rng = np.random.default_rng([self.seed, asset_seed(name), 2, c.vid])
                self.books[(name, v)] = VenueBook(c, grid, int(d["book_levels"]), sim.level_usd(), rng)
            if self.emit_books and d.get("book_walls", False):
                rng = np.random.default_rng([self.seed, asset_seed(name), 5])
                self.book_walls[name] = BookWalls(sim, grid, d, rng)
        return sim

    def contracts_of(self, name: str) -> dict:
        """Every venue market the demo trades ``name`` on: its simulator's, then its shadow's."""
        sim = self.sim(name)
        sh = self.shadows.get(name)
        return sim.contracts if sh is None else {**sim.contracts, **sh.contracts}

    def venue_sim(self, name: str, venue: str) -> AssetSim | None:
        """The simulator holding ``venue``'s positions in ``name`` (its shadow for a shadow venue)."""
        sim = self.sim(name)
        if venue in sim.contracts:
            return sim
        sh = self.shadows.get(name)
        return sh if sh is not None and venue in sh.contracts else None

    def _advance(self, name: str, sim: AssetSim, dt: float):
        """One step of ``name``'s simulator, and its shadow's along the same price path: (result, shadow's)."""
        res = sim.step(dt)
        sh = self.shadows.get(name)
        return res, (sh.follow(sim.now, res.price) if sh is not None else None)

    def pending(self) -> list[str]:
        """Assets not yet in the live stream (their history still to be written by ``catch_up``)."""
        live = set(self._live)
        return [n for n in self.names if n not in live]

    def is_live(self, name: str) -> bool:
        return name in self._live

    def join(self, name: str) -> None:
        """Put a pending asset into the live stream at once, without (the rest of) its history: the fallback
        when its history cannot be written, so the demo still runs."""
        if name in self._live:
            return
        sim = self.sim(name)
        sim.now = max(sim.now, self._t_ms / 1000.0)
        sh = self.shadows.get(name)
        if sh is not None:
            sh.now = sim.now
        self._live.append(name)
        self._live.sort(key=self._stagger.__getitem__)

    # ------------------------------------------------------------------ clock and focus
    def now(self) -> float:
        """Simulated time (seconds since the epoch) of the last completed step."""
        return self._t_ms / 1000.0

    def set_focus(self, names) -> None:
        """Assets stepped finely and with full book updates (the one on screen and a few more)."""
        self.focus = {n.upper() for n in names if n and n.upper() in self.assets}

    # ------------------------------------------------------------------ stepping
    def _due(self, key: tuple[str, str], t: int, every: int) -> bool:
        last = self._last.get(key)
        if last is None or t - last >= every:
            self._last[key] = t
            return True
        return False

    def _emit_asset(self, name: str, sim: AssetSim, t: int, res, book_due: bool, mark_due: bool,
                    fine: bool, oi_min_ms: int, add, shadow=None) -> None:
        """Turn one step of one asset into its venues' frames (``add(venue, frames)``); ``shadow`` is its
        shadow's result (its venues' frames follow the main simulator's, each venue's own stream)."""
        sh = self.shadows.get(name)
        if not self._started:
            for v, c in self.contracts_of(name).items():
                add(v, self.emitters[v].start(c, t, res.price))
        self._emit_venues(name, sim, sim, t, res, book_due, mark_due, fine, oi_min_ms, add)
        if sh is not None and shadow is not None:
            self._emit_venues(name, sim, sh, t, shadow, book_due, mark_due, fine, oi_min_ms, add)
        self._started = True

    def _emit_venues(self, name: str, sim: AssetSim, own: AssetSim, t: int, res, book_due: bool,
                     mark_due: bool, fine: bool, oi_min_ms: int, add) -> None:
        """The frames of ``own``'s venues (the simulator's or its shadow's); books show ``sim``'s walls."""
        tr, lq = res.trades, res.liqs
        for v, c in own.contracts.items():
            em = self.emitters[v]
            vt = tr[tr["venue"] == c.vid] if len(tr) else tr
            if len(vt):
                add(v, em.trades(c, t, vt))
            if len(lq):
                vl = lq[lq["venue"] == c.vid]
                if len(vl):
                    add(v, em.liquidations(c, t, vl))
            if book_due:
                vb = self.books[(name, v)]
                bw = self.book_walls.get(name)
                walls = sim.walls if bw is None else bw.active()
                bids, asks = vb.refresh(res.price, walls, levels=None if fine else self._off_levels)
                add(v, em.book(c, t, bids, asks, vb))
            if mark_due:
                add(v, em.mark(c, t, res.price))
            every = max(self._oi_poll_ms if em.OI_EVERY_MS is None else em.OI_EVERY_MS, oi_min_ms)
            if self._due((name, "oi:" + v), t, every):
                add(v, em.oi(c, t, own.open_interest(c.vid), res.price))

    def _stamp(self, raw: list, rng) -> list[Frame]:
        # One latency per venue per tick, so each venue's frames keep their order (sequence numbers,
        # insert-before-update) exactly as a single connection would deliver them.
        jit = rng.integers(0, 20, len(DEMO_VENUES))
        lat = {v: self.emitters[v].LATENCY_MS + int(jit[i]) for i, v in enumerate(DEMO_VENUES)}
        out = [Frame((ms + lat[v]) / 1000.0, v, conn, body) for ms, v, conn, body in raw]
        out.sort(key=lambda f: f[0])  # stable: order within a venue is kept
        return out

    def step(self) -> list[Frame]:
        """Advance one base tick; the frames it produced, sorted by receipt time."""
        t = self._t_ms + self.tick_ms
        self._t_ms = t
        tick_idx = (t - int(round(self.start * 1000))) // self.tick_ms
        ratio = self.coarse_ms // self.tick_ms
        raw: list[tuple[int, str, str, str]] = []  # (exchange ms, venue, conn, raw)

        def add(venue: str, frames) -> None:
            for conn, body in frames:
                raw.append((t, venue, conn, body))

        if self._live_syms[0] != len(self._live):  # assets only ever join the live stream
            self._live_syms = (len(self._live), self._symbols(self._live))
        live_syms = self._live_syms[1]
        for v, em in self.emitters.items():
            add(v, em.flush(t, live_syms))
        sims = self.sims
        for name in self._live:
            sim = sims[name]
            fine = name in self.focus
            if not fine and (tick_idx + self._stagger[name]) % ratio:
                continue
            dt = (t - int(round(sim.now * 1000))) / 1000.0
            if dt <= 0:
                continue
            bw = self.book_walls.get(name)
            if bw is not None:
                bw.before_step()
            res, sres = self._advance(name, sim, dt)
            if bw is not None:
                extra = bw.step(res.ts, dt, res.price)
                if len(extra):  # the books' prints first: the step's last trade stays at its closing price
                    res = TickResult(res.ts, res.price, np.concatenate([extra, res.trades]), res.liqs)
            book_due = self.emit_books and (fine or self._due((name, "book"), t, self._off_book_ms))
            mark_due = self._due((name, "mark"), t, MARK_EVERY_MS)
            self._emit_asset(name, sim, t, res, book_due, mark_due, fine, 0, add, sres)
        if not raw:
            return []
        out = self._stamp(raw, self._lat_rng)
        self.frames_out += len(out)
        return out

    def _symbols(self, names) -> frozenset[str]:
        """The venue symbols of these assets (what the emitters key their held-back liquidations by)."""
        return frozenset(c.symbol for n in names for c in self.contracts_of(n).values())

    def catch_up(self, name: str, chunk_seconds: float = 60.0,
                 first_chunk_seconds: float | None = None) -> Iterator[list[Frame]]:
        """Write a pending asset's history: step it unpaced from where it is up to the live clock, one
        ``chunk_seconds`` chunk of simulated time per item yielded (its frames, sorted, past timestamps),
        then make it live (``step`` includes it from the next tick). ``first_chunk_seconds``: a shorter first
        chunk (the screen asset's first frame needs some data, not a whole chunk of it).

        The live clock may move between chunks (the caller yields to the loop); the catch-up follows it.
        History is stepped every ``demo.preroll_tick_ms`` (the same per-unit-time statistics as any tick; every
        ``demo.preroll_far_tick_ms`` before the last ``demo.preroll_minutes``) with
        the venues' trades, liquidations and flushes as live, open interest every ``demo.preroll_oi_seconds``
        and marks every ``demo.preroll_mark_seconds`` at most, and no book frames (a book is current state:
        the first live step sends each venue's snapshot). Deterministic: the frames of [history start,
        start] depend only on the seed, the start, the assets and the config.
        """
        if name in self._live:
            return
        sim = self.sim(name)
        own_syms = self._symbols([name])
        tick = self.preroll_tick_ms
        rng = np.random.default_rng([self.seed, asset_seed(name), 4])
        chunk_ms = max(tick, int(chunk_seconds * 1000))
        size_ms = chunk_ms if first_chunk_seconds is None else max(tick, int(first_chunk_seconds * 1000))
        while True:
            now_ms = int(round(sim.now * 1000))
            # Up to the live start first (fixed: deterministic), then after the moving live clock.
            start_ms = int(round(self.start * 1000))
            target = start_ms if now_ms < start_ms else self._t_ms
            if target - now_ms < tick and now_ms >= start_ms:
                break
            end = min(now_ms + size_ms, target)
            size_ms = chunk_ms
            raw: list[tuple[int, str, str, str]] = []
            t = now_ms
            while t < end:
                step_ms = tick if t >= self._fine_from_ms else self.preroll_far_tick_ms
                t = min(t + step_ms, end)
                step_raw: list[tuple[int, str, str, str]] = []

                def add(venue: str, frames, t=t, step_raw=step_raw) -> None:
                    for conn, body in frames:
                        step_raw.append((t, venue, conn, body))

                for v, em in self.emitters.items():
                    add(v, em.flush(t, own_syms))
                res, sres = self._advance(name, sim, (t - int(round(sim.now * 1000))) / 1000.0)
                mark_due = self._due((name, "mark"), t, self._preroll_mark_ms)
                oi_ms = self._preroll_oi_ms if step_ms == tick else max(self._preroll_oi_ms, step_ms)
                self._emit_asset(name, sim, t, res, False, mark_due, False, oi_ms, add, sres)
                if step_raw:
                    raw.extend(self._stamp(step_raw, rng))
            self.frames_out += len(raw)
            yield raw
        self._live.append(name)
        self._live.sort(key=self._stagger.__getitem__)

    def oi_frames(self) -> list[Frame]:
        """Every asset's open interest on every venue right now (a poll of all of them), as frames."""
        t = self._t_ms
        out = []
        for name in self._live:
            sim = self.sims[name]
            for v, c in self.contracts_of(name).items():
                own = self.venue_sim(name, v)
                for conn, body in self.emitters[v].oi(c, t, own.open_interest(c.vid), sim.price):
                    out.append(Frame((t + self.emitters[v].LATENCY_MS) / 1000.0, v, conn, body))
        out.sort(key=lambda f: f[0])
        return out

    def shock(self, asset: str, pct: float) -> None:
        """The asset's next step is a ``pct`` percent jump; its liquidations come out as frames."""
        self.sim(asset).shock_next(pct)

    def run_batches(self, seconds: float) -> Iterator[list[Frame]]:
        """The next ``seconds`` of simulated time unpaced, one list of frames per step."""
        end = self._t_ms + int(round(seconds * 1000))
        while self._t_ms < end:
            yield self.step()

    def run_for(self, seconds: float) -> Iterator[Frame]:
        """Frames of the next ``seconds`` of simulated time, unpaced."""
        for batch in self.run_batches(seconds):
            yield from batch

    async def batches(self) -> AsyncIterator[list[Frame]]:
        """Each step's frames paced to wall time × ``speed``, forever (receipt times are simulated time)."""
        wall0 = time.monotonic()
        sim0 = self._t_ms
        while True:
            batch = self.step()
            due = wall0 + (self._t_ms - sim0) / 1000.0 / self.speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield batch
            if delay <= 0:
                await asyncio.sleep(0)  # behind schedule: still let the loop breathe

    async def frames(self) -> AsyncIterator[Frame]:
        """Frames paced to wall time × ``speed``, forever."""
        async for batch in self.batches():
            for f in batch:
                yield f

    # ------------------------------------------------------------------ ground truth
    def truth(self, asset: str) -> np.ndarray:
        from .truth import positions

        return positions(self, asset)

    def liquidations(self, asset: str | None = None, since: float | None = None) -> np.ndarray:
        from .truth import liquidation_log

        return liquidation_log(self, asset, since)

    def venues_of(self, asset: str) -> list[str]:
        return [v for v in VENUES if v in self.contracts_of(asset)]
