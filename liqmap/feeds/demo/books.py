"""Each venue's simulated L2 book: a ladder of levels around the simulated price, with walls.

Levels sit on a grid (``book_step_bp`` of price, a nice multiple of the tick), keyed by integer index
``k`` (price = k·grid). On every refresh the ladder re-centres on the price: levels that price moved
through are deleted at once (aggressive flow swept them), new levels appear at the far end, a share of
the resting levels change size (quotes come and go), and the venue's walls from ``AssetSim.walls`` show as
big size on their level until they are pulled or absorbed. ``refresh`` returns the changed levels in the
venue's units, which ``venues.py`` turns into each venue's frames.

``BookWalls``: the walls that live in the books alone (issue 16 item 3). The simulator's own walls
(``AssetSim.walls``) move its price, which the forecast benchmark scores against, so they stay as they are:
a few an hour, most of them never reached. The reports need more to read: walls that stand near price and are
pulled as it comes (no trade at them), or stand and take the aggression (iceberg: more trades at the level than
it ever shows; an absorption) until price either turns (held) or goes through (the wall is consumed, the prints
walk the levels: a sweep). These walls and their prints are the books' and the tape's alone: they never touch
the simulator's random stream, positions or price path (``tests/test_demo_books.py`` holds it).
"""

from __future__ import annotations

import math

import numpy as np

from liqmap.core.buckets import nice_step

from .contracts import Contract
from .market import SIM_TRADE_DTYPE


def grid_step(price: float, tick: float, bp: float) -> float:
    """Book level spacing: ``bp`` of price as a nice number, a whole number of ticks."""
    step = nice_step(price * bp / 1e4)
    if step <= tick:
        return tick
    return float(f"{round(step / tick) * tick:.12g}")


class VenueBook:
    """Book state of one (asset, venue) as last published: {k: qty} per side, venue contracts."""

    def __init__(self, contract: Contract, grid: float, levels: int, level_usd: float,
                 rng: np.random.Generator) -> None:
        self.c = contract
        self.grid = grid  # real price units
        self.levels = levels
        self.level_usd = level_usd * contract.share
        self.rng = rng
        self._base: tuple[dict[int, float], dict[int, float]] = ({}, {})  # quotes without walls
        self._extra: tuple[dict[int, float], dict[int, float]] = ({}, {})  # wall size last published
        self.bids: dict[int, float] = {}  # as published (quotes + walls)
        self.asks: dict[int, float] = {}
        self.published = False

    def price_of(self, k: int) -> float:
        return k * self.grid

    def _qty(self, k: int, usd: float) -> float:
        c = self.c
        unit = c.contract_size if c.inverse else c.contract_size * c.mult * k * self.grid
        return round(max(round(usd / unit / c.lot), 1) * c.lot, c.qty_dp)

    def refresh(self, price: float, walls=(), churn: float = 0.1, levels: int | None = None):
        """Re-centre on ``price``; returns (bid_changes, ask_changes) as [(k, qty)] best first, qty 0 =
        delete. ``levels`` (default: all) lets assets out of focus publish a shallower book."""
        g = self.grid
        kb = math.ceil(price / g - 1e-9) - 1  # best bid strictly below price
        ka = math.floor(price / g + 1e-9) + 1  # best ask strictly above price
        n = levels or self.levels
        extra: tuple[dict[int, float], dict[int, float]] = ({}, {})
        for w in walls:
            if w.vid == self.c.vid and w.state == "active" and w.usd > 0:
                k = round(w.price / g)
                side = extra[0 if w.side > 0 else 1]
                side[k] = side.get(k, 0.0) + self._qty(k, w.usd)
        out = []
        rng = self.rng
        for i, (lo, hi, best) in enumerate(((kb - n + 1, kb, kb), (ka, ka + n - 1, ka))):
            base, pub = self._base[i], (self.bids, self.asks)[i]
            touched = [k for k in base if k < lo or k > hi]  # swept by price or beyond the depth
            for k in touched:
                del base[k]
            fresh = [k for k in range(lo, hi + 1) if k not in base]
            if self.published and base and churn > 0:
                resting = [k for k in range(lo, hi + 1) if k in base]
                m = rng.binomial(len(resting), churn)
                if m:
                    fresh += [resting[j] for j in rng.choice(len(resting), m, replace=False)]
            if fresh:
                z = rng.standard_normal(len(fresh))
                lu = self.level_usd
                for k, zz in zip(fresh, z):
                    base[k] = self._qty(k, lu * math.exp(0.7 * zz) * (1 + 0.02 * abs(k - best)))
            ex, prev_ex = extra[i], self._extra[i]
            diff: dict[int, float] = {}
            for k in (*touched, *fresh, *ex, *prev_ex):
                q = base.get(k)
                if q is None and k in ex and (k < lo if i == 0 else k > hi):
                    # A wall past the published depth still rests there (venues' books are far deeper than
                    # the ladder): dropping it each time price drifts away read as a pull to the wall detector.
                    q = 0.0
                if q is None:
                    if k in pub:
                        del pub[k]
                        diff[k] = 0.0
                    continue
                if k in ex:
                    q = round(q + ex[k], self.c.qty_dp)
                if pub.get(k) != q:
                    pub[k] = q
                    diff[k] = q
            self._extra = (ex, self._extra[1]) if i == 0 else (self._extra[0], ex)
            out.append(sorted(diff.items(), reverse=(i == 0)))
        self.published = True
        return out[0], out[1]

    def top(self, side: int, n: int) -> list[tuple[int, float]]:
        """Best ``n`` levels of a side, best first."""
        if side > 0:
            return sorted(self.bids.items(), reverse=True)[:n]
        return sorted(self.asks.items())[:n]


