"""The simulated market for one asset: leveraged traders, order-flow-driven price, cascades, walls.

Why it is built this way:
- Positions are explicit (entry, leverage, size, venue, side) so the simulator knows every TRUE
  liquidation price (tiered margin, ``contracts.py``) and can serve as ground truth for forecast skill.
- The trader population is the simulator's own: a lognormal *mixture* of leverage clipped at each venue's
  max leverage, lognormal sizes with a Pareto whale tail, entries scattered around the traded price,
  trend-chasing side choice, holding times that shorten when a position is far in profit or loss. None of
  it is the synthetic model's default leverage weights.
- Opens and closes are taker orders (the leveraged trader is the aggressor); their net USD flow moves the
  log price (impact ∝ flow / depth), on top of diffusion, rare news jumps and a weak pull to the reference.
- A position is liquidated when price crosses its true liquidation price; the forced market order moves
  price further (× ``cascade_strength``), which can liquidate the next band: cascades emerge, not scripted.
- Resting walls sit in one venue's book; when price comes near a wall it is either pulled or holds. A
  holding wall absorbs the pressure that would carry price through it until it is used up, then price
  sweeps through.
- Open interest per venue is the sum of open position sizes on the heavier side: the other side of any
  long/short imbalance is market makers' inventory (never liquidated), so one contract = one long + one
  short as venues count it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from liqmap.core.assets import DEFAULT_ASSETS, Asset
from liqmap.core.events import VENUES

from liqmap.core.tiers import liq_price_tiered

from .contracts import Contract, bankruptcy_price, contracts_for
from .resting import Resting

POS_DTYPE = np.dtype([
    ("id", "i8"), ("venue", "u1"), ("side", "i1"), ("entry", "f8"), ("lev", "f8"),
    ("qty", "f8"),  # venue contracts (base units for linear, USD for inverse contracts)
    ("liq", "f8"),  # true liquidation price (real USD per base unit)
    ("bk", "f8"),  # bankruptcy price
    ("mmr", "f8"), ("opened", "f8"),
    ("close_at", "f8"),  # planned exit time (exponential holding time)
    ("up", "f8"), ("dn", "f8"),  # the position leaves when price reaches up (≥) or dn (≤) ...
    ("up_liq", "?"), ("dn_liq", "?"),  # ... by liquidation (True) or its own take-profit / stop-loss
    ("lots", "i8"),  # qty in whole lots (open interest is summed in integers: exact)
    ("alive", "?"),
    ("rest", "?"),  # a resting cohort's position (``resting.py``): no tape of its own, low leverage, held for days
])

# One row per liquidated position (ground truth, every one, before any venue publishing limit).
TRUTH_LIQ_DTYPE = np.dtype([
    ("ts", "f8"), ("price", "f8"), ("usd", "f8"), ("base", "f8"), ("qty", "f8"), ("side", "i1"),
    ("venue", "u1"), ("entry", "f8"), ("lev", "f8"), ("bk", "f8"), ("id", "i8"),
])

# A taker trade as the simulator executed it (aggregated per venue/side/tick for ordinary flow).
SIM_TRADE_DTYPE = np.dtype([
    ("venue", "u1"), ("side", "i1"), ("price", "f8"), ("qty", "f8"), ("usd", "f8"), ("liq", "i1"),
    ("id", "i8"),  # the position behind the trade (0: noise flow, or aggregated)
])
# Venues that publish every fill rather than aggregates: their plain trades stay one per position (with its
# id, for the wallets Hyperliquid's trades name).
PER_FILL_VENUES = frozenset({"hyperliquid"})
# A resting cohort (resting.py) stands for many accounts at one entry, so one liquidation of it can be several times
# the whole book. A venue's liquidation engine does not market that into the book: what the book cannot take goes
# to its insurance fund and auto-deleveraging. So the cohorts liquidated in one round of a cascade move price at most
# as far as this share of the book's 1 % depth would (1 = a 1 % move). Unbounded, a cascade day at real-sized open
# interest ran SOL from $150 to $6e11 in 35 minutes (each round's liquidations, × cascade_strength, moved price by a
# factor of ~14 onto the next cohorts' liquidation prices); bounded at 1 it still squeezed SOL to $283 through the
# cohorts' liquidation prices 1 % apart; at 0.2 (benchmark seed 1) SOL peaks at $176 where the same market without
# the cohorts peaks at $172.
REST_LIQ_MAX_DEPTH = 0.2


def asset_rank(name: str) -> int:
    """Position in the default universe (activity ranking); unknown assets rank last."""
    try:
        return DEFAULT_ASSETS.index(name)
    except ValueError:
        return len(DEFAULT_ASSETS)


def asset_seed(name: str) -> int:
    return zlib.crc32(name.encode())


@dataclass
class Wall:
    vid: int
    side: int  # BID (+1, below price) or ASK (-1, above price)
    price: float
    usd: float
    usd0: float
    born: float
    state: str = "active"  # active → held | pulled | consumed | expired
    decided: bool = False


@dataclass
class TickResult:
    ts: float  # end of the step, seconds
    price: float
    trades: np.ndarray  # SIM_TRADE_DTYPE
    liqs: np.ndarray  # TRUTH_LIQ_DTYPE


class AssetSim:
    """One asset's traders, positions, price and walls across the venues that list it."""

    def __init__(self, asset: Asset, cfg: dict, seed: int, start: float, prehistory: bool = True,
                 contracts: dict[str, Contract] | None = None, stream: int = 1, flow_share: float = 1.0) -> None:
        """``contracts``, ``stream`` and ``flow_share``: a ``ShadowSim``'s own venues, random stream and share
        of the asset's flow (the main simulator: every listed slot, stream 1, all of it)."""
        self.asset = asset
        self.cfg = cfg
        self.rank = asset_rank(asset.name)
        self.weight = (self.rank + 1.0) ** -cfg["rate_decay"]
        self.contracts: dict[str, Contract] = (contracts if contracts is not None
                                               else contracts_for(asset, self.rank, self.weight))
        self.by_vid: dict[int, Contract] = {c.vid: c for c in self.contracts.values()}
        # in slot order (contracts.DEMO_VENUES), which the venue draws follow: not sorted by id
        self.vids = np.array(list(self.by_vid), dtype=np.uint8)
        self.shares = np.array([self.by_vid[v].share for v in self.vids])
        if contracts is not None:  # a shadow's venues: their shares are of the whole asset; draws are among them
            self.shares = self.shares / self.shares.sum()
        n = len(VENUES)
        self._inv = np.zeros(n, bool)
        self._cs = np.ones(n)
        self._mult = np.ones(n)
        self._tick = np.ones(n)
        self._maxlev = np.ones(n)
        for v, c in self.by_vid.items():
            self._inv[v], self._cs[v], self._mult[v] = c.inverse, c.contract_size, c.mult
            self._tick[v], self._maxlev[v] = c.price_tick / c.mult, c.max_lev
        self.rng = np.random.default_rng([seed, asset_seed(asset.name), stream])
        self.price = float(asset.ref_price)
        self.log_ref = math.log(asset.ref_price)
        self.now = start
        self.ema = self.price  # slow price average for trend-chasing side choice
        alt = min(1.0, self.rank / 64.0)
        self.sigma_s = cfg["vol_hour_pct"] / 100.0 * (1 + (cfg["alt_vol_mult"] - 1) * alt) / 60.0
        self.depth_usd = cfg["depth_usd_1pct"] * self.weight
        self.open_rate = cfg["open_rate"] * self.weight * flow_share
        self.noise_rate = cfg["noise_rate"] * self.weight * flow_share
        self.size_med = cfg["size_median_usd"] * self.weight ** 0.3
        self.hold_s = cfg["hold_minutes"] * 60.0
        # The resting cohorts that bring open interest to real size (``resting.py``); their own random stream, so
        # the active traders' draws (and the price path) are those of the simulator without them.
        self.resting = Resting.for_asset(self.rank, cfg, flow_share)
        # ... on the linear contracts only: an inverse contract's open interest is USD, which the wire (and
        # the model) reads in coins, so a real-sized level there would move with price like a stream of opens
        # and closes (Deribit's BTC-PERPETUAL; Hyperliquid's slot keeps BitMEX's inverse units for BTC/ETH)
        lin = ~self._inv[self.vids]
        self._rest_vids = self.vids[lin]
        self._rest_shares = self.shares[lin] / self.shares[lin].sum() if lin.any() else self.shares[lin]
        if not lin.any():
            self.resting = Resting(0.0, self.resting.hold_s, 0.0, 1.0)
        self.rest_rng = np.random.default_rng([seed, asset_seed(asset.name), stream, 7])
        self._buf = np.zeros(1024, POS_DTYPE)
        self._n = 0  # rows used in _buf (alive or dead; dead rows are compacted lazily)
        self._dead = 0
        self._min_close = math.inf
        self._min_up = math.inf
        self._max_dn = -math.inf
        self.oi_lots = np.zeros((len(VENUES), 2), np.int64)  # [venue, long/short] in lots
        self._lot = np.ones(len(VENUES))
        for v, c in self.by_vid.items():
            self._lot[v] = c.lot
        # venues sharing a tier table and contract type get their liquidation prices in one call
        self._groups: list[tuple] = []
        self._group_of = np.full(len(VENUES), -1, np.int64)
        for v, c in sorted(self.by_vid.items()):
            key = (c.table, c.inverse)
            for g, (t, inv) in enumerate(self._groups):
                if t is c.table and inv == c.inverse:
                    self._group_of[v] = g
                    break
            else:
                self._groups.append(key)
                self._group_of[v] = len(self._groups) - 1
        self.next_id = 1
        self._shock: float | None = None
        self.walls: list[Wall] = []
        self.liq_log: list[np.ndarray] = []
        self.walls_log: list[Wall] = []
        if prehistory:
            self._seed_population()

    # ------------------------------------------------------------------ positions
    def _draw_positions(self, k: int, price: np.ndarray | float, side: np.ndarray, now,
                        rest: bool = False, like: np.ndarray | None = None) -> np.ndarray:
        """Draw ``k`` new positions entered around ``price`` (their leverage/size/venue are the
        simulator's own distributions; ``rest``: a resting cohort's, ``resting.py``, from its own stream).
        ``like``: rows whose venue and size (in lots) the new ones take over (a resting cohort's roll)."""
        rng, cfg = (self.rest_rng if rest else self.rng), self.cfg
        out = np.zeros(k, POS_DTYPE)
        if like is not None:
            vids = like["venue"].copy()
        elif rest:
            vids = rng.choice(self._rest_vids, size=k, p=self._rest_shares)
        else:
            vids = rng.choice(self.vids, size=k, p=self.shares)
        if rest:
            lev, usd = self.resting.draw(rng, k)
            lev = np.minimum(lev, self._maxlev[vids])
        else:
            meds = np.log(np.asarray(cfg["leverage_medians"]))
            w = np.asarray(cfg["leverage_weights"], float)
            comp = rng.choice(len(meds), size=k, p=w / w.sum())
            lev = np.exp(meds[comp] + cfg["leverage_sigma"] * rng.standard_normal(k))
            lev = np.clip(np.round(lev), 2.0, self._maxlev[vids])
            usd = self.size_med * np.exp(cfg["size_sigma"] * rng.standard_normal(k))
            whale = rng.random(k) < cfg["whale_share"]
            if whale.any():
                usd[whale] = 20 * self.size_med * (1 + rng.pareto(cfg["whale_alpha"], whale.sum()))
            usd = np.minimum(usd, 50e6 * self.weight)
        entry = np.asarray(price) * np.exp(cfg["entry_jitter_bp"] * 1e-4 * rng.standard_normal(k))
        tick = self._tick[vids]
        entry = np.maximum(np.round(entry / tick), 1) * tick
        out["id"] = np.arange(self.next_id, self.next_id + k)
        self.next_id += k
        out["venue"], out["side"], out["entry"] = vids, side, entry
        out["opened"] = now
        out["close_at"] = np.asarray(now) + rng.exponential(self.resting.hold_s if rest else self.hold_s, k)
        out["rest"] = rest
        tp = np.exp(rng.standard_normal(k) * 0.6)  # take profit: median +100% on margin
        sl = np.where(rng.random(k) < 0.4, rng.uniform(0.3, 0.9, k), np.inf)  # 40% use a stop
        if rest:  # a resting cohort has no stop or take-profit: it leaves at its holding time (or liquidation)
            tp, sl = np.full(k, np.inf), np.full(k, np.inf)
        # sizes in whole lots of each venue's contract; leverage capped by the tier of the notional;
        # true liquidation prices from the core formula, one call per (tier table, linear/inverse) group
        unit = np.where(self._inv[vids], self._cs[vids], self._cs[vids] * self._mult[vids] * entry)
        lot = self._lot[vids]
        lots = np.maximum(np.rint(usd / unit / lot), 1.0) if like is None else like["lots"].astype(float)
        qty = np.round(lots * lot, 10)
        notional = qty * unit
        liq = np.empty(k)
        mmr = np.empty(k)
        gid = self._group_of[vids]
        for g, (table, inverse) in enumerate(self._groups):
            m = gid == g
            if not m.any():
                continue
            cap = np.floor(np.asarray(table.max_leverage_for(notional[m]), dtype=float))
            lev[m] = np.maximum(np.minimum(lev[m], cap), 1.0)
            lp = np.asarray(liq_price_tiered(entry[m], lev[m], side[m], notional[m], table, inverse=inverse), float)
            liq[m] = np.where(np.isnan(lp), np.where(side[m] > 0, 0.0, np.inf), lp)
            mmr[m] = table.mmr_for(notional[m])
        out["qty"], out["lots"], out["liq"], out["mmr"] = qty, lots.astype(np.int64), liq, mmr
        long_ = side > 0
        with np.errstate(divide="ignore"):
            out["bk"] = np.where(self._inv[vids],
                                 np.where(long_, entry / (1 + 1 / lev), entry / np.maximum(1 - 1 / lev, 1e-12)),
                                 np.where(long_, entry * (1 - 1 / lev), entry * (1 + 1 / lev)))
        out["lev"] = lev
        long_ = side > 0
        tp_px = entry * (1 + np.where(long_, tp, -np.minimum(tp, 0.95 * lev)) / lev)
        with np.errstate(invalid="ignore"):
            sl_px = entry * (1 - np.where(long_, sl, -sl) / lev)  # ±inf for traders without a stop
        sl_px = np.where(np.isnan(sl_px), np.where(long_, -np.inf, np.inf), sl_px)
        liq = out["liq"]
        # longs: up = take profit; down = the higher of liquidation and stop
        # shorts: down = take profit; up = the lower of liquidation and stop
        out["up"] = np.where(long_, tp_px, np.minimum(liq, sl_px))
        out["up_liq"] = ~long_ & (liq <= sl_px)
        out["dn"] = np.where(long_, np.maximum(liq, sl_px), tp_px)
        out["dn_liq"] = long_ & (liq >= sl_px)
        out["alive"] = True
        return out

    # --- storage: a capacity buffer with lazy deletion (opening or closing a few positions never
    # copies the whole population)
    @property
    def pos(self) -> np.ndarray:
        """The open positions (a copy)."""
        b = self._buf[:self._n]
        return b[b["alive"]]

    def _append(self, new: np.ndarray) -> None:
        k = len(new)
        if self._n + k > len(self._buf):
            self._compact(extra=k)
        self._buf[self._n:self._n + k] = new
        self._n += k
        sidx = (new["side"] < 0).astype(np.intp)
        np.add.at(self.oi_lots, (new["venue"].astype(np.intp), sidx), new["lots"])
        self._min_close = min(self._min_close, float(new["close_at"].min()))
        self._min_up = min(self._min_up, float(new["up"].min()))
        self._max_dn = max(self._max_dn, float(new["dn"].max()))

    def _kill(self, idx: np.ndarray) -> np.ndarray:
        """Close the positions at ``idx`` (indices into the buffer); returns their rows."""
        b = self._buf
        rows = b[idx].copy()
        b["alive"][idx] = False
        b["up"][idx] = np.inf
        b["dn"][idx] = -np.inf
        b["close_at"][idx] = np.inf
        sidx = (rows["side"] < 0).astype(np.intp)
        np.subtract.at(self.oi_lots, (rows["venue"].astype(np.intp), sidx), rows["lots"])
        self._dead += len(idx)
        live = b[:self._n]
        self._min_close = float(live["close_at"].min()) if self._n else math.inf
        self._min_up = float(live["up"].min()) if self._n else math.inf
        self._max_dn = float(live["dn"].max()) if self._n else -math.inf
        if self._dead > 256 and self._dead * 3 > self._n:
            self._compact()
        return rows

    def _compact(self, extra: int = 0) -> None:
        live = self._buf[:self._n]
        live = live[live["alive"]]
        cap = max(1024, int((len(live) + extra) * 1.5))
        buf = np.zeros(cap, POS_DTYPE)
        buf[:len(live)] = live
        self._buf, self._n, self._dead = buf, len(live), 0

    def _seed_population(self) -> None:
        """Start in steady state: the positions opened over the past hours that are still open, with
        entries along a random past path. The model never sees these being opened (like a real start)."""
        rng = self.rng
        n = int(self.open_rate * self.hold_s)
        if n <= 0:
            return
        age, past, side = self._past_entries(rng, n, self.hold_s)
        pos = self._draw_positions(n, past, side, self.now - age)
        self._append(pos[(pos["up"] > self.price) & (pos["dn"] < self.price)])
        self._seed_resting()

    def _past_entries(self, rng, n: int, hold_s: float):
        """(age, entry price, side) of ``n`` positions still open now, opened along a random past path: ages
        exponential with the mean holding time, each entry a random walk back from today's price over its age."""
        age = rng.exponential(hold_s, n)
        past = self.price * np.exp(self.sigma_s * np.sqrt(age) * rng.standard_normal(n))
        side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
        return age, past, side

    def _seed_resting(self) -> None:
        """The resting cohorts in steady state (``resting.py``), entered along their own random past path, in
        pairs: a long and a short of the same size on the same venue (each other's counterparty), so they add the
        same lots to both sides and the venue's open interest (the heavier side) moves by exactly what the active
        traders' does."""
        rng, r = self.rest_rng, self.resting
        n = int(r.rate * r.hold_s) // 2
        if n <= 0:
            return
        pairs = []
        for sign in (1, -1):
            age, past, _ = self._past_entries(rng, n, r.hold_s)
            side = np.full(n, sign, np.int8)
            pos = self._draw_positions(n, past, side, self.now - age, rest=True, like=pairs[0] if pairs else None)
            # still open now, so what remains of their holding time is a fresh exponential (memoryless); drawn
            # from their opening time, half would close in the first minutes
            pos["close_at"] = self.now + rng.exponential(r.hold_s, n)
            pairs.append(pos)
        # A cohort that the days since its entry brought within 10 % of its liquidation has added margin by now
        # (held for days, cross-margined): the start has none, so the first minutes do not liquidate $bn of them.
        keep = np.ones(n, bool)
        for pos in pairs:
            keep &= (pos["up"] > self.price) & (pos["dn"] < self.price) & (np.abs(pos["liq"] / self.price - 1.0) > 0.1)
        self._append(np.concatenate([pos[keep] for pos in pairs]))

    def usd_of(self, vid: np.ndarray, qty: np.ndarray, price) -> np.ndarray:
        price = np.asarray(price, dtype=float)
        return np.where(self._inv[vid], qty * self._cs[vid], qty * self._cs[vid] * self._mult[vid] * price)

    def base_of(self, vid: np.ndarray, qty: np.ndarray, price) -> np.ndarray:
        price = np.asarray(price, dtype=float)
        return np.where(self._inv[vid], qty * self._cs[vid] / price, qty * self._cs[vid] * self._mult[vid])

    # ------------------------------------------------------------------ walls
    def level_usd(self) -> float:
        """USD resting on one book level (all venues), from the depth that moves price 1%."""
        return self.depth_usd / (100.0 / self.cfg["book_step_bp"])

    def _walls_step(self, dt: float) -> None:
        rng, cfg = self.rng, self.cfg
        p = self.price
        if rng.random() < cfg["wall_rate_per_hour"] / 3600.0 * dt:
            side = 1 if rng.random() < 0.5 else -1
            dist = rng.uniform(0.002, 0.01)
            vid = int(rng.choice(self.vids, p=self.shares))
            share = self.by_vid[vid].share
            usd = cfg["wall_mult"] * self.level_usd() * share * rng.uniform(0.6, 1.6)
            self.walls.append(Wall(vid, side, p * (1 - side * dist), usd, usd, self.now))
        for w in self.walls:
            if w.state != "active":
                continue
            if not w.decided and abs(p - w.price) / p < 0.0015:
                w.decided = True
                if rng.random() < cfg["wall_pull_prob"]:
                    w.state = "pulled"
            elif abs(p - w.price) / p > 0.03 or self.now - w.born > 3 * 3600:
                w.state = "expired"
        done = [w for w in self.walls if w.state != "active"]
        if done:
            self.walls_log.extend(done)
            self.walls = [w for w in self.walls if w.state == "active"]

    def _walls_clamp(self, p0: float, p1: float) -> float:
        """A holding wall between p0 and p1 absorbs the pressure beyond it; price stops at it until the
        wall is used up (absorption), then continues through (sweep)."""
        if not self.walls or p0 == p1:
            return p1
        down = p1 < p0
        for w in sorted(self.walls, key=lambda w: -w.price if down else w.price):
            if w.state != "active" or (down and not (w.side > 0 and p1 < w.price <= p0)) or (
                    not down and not (w.side < 0 and p0 <= w.price < p1)):
                continue
            beyond = abs(math.log(p1 / w.price)) * 100.0 * self.depth_usd
            if beyond < w.usd:
                w.usd -= beyond
                w.decided = True
                return w.price * (1 + 2e-4 * w.side)
            w.usd = 0.0
            w.state = "consumed"
        return p1

    # ------------------------------------------------------------------ one step
    def step(self, dt: float) -> TickResult:
        rng, cfg = self.rng, self.cfg
        self.now = round(self.now + dt, 6)
        p0 = self.price
        trades = self._flow(dt, p0)

        flow = sum(float((t["side"] * t["usd"]).sum()) for t in trades)
        dlog = self.sigma_s * math.sqrt(dt) * rng.standard_normal() + flow / (100.0 * self.depth_usd)
        dlog -= (math.log(p0) - self.log_ref) * dt / (cfg["mean_revert_hours"] * 3600.0)
        dlog += cfg.get("drift_pct_hour", 0.0) / 100.0 * dt / 3600.0  # a trending market (0 = none)
        if rng.random() < cfg["jump_rate_per_hour"] / 3600.0 * dt:
            dlog += (1 if rng.random() < 0.5 else -1) * rng.exponential(cfg["jump_pct"] / 100.0)
        if self._shock is not None:
            dlog, self._shock = math.log1p(self._shock / 100.0), None
        p1 = self._walls_clamp(p0, p0 * math.exp(dlog))
        return self._finish(dt, p1, trades)

    def _finish(self, dt: float, p1: float, trades: list) -> TickResult:
        """Liquidations and the cascade they feed on the way to ``p1``, then the step's result."""
        p1, liq_rows, liq_trades = self._cascade(self.price, p1)
        trades.extend(liq_trades)

        self.price = p1
        self.ema += (p1 - self.ema) * min(1.0, dt / 600.0)
        self._walls_step(dt)
        tr = np.concatenate(trades) if trades else np.zeros(0, SIM_TRADE_DTYPE)
        lq = np.concatenate(liq_rows) if liq_rows else np.zeros(0, TRUTH_LIQ_DTYPE)
        if len(lq):
            self.liq_log.append(lq)
        return TickResult(self.now, p1, self._aggregate(tr, p1), lq)

    def _flow(self, dt: float, p0: float) -> list[np.ndarray]:
        """The step's traders at price ``p0``: planned exits, opens (trend-chasing side choice), noise flow."""
        rng, cfg = self.rng, self.cfg
        trades: list[np.ndarray] = []

        # planned exits (holding time over)
        if self.now >= self._min_close:
            live = self._buf[:self._n]
            idx = np.flatnonzero(live["close_at"] <= self.now)
            if len(idx):
                c = self._kill(idx)
                rolled = c[c["rest"]]
                if len(rolled):  # a resting cohort hands its position to the next (resting.py): OI unchanged
                    self._append(self._draw_positions(len(rolled), p0, rolled["side"], self.now, rest=True,
                                                      like=rolled))
                c = c[~c["rest"]]  # ... off the tape, no impact
                if len(c):
                    trades.append(self._trade_rows(c["venue"], -c["side"], p0, c["qty"], ids=c["id"]))

        # opens (trend-chasing side choice)
        k = rng.poisson(self.open_rate * dt)
        if k:
            mom = math.log(p0 / self.ema) / max(self.sigma_s * math.sqrt(600.0), 1e-9)
            p_long = 0.5 + cfg["momentum_tilt"] * math.tanh(mom)
            side = np.where(rng.random(k) < p_long, 1, -1).astype(np.int8)
            new = self._draw_positions(k, p0, side, self.now)
            trades.append(self._trade_rows(new["venue"], new["side"], p0, new["qty"], ids=new["id"]))
            self._append(new)

        # noise flow that does not change open interest
        m = rng.poisson(self.noise_rate * dt)
        if m:
            vids = rng.choice(self.vids, size=m, p=self.shares)
            usd = 0.5 * self.size_med * np.exp(1.2 * rng.standard_normal(m))
            lot_usd = self.usd_of(vids, self._lot[vids], p0)
            qty = np.round(np.maximum(np.round(usd / lot_usd), 1.0) * self._lot[vids], 10)
            trades.append(self._trade_rows(vids, np.where(rng.random(m) < 0.5, 1, -1), p0, qty))

        return trades

    def _trade_rows(self, vid, side, price, qty, liq: bool = False, ids=0) -> np.ndarray:
        n = len(qty)
        out = np.zeros(n, SIM_TRADE_DTYPE)
        out["venue"], out["side"], out["price"], out["qty"], out["id"] = vid, side, price, qty, ids
        out["usd"] = self.usd_of(out["venue"], out["qty"], out["price"])
        out["liq"] = 1 if liq else 0
        return out

    def _aggregate(self, tr: np.ndarray, price: float) -> np.ndarray:
        """Ordinary flow per (venue, side) becomes one trade at the step's closing price, as a venue's
        aggregated trade would show it; liquidation fills stay one trade each at their own price."""
        if not len(tr):
            return tr
        liq = tr[tr["liq"] == 1]
        plain = tr[tr["liq"] == 0]
        rows = []
        for v in self.vids:
            if self.by_vid[int(v)].venue in PER_FILL_VENUES:
                continue
            for s in (1, -1):
                m = (plain["venue"] == v) & (plain["side"] == s)
                if m.any():
                    c = self.by_vid[int(v)]
                    q = round(float(plain["qty"][m].sum()), c.qty_dp)
                    rows.append((v, s, price, q, 0.0, 0, 0))
        agg = np.array(rows, SIM_TRADE_DTYPE) if rows else np.zeros(0, SIM_TRADE_DTYPE)
        agg["usd"] = self.usd_of(agg["venue"], agg["qty"], agg["price"])
        fills = [plain[plain["venue"] == v] for v in self.vids if self.by_vid[int(v)].venue in PER_FILL_VENUES]
        return np.concatenate([agg, *fills, liq])

    def _liquidate(self, h: np.ndarray) -> np.ndarray:
        out = np.zeros(len(h), TRUTH_LIQ_DTYPE)
        out["ts"] = self.now
        out["price"] = h["liq"]
        out["usd"] = self.usd_of(h["venue"], h["qty"], h["liq"])
        out["base"] = self.base_of(h["venue"], h["qty"], h["liq"])
        for f in ("qty", "side", "venue", "entry", "lev", "bk", "id"):
            out[f] = h[f]
        return out

    def _cascade(self, p0: float, p1: float) -> tuple[float, list, list]:
        """Every position whose exit lies on the path p0 → p1 leaves: by liquidation at its TRUE
        liquidation price, or by its own stop / take-profit order at that price. Both are market
        orders that move price further (liquidations × cascade_strength: the forced orders hit a thinner
        book), which may reach the next band."""
        lo, hi = min(p0, p1), max(p0, p1)
        liq_rows: list[np.ndarray] = []
        trades: list[np.ndarray] = []
        for _ in range(12):
            if hi < self._min_up and lo > self._max_dn:
                break
            live = self._buf[:self._n]
            idx = np.flatnonzero((live["up"] <= hi) | (live["dn"] >= lo))
            if not len(idx):
                break
            h = self._kill(idx)
            going_up = h["up"] <= hi
            is_liq = np.where(going_up, h["up_liq"], h["dn_liq"])
            at = np.where(going_up, h["up"], h["dn"])
            forced = 0.0
            if is_liq.any():
                hl = h[is_liq]
                liq_rows.append(self._liquidate(hl))
                t = self._trade_rows(hl["venue"], -hl["side"], hl["liq"], hl["qty"], liq=True, ids=hl["id"])
                trades.append(t)
                signed = t["side"] * t["usd"]
                rest = hl["rest"]
                forced += self.cfg["cascade_strength"] * float(signed[~rest].sum())
                if rest.any():  # bounded: REST_LIQ_MAX_DEPTH (no resting cohorts, no change)
                    lim = REST_LIQ_MAX_DEPTH * self.depth_usd
                    forced += min(max(self.cfg["cascade_strength"] * float(signed[rest].sum()), -lim), lim)
            if (~is_liq & ~h["rest"]).any():  # a resting cohort's stop/take-profit is matched off the tape
                hv = h[~is_liq & ~h["rest"]]
                t = self._trade_rows(hv["venue"], -hv["side"], at[~is_liq & ~h["rest"]], hv["qty"], ids=hv["id"])
                trades.append(t)
                forced += float((t["side"] * t["usd"]).sum())
            p_new = p1 * math.exp(forced / (100.0 * self.depth_usd))
            p1 = self._walls_clamp(p1, p_new)
            lo, hi = min(lo, p1), max(hi, p1)
        return p1, liq_rows, trades

    # ------------------------------------------------------------------ forced events (tests, demos)
    def shock_next(self, pct: float) -> None:
        """Make the next step a news jump of ``pct`` percent (instead of its random move); the cascade
        that follows runs as usual."""
        self._shock = pct

    def inject(self, venue: str, side, entry, leverage, usd, hold: bool = True) -> np.ndarray:
        """Open positions by hand (a crowded leverage band for a test or a scripted demo). With ``hold``
        they never exit on their own (no planned exit, no stop, no take-profit): only liquidation ends
        them. Returns their rows (with ids and true liquidation prices)."""
        c = self.contracts[venue]
        side, entry, lev, usd = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (side, entry, leverage, usd)))
        k = len(side)
        out = np.zeros(k, POS_DTYPE)
        out["id"] = np.arange(self.next_id, self.next_id + k)
        self.next_id += k
        out["venue"], out["side"], out["lev"], out["opened"] = c.vid, side, lev, self.now
        out["entry"] = np.maximum(np.round(entry / self._tick[c.vid]), 1) * self._tick[c.vid]
        qty = c.qty_for_usd(usd, out["entry"])
        out["qty"], out["lots"] = qty, np.rint(qty / c.lot).astype(np.int64)
        out["liq"], out["mmr"] = c.liq_price(out["entry"], lev, side, qty)
        out["bk"] = bankruptcy_price(out["entry"], lev, side, c.inverse)
        out["close_at"] = np.inf if hold else self.now + self.hold_s
        long_ = side > 0
        out["up"] = np.where(long_, np.inf, out["liq"])
        out["dn"] = np.where(long_, out["liq"], -np.inf)
        out["up_liq"], out["dn_liq"] = ~long_, long_
        out["alive"] = True
        self._append(out)
        return out

    # ------------------------------------------------------------------ truth
    def open_interest(self, vid: int) -> float:
        """One-sided open interest in venue contracts: the heavier side's sum of open sizes (the other
        side of any imbalance is market makers' inventory)."""
        c = self.by_vid[vid]
        return round(float(max(self.oi_lots[vid, 0], self.oi_lots[vid, 1])) * c.lot, c.qty_dp)