def qty_for(c: Contract, usd: float, price: float) -> float:
    """``usd`` at ``price`` in the venue's contracts, whole lots (at least one)."""
    unit = c.contract_size if c.inverse else c.contract_size * c.mult * price
    return round(max(round(usd / unit / c.lot), 1) * c.lot, c.qty_dp)


class BookWall:
    """A wall in one venue's book that the simulator does not know about (duck-types ``market.Wall`` for
    ``VenueBook.refresh``: ``vid``, ``side``, ``price``, ``usd``, ``state``)."""

    __slots__ = ("vid", "side", "price", "usd", "born", "dies", "pull", "state", "target", "absorbed",
                 "touching")

    def __init__(self, vid: int, side: int, price: float, usd: float, born: float, dies: float,
                 pull: bool) -> None:
        self.vid, self.side, self.price, self.usd = vid, side, price, usd
        self.born, self.dies, self.pull = born, dies, pull
        self.state = "active"  # active → pulled | consumed | expired
        self.target = 0.0  # aggression the current touch prints into it (iceberg: more than it shows)
        self.absorbed = 0.0
        self.touching = False


class _Touch:
    __slots__ = ("touching", "target", "absorbed")

    def __init__(self) -> None:
        self.touching, self.target, self.absorbed = False, 0.0, 0.0


class _Shown:
    """The visible part of a simulator wall (``VenueBook.refresh`` reads these four fields and ``state``)."""

    __slots__ = ("vid", "side", "price", "usd")
    state = "active"

    def __init__(self, vid: int, side: int, price: float, usd: float) -> None:
        self.vid, self.side, self.price, self.usd = vid, side, price, usd