class ShadowSim(AssetSim):
    """A venue the main simulator does not hold for an asset, simulated beside it without touching it:
    Hyperliquid on the assets it lists beyond BitMEX's former 25 (``contracts.shadow_contracts``).

    Its traders are drawn from their own random stream with the main simulator's distributions, at the venue's
    share of the asset's flow; they trade at the main simulator's prices and are liquidated at their true
    liquidation prices when its price path crosses them (``follow``), but their orders move no price (infinite
    depth, no walls): every other venue's frames are byte for byte those of the simulator without it."""

    def __init__(self, asset: Asset, cfg: dict, seed: int, start: float, contracts: dict[str, Contract],
                 flow_share: float, prehistory: bool = True) -> None:
        super().__init__(asset, cfg, seed, start, prehistory=prehistory, contracts=contracts, stream=6,
                         flow_share=flow_share)
        self.depth_usd = math.inf  # price is the main simulator's

    def follow(self, now: float, p1: float) -> TickResult:
        """Step to the main simulator's ``now`` as its price moved from this one's (its last) to ``p1``."""
        dt = max(round(now - self.now, 6), 0.0)
        self.now = round(now, 6)
        return self._finish(dt, float(p1), self._flow(dt, self.price))

    def _walls_step(self, dt: float) -> None:
        return None  # walls are the main simulator's (its books show them)

    def step(self, dt: float) -> TickResult:  # pragma: no cover - a shadow never moves price on its own
        raise TypeError("a ShadowSim follows its main simulator's price (follow)")