class BookWalls:
    """One asset's book-only walls and the prints they cause, stepped with the simulator (live steps only).

    Per step: new walls appear (``book_wall_rate_per_hour``) on one venue at a distance drawn in units of the
    asset's 10-minute volatility, sized like the simulator's walls; each lives ``book_wall_life_minutes`` on
    average. A wall decided to be pulled (``book_wall_pull_prob``) leaves the book when price comes within
    ``book_wall_pull_bp``: no trade at it, so the wall detector reads *pulled*. The others stand: when price
    reaches them (within ``book_wall_touch_bp``) the aggression arrives as a short sweep into the level and
    keeps printing at the level for ``book_wall_absorb_s`` while the visible size stays (refilled), up to
    ``book_wall_absorb`` × (the wall's and the bucket's visible size): an absorption. If price then goes
    through, the wall is *consumed* and its size prints as a sweep walking the levels to the new price (the
    absorption *broke*); if price turns, the absorption *held* and the wall stays.

    The simulator's own walls (``AssetSim.walls``) slow price by absorbing pressure (``_walls_clamp``); what they
    absorbed in a step prints here too, at the wall, so their absorptions show on the tape.

    Own random stream (``[seed, asset, 5]``): the simulator's stream, positions and price path are untouched.
    """

    def __init__(self, sim, grid: float, d: dict, rng: np.random.Generator) -> None:
        self.sim = sim
        self.grid = grid
        self.rng = rng
        self.rate = float(d.get("book_wall_rate_per_hour", 0.0)) / 3600.0
        self.mult = float(d.get("book_wall_mult", d.get("wall_mult", 25.0)))
        self.pull_prob = float(d.get("book_wall_pull_prob", 0.4))
        self.life_s = float(d.get("book_wall_life_minutes", 20.0)) * 60.0
        lo, hi = d.get("book_wall_dist_sigma", (0.4, 2.0))
        self.dist = (float(lo), float(hi))
        self.pull_bp = float(d.get("book_wall_pull_bp", 6.0))
        self.touch_bp = float(d.get("book_wall_touch_bp", 3.0))
        self.absorb_s = float(d.get("book_wall_absorb_s", 5.0))
        lo, hi = d.get("book_wall_absorb", (1.8, 3.0))
        self.absorb = (float(lo), float(hi))
        self.sim_show = float(d.get("book_wall_sim_show", 1.0))
        self.sweep_share = 0.4  # of a touch's aggression arrives as the sweep into the level
        self.walls: list[BookWall] = []
        self.log: list[BookWall] = []  # ended walls (tests, benchmarks)
        self._sim_before: list[tuple] = []
        self._sim_touch: dict[int, _Touch] = {}  # the simulator's walls' touch state, by id
        self._started = False

    # ------------------------------------------------------------------ the simulator's own walls
    def before_step(self) -> None:
        """Remember the simulator's active walls and their sizes (what a step absorbs is the difference)."""
        self._sim_before = [(w, w.usd) for w in self.sim.walls if w.state == "active"]

    def active(self) -> list:
        """What the books show: these walls, and the simulator's own as icebergs (``book_wall_sim_show`` of
        their first size at most: what a holding wall absorbs then exceeds what it ever showed, which is how
        the absorption detector recognises a refilled level)."""
        out: list = list(self.walls)
        show = self.sim_show
        for w in self.sim.walls:
            if w.state == "active" and w.usd > 0:
                out.append(_Shown(w.vid, w.side, w.price, min(w.usd, show * w.usd0)) if show < 1 else w)
        return out

    # ------------------------------------------------------------------ one step
    def step(self, now: float, dt: float, price: float) -> np.ndarray:
        """Advance to ``now`` (``dt`` seconds after the last step, price ``price`` after it); the prints this
        step adds to the tape (``SIM_TRADE_DTYPE``, before the simulator's own trades of the step)."""
        rows: list[tuple] = []
        for w, before in self._sim_before:
            eaten = before - (w.usd if w.state == "active" else 0.0)
            if eaten > 0:
                to = price if w.state == "consumed" else w.price
                self._walk(rows, w.vid, -w.side, w.price, to, eaten, 1 if w.state != "consumed" else 3)
        self._sim_before = []
        touch = self._sim_touch
        for w in self.sim.walls:
            if w.state != "active" or w.usd <= 0:
                continue
            st = touch.get(id(w))
            if st is None:
                st = touch[id(w)] = _Touch()
            # The simulator's wall holds price in front of it (``_walls_clamp``): a held test, tested here
            # as the book walls are, with the iceberg's visible part.
            self._touch(w, st, w.side * (price - w.price) / w.price * 1e4, price, dt,
                        min(w.usd, self.sim_show * w.usd0), rows)
        if len(touch) > 64:
            alive = {id(w) for w in self.sim.walls}
            self._sim_touch = {k: v for k, v in touch.items() if k in alive}
        if not self._started:
            self._started = True
            if self.rate > 0:  # steady state at the start: the walls already standing
                for _ in range(int(self.rng.poisson(self.rate * self.life_s))):
                    self._spawn(now, price, born=now - float(self.rng.uniform(0, self.life_s)))
        if self.rate > 0 and self.rng.random() < self.rate * dt:
            self._spawn(now, price)
        for w in self.walls:
            self._follow(w, now, dt, price, rows)
        done = [w for w in self.walls if w.state != "active"]
        if done:
            self.log.extend(done)
            self.walls = [w for w in self.walls if w.state == "active"]
        if not rows:
            return np.zeros(0, SIM_TRADE_DTYPE)
        out = np.array(rows, SIM_TRADE_DTYPE)
        return out

    def _level_usd(self) -> float:
        return self.sim.level_usd()

    def _spawn(self, now: float, price: float, born: float | None = None) -> None:
        sim, rng = self.sim, self.rng
        side = 1 if rng.random() < 0.5 else -1
        sigma10_bp = sim.sigma_s * math.sqrt(600.0) * 1e4
        dist = float(rng.uniform(*self.dist)) * sigma10_bp / 1e4
        vid = int(rng.choice(sim.vids, p=sim.shares))
        share = sim.by_vid[vid].share
        usd = self.mult * self._level_usd() * share * float(rng.uniform(0.6, 1.6))
        g = self.grid
        level = (math.floor if side > 0 else math.ceil)(price * (1 - side * dist) / g) * g
        level = float(f"{level:.12g}")
        if not level > 0:
            return
        born = now if born is None else born
        life = float(rng.exponential(self.life_s))
        self.walls.append(BookWall(vid, side, level, usd, born, born + life, bool(rng.random() < self.pull_prob)))

    def _follow(self, w: BookWall, now: float, dt: float, price: float, rows: list) -> None:
        # distance from the wall to price on the wall's own side, bp (negative: price went through it)
        dist = w.side * (price - w.price) / w.price * 1e4
        if dist < 0:
            w.state = "consumed"  # price is beyond it: it was eaten (its size prints as a sweep)
            self._walk(rows, w.vid, -w.side, w.price, price, w.usd + max(w.target - w.absorbed, 0.0), 3)
            return
        if now >= w.dies:
            w.state = "expired"
            return
        if w.pull:
            if dist <= self.pull_bp:
                w.state = "pulled"
            return
        self._touch(w, w, dist, price, dt, w.usd, rows)

    def _touch(self, w, st, dist: float, price: float, dt: float, shown: float, rows: list) -> None:
        """A standing wall ``w`` (its touch state in ``st``) that price reached: the aggression arrives as a
        sweep into the level, then prints at the level over ``absorb_s`` while it keeps showing ``shown``."""
        if dist <= self.touch_bp:
            if not st.touching:  # price arrived: a sweep into the level, then the level absorbs
                st.touching = True
                visible = shown + 3.0 * self._level_usd()
                st.target = float(self.rng.uniform(*self.absorb)) * visible
                st.absorbed = first = self.sweep_share * st.target
                self._walk(rows, w.vid, -w.side, price, w.price, first, 3)
            elif st.absorbed < st.target:
                amt = min(st.target - st.absorbed,
                          st.target * (1 - self.sweep_share) * dt / max(self.absorb_s, 1e-9))
                st.absorbed += amt
                self._walk(rows, w.vid, -w.side, w.price, w.price, amt, 1)
        elif dist > 2 * self.touch_bp:
            st.touching = False  # price turned away: a later touch is a new test of the wall

    def _walk(self, rows: list, vid: int, taker: int, p_from: float, p_to: float, usd: float, n: int) -> None:
        """``usd`` of taker ``taker`` prints on venue ``vid`` at ``n`` prices from ``p_from`` to ``p_to``
        (distinct ticks where they fit: the levels a sweep walks), as the simulator's trade rows."""
        c = self.sim.by_vid[vid]
        tick = c.price_tick / c.mult
        a, b = round(p_from / tick), round(p_to / tick)
        if n <= 1:
            ticks = [b]
        else:
            ticks = sorted({round(a + (b - a) * j / (n - 1)) for j in range(n)}, reverse=(b < a))
            if len(ticks) < n:  # fewer ticks between than prints: they arrive at p_to from further back
                d = (1 if b > a else -1) if b != a else taker  # a taker sell walks down: it arrives from above
                ticks = [b - d * k for k in range(n - 1, -1, -1)]
        part = usd / len(ticks)
        for t in ticks:
            px = float(f"{t * tick:.12g}")
            if px <= 0:
                continue
            q = qty_for(c, part, px)
            usd_q = q * c.contract_size if c.inverse else q * c.contract_size * c.mult * px
            rows.append((vid, taker, px, q, usd_q, 0, 0))  # not a liquidation; no position behind it

