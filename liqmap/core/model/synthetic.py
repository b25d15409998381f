"""The synthetic liquidation model (docs/model.md §3): where open positions would be liquidated.

Per asset, fed by normalized events from any of the five venues. For each venue the model follows the
open-interest series; every accepted OI step between two samples of that venue is one *interval*:

1. ``ΔN = ΔOI × VWAP`` (USD) of the venue's trades since the interval began. Steps smaller than
   ``max(min_delta_rel·OI·P, min_delta_usd)`` are not applied yet: the interval keeps growing (its anchor
   stays), so slow steady growth is not lost and noise cancels. ``|ΔN|`` is capped at ``cap_rel·OI·P``.
2. Side split by taker flow ``φ = B/(B+S)``: ``ΔN_long = ΔN·(α·φ + (1−α)/2)``, the rest short.
3. Entries spread over the interval's traded-price profile (per-bucket VWAP as the entry, weight = traded
   notional). ``entry_mode = "highlow"`` puts longs at the interval low and shorts at the high instead. With no
   trades from the venue, entries sit at the mark (or the last traded price).
4. Leverage tiers ``W(L)`` renormalized after dropping tiers above the venue's max leverage (tier table).
5. Exact liquidation prices (:func:`liqmap.core.tiers.liq_price_tiered`: linear or inverse per venue market,
   MMR and ``cum`` of the tier at the liquidation price, for a position of ``typical_position_usd`` — or
   the largest notional that tier's leverage allows, if smaller). Optional ``leverage_spread`` > 0 makes each
   tier stand for the band of leverages up to the geometric midpoints with its neighbours and spreads its
   mass evenly in price over that band's liquidation prices (1, the default; 0 keeps exact tier prices).
6. Closes (``ΔN < 0``) remove ``|ΔN|·φ`` from that venue's shorts and the rest from its longs,
   proportionally across the side's buckets (never below zero).
7. Consumption: a trade (any venue) at or below a long level's bucket, or at or above a short level's
   bucket, liquidates it: the level moves to the ``consumed`` ledger and is zeroed.
8. Decay ``V ← V·2^(−Δt/τ)``, ``τ = half_life_hours``.
9. Reconciliation: a real liquidation of ``q`` USD on venue v subtracts up to ``q`` from v's same-side
   levels within ``±reconcile_buckets`` of its price, nearest bucket first.
10. Cold start (optional, ``prior_weight`` > 0): at a venue's first OI sample, ``prior_weight`` of its OI
   (at the mark) is placed as that venue's *prior*: half long, half short, entries around the price
   (``prior_entry_sigma_pct``), the usual tiers. It is a separate source with its own half-life
   (``prior_half_life_hours``), closed, consumed and reconciled like the venue's other levels, and
   reported as ``prior_usd`` by :meth:`SyntheticModel.provenance`.

Steps 1–3 live in ``flow.py``, 4–5 in ``placement.py``, the column history in ``history.py``; this module holds
the state they write to and the order events reach it in.

State is dense: ``base[source, tier, side, bucket]`` over a window of buckets around the price (source
``v`` = venue v's observed OI steps, ``NV + v`` = venue v's cold-start prior), times a per-(source, side)
multiplier held as a log (``_lm``): decay and proportional closes only change that
number, so they cost nothing per bucket. A level's USD = ``base · exp(_lm − _ref)``; ``_ref`` is re-folded
into ``base`` when the multiplier gets extreme.

Not thread-safe: one caller at a time (the engine holds the asset's lock around update/advance/reads).

Event-time order: within one update, events are processed by timestamp; trades and real liquidations
between two OI samples are handled as one batch per 1-minute column (reconciliation before consumption,
so a real liquidation explains the level it hit before the rest of a swept level is recorded as consumed).
Events older than the model clock are processed at the clock (the clock never goes back).
"""

from __future__ import annotations

import math

import numpy as np

from .. import buckets
from ..assets import VenueMarket, default_universe
from ..events import LIQ_DTYPE, OI_DTYPE, TRADE_DTYPE, VENUES
from ..forecast import TAILS, RealizedVol, expected
from ..params import MODEL_DEFAULTS, core_params
from ..tiers import TierTable, table_for
from ..venues import TABLE as VENUE_TABLE
from .flow import VenueFlows
from .history import Histories
from .ledger import CONSUMED_DTYPE, ConsumedLedger
from ..prior import PriceHistory, surviving_weights
from .placement import Placement, prior_entries
from .scale import dollar_scale
from .sources import CODE_BITS, CODE_MASK, EPS_USD, LONG_I, MAX_INDEX, NS, NV, SHORT_I, pack

LN2 = math.log(2.0)
_FILL_EVERY_S = 120.0  # the OI prior's top-up runs at most this often per venue (core/prior.py)
_FILL_MIN_REL = 0.01  # ... and only for a gap above this share of the target
_FOLD_AT = -300.0  # fold the multiplier into base once it is below e^-300
_ZERO_FACTOR = 1e-12  # a close leaving less than this share zeroes the side outright

# MODEL_DEFAULTS: the model section of liqmap.core.params (ModelParams), the one place its defaults live.


def lev_label(lev: float) -> str:
    return f"{lev:g}x"


def _merged_params(params: dict | None) -> dict:
    p = dict(MODEL_DEFAULTS)
    for k, v in (params or {}).items():
        p[k] = v
    return p


class SyntheticModel:
    """Estimated liquidation notional at risk per price bucket, for one asset across venues.

    ``step`` is the asset's bucket step (liqmap.core.buckets); ``params`` the config ``model`` section;
    ``tiers`` per-venue tier tables (default: :func:`liqmap.core.tiers.table_for`); ``markets`` per-venue
    contracts (default: the asset's markets in the default universe; decides linear vs inverse);
    ``columns`` how many columns of each timeframe the history keeps (``engine.columns``; taken from
    ``cfg`` when given).
    """

    def __init__(self, asset: str, step: float, params: dict | None = None,
                 tiers: dict[str, TierTable] | None = None, markets: dict[str, VenueMarket] | None = None,
                 columns: int | None = None, cfg: dict | None = None, _history: bool = True):
        if not (step > 0 and math.isfinite(step)):
            raise ValueError(f"{asset}: bucket step must be positive, got {step!r}")
        self.asset = asset.upper()
        self.step = float(step)
        p = self.params = _merged_params(params)
        if columns is None:
            columns = core_params(cfg).engine.columns
        self.columns = max(1, int(columns))
        if markets is None:
            a = default_universe().get(self.asset)
            markets = dict(a.markets) if a else {}
        self.markets = markets
        self.tiers = {v: (tiers or {}).get(v) or table_for(self.asset, v) for v in VENUES}
        self._inverse = np.array([bool(markets.get(v) and markets[v].inverse) for v in VENUES])

        # Leverage bands (docs/model.md §3 step 4): tier k stands for the leverages between the geometric
        # midpoints to its neighbours, narrowed by an exponent. The levels — what the map draws — use a narrow
        # band (``leverage_spread``; 0 = thin lines at each tier's exact price, as sharp as the simulator's true
        # positions). The forecast weighs each tier over a wider band (``forecast_leverage_spread``): where a
        # tier's traders really sit is uncertain, and the forecast is an expectation over that. Its levels are a
        # second state fed the same events (``_fc``), so price sweeping part of a wide band consumes exactly that
        # part (a thin line re-spread at read time would keep the swept half of its band).
        self.spread = float(min(max(float(p["leverage_spread"]), 0.0), 1.0))
        self.placement = Placement(p["leverage_tiers"], p["leverage_weights"], self.tiers, self._inverse,
                                   float(p["typical_position_usd"]), self.spread)
        self.leverage = self.placement.leverage
        self.K = self.placement.K
        self.forecast_spread = float(min(max(float(p["forecast_leverage_spread"]), 0.0), 1.0))
        self._fc: SyntheticModel | None = None
        if self.forecast_spread > self.spread:
            # the OI prior feeds the forecast's state only with forecast_prior_oi_fill (it lowered the ranging
            # market's forecast on seeds 1-4, docs/benchmarks.md): the dollars the map shows come from the levels
            self._fc = SyntheticModel(asset, step, {**p, "leverage_spread": self.forecast_spread,
                                                    "prior_oi_fill": p["forecast_prior_oi_fill"]}, tiers=self.tiers,
                                      markets=markets, columns=1, cfg=cfg, _history=False)
        # The states one event stream drives. Both see the same flow (interval, OI step, taker split, entries:
        # nothing there depends on where levels were placed), so it is worked out once here and handed to each
        # state; only placement, closes, consumption and reconciliation run per state (issue 17: the forecast's
        # state repeating the flow was a third of the model's time).
        self._states: tuple[SyntheticModel, ...] = (self,) if self._fc is None else (self._fc, self)

        self.alpha = float(min(max(float(p["taker_alpha"]), 0.0), 1.0))
        hl = float(p["half_life_hours"])
        k_flow = LN2 / (hl * 3600.0) if hl > 0 and math.isfinite(hl) else 0.0
        # Cold-start prior (docs/model.md §3 step 10): at a venue's first OI sample the OI already open is placed
        # around the price as a labelled "prior" source that fades with its own half-life.
        self.prior_weight = max(float(p["prior_weight"]), 0.0)
        self.prior_sigma = max(float(p["prior_entry_sigma_pct"]), 0.0) / 100.0
        phl = float(p["prior_half_life_hours"])
        k_prior = LN2 / (phl * 3600.0) if phl > 0 and math.isfinite(phl) else 0.0
        # Open-interest prior (docs/model.md §3 step 11, liqmap/core/prior.py): each venue's prior source is
        # topped up to ``prior_oi_fill`` × its public OI (USD) less what the state already holds for it, at the
        # entries the price history makes plausible and that price has not liquidated since. 0 = off.
        self.prior_fill = max(float(p["prior_oi_fill"]), 0.0)
        self._prior_hl_s = phl * 3600.0 if phl > 0 and math.isfinite(phl) else 0.0
        # the price path the prior's entries come from: one per model (the forecast's state reads the same)
        self._px_hist = (PriceHistory() if self.prior_fill > 0 or (self._fc is not None and self._fc.prior_fill > 0)
                         else None)
        self._last_fill = np.full(NV, -math.inf)
        self._k_decay = np.concatenate([np.full(NV, k_flow), np.full(NV, k_prior)])[:, None]  # (NS, 1)
        self._decays = bool(self._k_decay.any())
        self.reconcile_k = max(0, int(p["reconcile_buckets"]))
        # venues whose liquidation prints are a sample (one per symbol per second): see ``_reconcile``
        self._sampled = np.array([v.liq_sampled for v in VENUE_TABLE] + [False] * (NV - len(VENUE_TABLE)))[:NV]
        # the USD scale (core/model/scale.py): each venue's last public OI (contracts, NaN = none yet)
        self.dollar_cap = max(float(p["dollar_scale_cap"]), 1.0)
        self._oi_now = np.full(NV, np.nan)
        # next-hour forecast (liqmap.core.forecast): realized volatility of the trades seen, and the horizon
        self.horizon_hours = max(float(p["forecast_horizon_hours"]), 0.0)
        self.tails = str(p["forecast_tails"])
        if self.tails not in TAILS:
            raise ValueError(f"model: forecast_tails must be one of {', '.join(TAILS)}, got {self.tails!r}")
        self._vol = RealizedVol(int(p["forecast_vol_window_minutes"]),
                                float(p["forecast_default_vol_hour_pct"]) / 100.0)

        # dense state, allocated at the first price
        self._W = 0
        self._b0 = 0
        self._base = np.zeros((NS, self.K, 2, 0))
        self._oldest = np.zeros((2, 0))
        self._newest = np.zeros((2, 0))
        self._occ = np.zeros((2, 0), bool)  # side × bucket may hold something (a cheap filter for consumption)
        self._lm = np.zeros((NS, 2))
        self._ref = np.zeros((NS, 2))
        self._held = np.zeros(NS, bool)  # sources anything was ever placed in (the rest are exact zeros)
        self._t: float | None = None
        self.last_price: float | None = None

        self._flows = VenueFlows()
        self._ledger = ConsumedLedger()
        # column history (the map); the forecast's state (``_fc``) keeps none
        self._histories = Histories(self.columns, enabled=_history)
        self._hist = self._histories.by_tf  # the same dicts: tests and benchmarks look into them
        self._cache = self._histories.cache

        self.stats = {k: 0.0 for k in ("added_usd", "closed_usd", "consumed_usd", "reconciled_usd",
                                       "dropped_usd", "unplaced_usd", "intervals", "skipped", "capped",
                                       "rejected_rows", "prior_usd")}

    # --- public API ----------------------------------------------------------------------------------

    def update(self, oi: np.ndarray | None = None, trades: np.ndarray | None = None,
               liqs: np.ndarray | None = None) -> None:
        """Feed new events (any venues; each array in time order). Empty input changes nothing."""
        oi = self._clean(oi, OI_DTYPE, ("oi",))
        trades = self._clean(trades, TRADE_DTYPE, ("price", "qty", "usd"))
        liqs = self._clean(liqs, LIQ_DTYPE, ("price", "qty", "usd"))
        if len(oi) == 0 and len(trades) == 0 and len(liqs) == 0:
            return
        for m in self._states:
            m._begin(oi, trades, liqs)
        ti = li = 0
        o_ts = np.append(oi["ts"], math.inf)
        t_cut = np.searchsorted(np.ascontiguousarray(trades["ts"]), o_ts, side="right").tolist()
        l_cut = np.searchsorted(np.ascontiguousarray(liqs["ts"]), o_ts, side="right").tolist()
        for r in range(len(oi) + 1):
            j, k = t_cut[r], l_cut[r]
            if j > ti or k > li:
                self._flow_batch(trades[ti:j], liqs[li:k])
                ti, li = j, k
            if r < len(oi):
                self._apply_oi(oi[r])
                if self._px_hist is not None:
                    sigma = self._prior_sigma()
                    for m in self._states:
                        if m.prior_fill > 0:
                            m._top_up_prior(oi[r], self._px_hist, sigma, self.last_price)

    def _begin(self, oi: np.ndarray, trades: np.ndarray, liqs: np.ndarray) -> None:
        """A state's first events: the window at the first price, the clock at the first timestamp."""
        if self._W == 0:
            p0 = trades["price"][0] if len(trades) else (liqs["price"][0] if len(liqs) else 0.0)
            if p0 <= 0:
                marks = oi["mark"][oi["mark"] > 0]
                p0 = marks[0] if len(marks) else 0.0
            if p0 > 0:
                self._allocate(float(p0))
        if self._t is None:
            starts = [a["ts"][0] for a in (oi, trades, liqs) if len(a)]
            self._start_clock(float(min(starts)))

    def advance(self, now: float) -> None:
        """Decay (and record column boundaries) up to ``now``."""
        if self._fc is not None:
            self._fc.advance(now)
        if self._t is not None and math.isfinite(now):
            self._clock_to(float(now))

    def levels(self, venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Current (bucket index int64, long USD, short USD) of every nonzero bucket."""
        if self._W == 0:
            return np.empty(0, np.int64), np.empty(0), np.empty(0)
        act = self._actual_by_venue()[self._venue_mask(venues)].sum(axis=0)  # (2, W)
        nz = np.flatnonzero((act[LONG_I] > EPS_USD) | (act[SHORT_I] > EPS_USD))
        lo = np.where(act[LONG_I, nz] > EPS_USD, act[LONG_I, nz], 0.0)
        sh = np.where(act[SHORT_I, nz] > EPS_USD, act[SHORT_I, nz], 0.0)
        k = self.usd_scale(venues)
        if k != 1.0:
            lo, sh = lo * k, sh * k
        return (nz + self._b0).astype(np.int64), lo, sh

    def usd_scale(self, venues: tuple[str, ...] | None = None) -> float:
        """The factor every USD this model reports is multiplied by (core/model/scale.py): public OI ÷ the OI
        the model holds over these venues, in [1, ``dollar_scale_cap``]. The same for every bucket, so it never
        changes which levels rank first. 1 for the forecast's inner state (its parent scales it)."""
        if self.dollar_cap <= 1.0 or self._W == 0 or not self.last_price:
            return 1.0
        held = self._actual_by_venue().sum(axis=(1, 2))  # (NS,)
        held = held[:NV] + held[NV:]
        mask = self._venue_mask(venues)[:NV]
        return dollar_scale(self._oi_now * self.last_price, held, mask, self.dollar_cap)

    def forecast_levels(self, venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The levels the forecast weighs: each tier spread over ``forecast_leverage_spread`` of its leverage band
        (traders use 7x, 12x, 20x ..., not only the tier values), from the same events as :meth:`levels` —
        same opens, closes, decay and reconciliation; consumption differs only where price swept part of a
        band. Without a wider forecast band: :meth:`levels` itself."""
        if self._fc is None:
            return self.levels(venues)
        b, lo, sh = self._fc.levels(venues)  # the inner state holds no OI samples: unscaled
        k = self.usd_scale(venues)
        return (b, lo * k, sh * k) if k != 1.0 else (b, lo, sh)

    @property
    def sigma_hour(self) -> float:
        """Realized volatility per hour (log returns) of the trades the model has seen (the default if few)."""
        return self._vol.sigma_hour()

    def forecast(self, horizon_hours: float | None = None, venues: tuple[str, ...] | None = None,
                 price: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Expected liquidations over the horizon: (bucket, long USD, short USD, reach probability).

        Each level's USD at risk times the chance that price reaches the bucket centre from ``price`` (default:
        the last traded price) within ``horizon_hours`` (default ``forecast_horizon_hours``), given the
        realized volatility (:mod:`liqmap.core.forecast`). Same buckets as :meth:`forecast_levels`."""
        b, lo, sh = self.forecast_levels(venues)
        px = self.last_price if price is None else float(price)
        if len(b) == 0 or not px or px <= 0:
            return b, lo, sh, np.zeros(len(b))
        h = self.horizon_hours if horizon_hours is None else max(float(horizon_hours), 0.0)
        el, es, p = expected(b, lo, sh, self.step, px, self.sigma_hour, h, self.tails)
        return b, el, es, p

    def provenance(self, bucket: int) -> dict:
        """What built the level in ``bucket``: USD per side, per venue, per leverage tier, and its age."""
        out = {"long_usd": 0.0, "short_usd": 0.0, "venues": {}, "leverage": {}, "prior_usd": 0.0,
               "oldest": None, "newest": None}
        j = int(bucket) - self._b0
        if not (0 <= j < self._W):
            return out
        vals = self._base[:, :, :, j] * np.exp(self._lm - self._ref)[:, None, :]  # (NS, K, 2)
        vals = np.where(vals > EPS_USD, vals, 0.0) * self.usd_scale()
        out["long_usd"] = float(vals[:, :, LONG_I].sum())
        out["short_usd"] = float(vals[:, :, SHORT_I].sum())
        # "prior": the part that is the cold-start prior (an assumption about OI opened before the model
        # started), not something an observed OI step placed here; it is included in long/short/venues/leverage
        out["prior_usd"] = float(vals[NV:].sum())
        per_v = vals[:NV].sum(axis=(1, 2)) + vals[NV:].sum(axis=(1, 2))
        out["venues"] = {VENUES[v]: float(per_v[v]) for v in range(NV) if per_v[v] > 0}
        per_k = vals.sum(axis=(0, 2))
        out["leverage"] = {lev_label(self.leverage[k]): float(per_k[k]) for k in range(self.K) if per_k[k] > 0}
        if out["long_usd"] + out["short_usd"] > 0:
            sides = [s for s in (LONG_I, SHORT_I) if vals[:, :, s].sum() > 0]
            old = min(self._oldest[s, j] for s in sides)
            new = max(self._newest[s, j] for s in sides)
            out["oldest"] = float(old) if math.isfinite(old) else None
            out["newest"] = float(new) if math.isfinite(new) else None
        return out

    @property
    def consumed(self) -> np.ndarray:
        """Ledger of swept levels (CONSUMED_DTYPE rows, oldest first; the newest CONSUMED_CAPACITY kept)."""
        return self._ledger.rows

    def total_long(self, venues: tuple[str, ...] | None = None) -> float:
        if not self._W:
            return 0.0
        return float(self._actual_by_venue()[self._venue_mask(venues), LONG_I].sum()) * self.usd_scale(venues)

    def total_short(self, venues: tuple[str, ...] | None = None) -> float:
        if not self._W:
            return 0.0
        return float(self._actual_by_venue()[self._venue_mask(venues), SHORT_I].sum()) * self.usd_scale(venues)

    def column_profiles(self, tf: str, col_lo: int, col_hi: int, row0: int, nrows: int,
                        venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(long, short) float32 arrays of shape (nrows, col_hi − col_lo): the level profile as it stood at the
        end of each column of ``tf`` (the current column: as it stands now; later columns and columns before
        the model had data: zero). Row ``i`` is bucket ``row0 + i``."""
        ncols = max(0, int(col_hi) - int(col_lo))
        nrows = max(0, int(nrows))
        out_l = np.zeros((nrows, ncols), np.float32)
        out_s = np.zeros((nrows, ncols), np.float32)
        h = self._hist.get(tf)
        if h is None:
            raise ValueError(f"unknown timeframe {tf!r}")
        if self._t is None or ncols == 0 or nrows == 0 or h.kb is None:
            return out_l, out_s
        vmask = self._venue_mask(venues)
        codes_l = np.array([2 * v for v in range(NS) if vmask[v]], np.int64)
        codes_s = codes_l + 1
        cur = int(math.floor(self._t / h.period))
        # past columns (their end boundary recorded): replay keyframe + deltas
        self._histories.replay(tf, col_lo, col_hi, row0, nrows, codes_l, codes_s, out_l, out_s)
        # the current column: the live state
        if col_lo <= cur < col_hi and self._W:
            act = self._actual_by_venue()[vmask].sum(axis=0)  # (2, W)
            lo_j, hi_j = int(row0) - self._b0, int(row0) + nrows - self._b0
            a, z = max(lo_j, 0), min(hi_j, self._W)
            if a < z:
                out_l[a - lo_j:z - lo_j, cur - col_lo] = act[LONG_I, a:z]
                out_s[a - lo_j:z - lo_j, cur - col_lo] = act[SHORT_I, a:z]
        np.maximum(out_l, 0, out=out_l)
        np.maximum(out_s, 0, out=out_s)
        k = self.usd_scale(venues)  # past columns at today's scale: the map's colours stay one scale
        if k != 1.0:
            out_l *= np.float32(k)
            out_s *= np.float32(k)
        return out_l, out_s

    def rebucket(self, new_step: float) -> None:
        """Re-bin the state and the column history into ``new_step`` (price moved more than 2× off the step)."""
        if not (new_step > 0 and math.isfinite(new_step)) or new_step == self.step:
            return
        if self._fc is not None:
            self._fc.rebucket(new_step)
        old = self.step

        def remap(idx: np.ndarray) -> np.ndarray:
            return buckets.index((np.asarray(idx, dtype=np.float64) + 0.5) * old, new_step)

        # history first (it reads bucket keys in the old step)
        self._histories.rebin(remap)
        if self._W:
            new_idx = remap(np.arange(self._W) + self._b0)
            base, oldest, newest = self._base, self._oldest, self._newest
            self.step = float(new_step)
            price = self.last_price or float((self._b0 + self._W / 2) * old)
            self._allocate(price)
            j = new_idx - self._b0
            ok = (j >= 0) & (j < self._W)
            lost = base[..., ~ok].sum(axis=1)  # (V, 2, n)
            self.stats["dropped_usd"] += float((lost * np.exp(self._lm - self._ref)[:, :, None]).sum())
            np.add.at(self._base, (slice(None), slice(None), slice(None), j[ok]),
                      base[..., ok])
            for s in (0, 1):
                np.minimum.at(self._oldest[s], j[ok], oldest[s, ok])
                np.maximum.at(self._newest[s], j[ok], newest[s, ok])
            self._occ = self._base.sum(axis=(0, 1)) > 0
        else:
            self.step = float(new_step)
        self._flows.compact(self.step)

    def memory_bytes(self) -> int:
        """Approximate bytes held (state + column history + ledger)."""
        n = self._base.nbytes + self._oldest.nbytes + self._newest.nbytes
        n += self._histories.nbytes()
        n += self._ledger.nbytes()
        return int(n) + (self._fc.memory_bytes() if self._fc is not None else 0)

    # --- input hygiene ---------------------------------------------------------------------------------

    def _clean(self, a: np.ndarray | None, dtype: np.dtype, positive: tuple[str, ...]) -> np.ndarray:
        if a is None or len(a) == 0:
            return np.empty(0, dtype)
        a = np.asarray(a)
        ts = a["ts"]
        ok = np.isfinite(ts) & (a["venue"] < NV)
        for f in positive:
            x = a[f]
            ok &= np.isfinite(x) & (x > 0)
        # prices whose bucket index would not fit the int64 history keys are not prices of this asset
        x = a["mark" if dtype == OI_DTYPE else "price"]
        ok &= (x >= 0) & (x < MAX_INDEX * self.step)  # NaN and inf fail these too
        if not ok.all():
            self.stats["rejected_rows"] += int((~ok).sum())
            a = a[ok]
            ts = a["ts"]
        if len(a) > 1 and (ts[1:] < ts[:-1]).any():
            a = a[np.argsort(ts, kind="stable")]
        return a

    # --- state window ----------------------------------------------------------------------------------

    def _allocate(self, price: float) -> None:
        """(Re)size the dense window around ``price``: ± track_pct of price, capped at max_buckets."""
        track = max(float(self.params["track_pct"]), 1.0) / 100.0
        half = int(math.ceil(track * price / self.step)) + 8
        w = int(min(max(2 * half + 1, 64), int(self.params["max_buckets"])))
        self._W = w
        self._b0 = int(buckets.index(price, self.step)) - w // 2
        self._base = np.zeros((NS, self.K, 2, w))
        self._oldest = np.full((2, w), np.inf)
        self._newest = np.full((2, w), -np.inf)
        self._occ = np.zeros((2, w), bool)

    def _recenter(self) -> None:
        """Move the window to centre the last price; levels falling outside are dropped (and counted)."""
        if self.last_price is None:
            return
        nb0 = int(buckets.index(self.last_price, self.step)) - self._W // 2
        shift = nb0 - self._b0
        if shift == 0:
            return
        w = self._W
        keep_old = slice(max(shift, 0), min(w, w + shift))
        keep_new = slice(max(-shift, 0), min(w, w - shift))
        lost = self._base.copy()
        lost[..., keep_old] = 0.0
        mult = np.exp(self._lm - self._ref)
        self.stats["dropped_usd"] += float((lost.sum(axis=1) * mult[:, :, None]).sum())
        self._touch_nonzero(lost.sum(axis=1), self._b0)
        for name, fill in (("_base", 0.0), ("_oldest", np.inf), ("_newest", -np.inf), ("_occ", False)):
            arr = getattr(self, name)
            new = np.full_like(arr, fill)
            if keep_old.start < keep_old.stop:
                new[..., keep_new] = arr[..., keep_old]
            setattr(self, name, new)
        self._b0 = nb0

    def _window_for(self, lo: np.ndarray, hi: np.ndarray) -> int:
        """The window's first bucket for placing prices ``lo``..``hi``: recentred on the last price first when
        they fall outside it and it has drifted off the price (more than an eighth of its width)."""
        w_lo, w_hi = self._b0 * self.step, (self._b0 + self._W) * self.step
        if not (len(lo) and (lo.min() < w_lo or hi.max() >= w_hi)):
            return self._b0
        off_centre = (self.last_price is not None and abs(int(buckets.index(self.last_price, self.step))
                                                          - (self._b0 + self._W // 2)) > self._W // 8)
        if off_centre:
            self._recenter()
        return self._b0

    # --- clock, decay, history -------------------------------------------------------------------------

    def _start_clock(self, t: float) -> None:
        self._t = t
        self._histories.start(t, self._lm)

    def _clock_to(self, t: float) -> None:
        if self._t is None:
            self._start_clock(t)
            return
        if t <= self._t:
            return
        t0 = self._t
        m0, m1 = int(math.floor(t0 / 60.0)), int(math.floor(t / 60.0))
        if m1 > m0:
            self._histories.flush()
            self._histories.record(t0, t, self._lm, self._k_decay, self._values_at_keys)
        self._lm -= self._k_decay * (t - t0)
        self._t = t
        if self._decays and np.any(self._lm - self._ref < _FOLD_AT):
            self._fold()

    def _fold(self) -> None:
        for v in range(NS):
            for s in (0, 1):
                if self._lm[v, s] - self._ref[v, s] < _FOLD_AT:
                    self._base[v, :, s, :] *= math.exp(self._lm[v, s] - self._ref[v, s])
                    self._ref[v, s] = self._lm[v, s]

    def _touch(self, v: int | np.ndarray, s: int | np.ndarray, idx: np.ndarray) -> None:
        """Record that these (source, side, absolute bucket) values changed other than by decay/close ratio."""
        if not self._histories.by_tf:
            return  # the forecast's state keeps no column history: nothing reads these keys
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size:
            self._histories.touch(pack(v, s, idx))

    def _touch_nonzero(self, vs_w: np.ndarray, b0: int) -> None:
        """Touch every nonzero (source, side, bucket) of a (NS, 2, W) array."""
        v, s, j = np.nonzero(vs_w > 0)
        if len(j):
            self._touch(v, s, j + b0)

    def _values_at_keys(self, keys: np.ndarray, lm: np.ndarray) -> np.ndarray:
        """USD at these history keys with the multipliers ``lm`` (a boundary's, not necessarily now's)."""
        if len(keys) == 0:
            return np.empty(0)
        idx = keys >> CODE_BITS
        code = keys & CODE_MASK
        v, s = code // 2, code % 2
        j = idx - self._b0
        ok = (j >= 0) & (j < self._W)
        out = np.zeros(len(keys))
        if ok.any():
            sums = self._base[v[ok], :, s[ok], j[ok]].sum(axis=-1)
            out[ok] = sums * np.exp(lm[v[ok], s[ok]] - self._ref[v[ok], s[ok]])
        return np.where(out > EPS_USD, out, 0.0)

    # --- per-source state helpers ----------------------------------------------------------------------

    def _actual_by_venue(self) -> np.ndarray:
        """(NS, 2, W) USD."""
        return self._base.sum(axis=1) * np.exp(self._lm - self._ref)[:, :, None]

    def _venue_mask(self, venues: tuple[str, ...] | None) -> np.ndarray:
        """(NS,) mask of the sources (flow and prior) of these venues."""
        if venues is None:
            return np.ones(NS, bool)
        names = set(venues)
        m = np.array([v in names for v in VENUES])
        return np.concatenate([m, m])

    # --- events ----------------------------------------------------------------------------------------

    def _flow_batch(self, tr: np.ndarray, lq: np.ndarray) -> None:
        """Trades and liquidations between two OI samples, one 1-minute column at a time."""
        if len(tr) == 0 and len(lq) == 0:
            return
        ts = np.concatenate([tr["ts"], lq["ts"]])
        cols = np.floor(ts / 60.0)
        if cols.min() == cols.max():  # the usual case: one column (cheaper than np.unique)
            self._flow_column(tr, lq)
            return
        edges = np.unique(cols)
        tc, lc = np.floor(tr["ts"] / 60.0), np.floor(lq["ts"] / 60.0)
        for c in edges:
            self._flow_column(tr[tc == c], lq[lc == c])

    def _flow_column(self, tr: np.ndarray, lq: np.ndarray) -> None:
        t_last = max(float(tr["ts"][-1]) if len(tr) else -math.inf, float(lq["ts"][-1]) if len(lq) else -math.inf)
        states = self._states
        for m in states:
            m._clock_to(t_last)
        if len(tr):
            last = float(tr["price"][-1])
            for m in states:
                m.last_price = last
            self._vol.add(int(math.floor(t_last / 60.0)), last)
            if self._px_hist is not None:
                self._px_hist.add(tr["ts"], tr["price"].astype(np.float64))
            self._flows.add_trades(tr, self.step)
        elif self.last_price is None and len(lq):
            for m in states:
                m.last_price = float(lq["price"][-1])
        for m in states:
            m._column_levels(tr, lq)

    def _column_levels(self, tr: np.ndarray, lq: np.ndarray) -> None:
        """One state's side of a column of flow: real liquidations reconciled, then the levels trades swept."""
        if self._W == 0:
            if self.last_price:
                self._allocate(self.last_price)
            else:
                return
        for row in lq:
            self._reconcile(row)
        if len(tr):
            self._consume(tr)

    def _apply_oi(self, row) -> None:
        ts = float(row["ts"])
        v = int(row["venue"])
        states = self._states
        for m in states:
            m._clock_to(ts)
        oi = float(row["oi"])
        mark = float(row["mark"])
        self._oi_now[v] = oi
        fl = self._flows
        if fl.first_sample(v, ts, oi):
            for m in states:
                m._place_prior(v, ts, oi, mark)
            return
        vwap = fl.vwap(v, mark, self.last_price)
        if vwap is None:
            return  # cannot price the step yet; keep the anchor and wait
        for m in states:
            if m._W == 0:
                m._allocate(vwap)
            if m.last_price is None:
                m.last_price = vwap
        st = fl.accept(v, oi, vwap, self.params, self.alpha, self.stats)
        if st is None:
            return  # below the floor: the interval keeps growing from the same anchor
        if st.d_n > 0:
            long_amt = st.d_n * st.phi_a
            entries, weights = fl.entries(v, st, vwap, self.step, self.params["entry_mode"])
            for m in states:
                m._open(v, ts, entries, weights, (long_amt, st.d_n - long_amt))
        else:
            r = -st.d_n
            for m in states:
                m._close(v, LONG_I, r * (1.0 - st.phi_a))
                m._close(v, SHORT_I, r * st.phi_a)
        fl.reanchor(v, oi, ts)

    def _prior_sigma(self) -> float:
        """The OI prior's spread of the unseen past: the configured σ, or the realized volatility over the mean
        age of an entry (the prior's half-life / ln 2, at least an hour's)."""
        return self.prior_sigma or self.sigma_hour * math.sqrt(max(self._prior_hl_s, 3600.0) / 3600.0 / LN2)

    def _top_up_prior(self, row, hist: PriceHistory, sigma: float, last_price: float | None) -> None:
        """Open-interest prior (docs/model.md §3 step 11): hold venue ``v``'s positions at ``prior_oi_fill`` × its
        public OI. The gap between that and what this state holds for the venue (flow and prior, both sides) is
        opened as the venue's prior source at the entries :mod:`liqmap.core.prior` finds plausible and still
        alive, half long, half short. At most once per ``_FILL_EVERY_S`` per venue (the gap moves slowly)."""
        v = int(row["venue"])
        ts = float(row["ts"])
        if ts - self._last_fill[v] < _FILL_EVERY_S or self._W == 0:
            return
        price = last_price or (float(row["mark"]) if row["mark"] > 0 else 0.0)
        if not price > 0:
            return
        self._last_fill[v] = ts
        target = self.prior_fill * float(row["oi"]) * price
        mult = np.exp(self._lm[[v, NV + v]] - self._ref[[v, NV + v]])  # (2 sources, 2 sides)
        held = float((self._base[[v, NV + v]].sum(axis=(1, 3)) * mult).sum())
        gap = target - held
        if not (gap > _FILL_MIN_REL * target and math.isfinite(gap)):
            return
        ent, w, lo, hi = hist.entries(ts, price, self._prior_hl_s, sigma)
        wl, ws = surviving_weights(ent, w, lo, hi, self.placement.ratio[v], self.placement.w_eff[v])
        amounts = (gap / 2.0 if wl.sum() > 0 else 0.0, gap / 2.0 if ws.sum() > 0 else 0.0)
        self._open(NV + v, ts, (ent, ent), (wl, ws), amounts)
        self.stats["prior_usd"] += sum(amounts)

    def _place_prior(self, v: int, ts: float, oi: float, mark: float) -> None:
        """Cold-start prior (docs/model.md §3 step 10): the OI open at venue ``v``'s first sample was opened before
        the model saw anything. Place ``prior_weight`` of it (USD at the mark, or the last traded price) as
        source ``NV + v``: half long, half short (no flow to split it by), entries spread log-normally around
        the price with ``prior_entry_sigma_pct`` (0 = all at the price) and the usual leverage tiers. It
        fades with ``prior_half_life_hours``, closes and is consumed like any level, and provenance reports
        it as ``prior_usd``."""
        price = mark if mark > 0 else (self.last_price or 0.0)
        amount = self.prior_weight * oi * price
        if not (amount > 0 and math.isfinite(amount)):
            return
        if self._W == 0:
            self._allocate(price)
        entries, w = prior_entries(price, self.prior_sigma)
        self._open(NV + v, ts, (entries, entries), (w, w), (amount / 2.0, amount / 2.0))
        self.stats["prior_usd"] += amount

    def _add_band(self, src: int, ts: float, bs) -> None:
        """:meth:`_open`'s dense path for spread bands that fit the window: the (tier, side, bucket) keys come
        from each slice's code plus the pair's bucket, so the per-pair side, tier and window index arrays are
        never built. Same sums in the same order as the general path."""
        w = self._W
        code = (bs.kk.astype(np.int64) * 2 + bs.ss) * w - self._b0  # per slice
        key = np.repeat(code, bs.n)
        key += bs.b
        k0 = int(key.min())
        key -= k0
        size = int(key.max()) + 1
        hit = np.flatnonzero(np.bincount(key, minlength=size))
        a = np.bincount(key, weights=bs.a, minlength=size)[hit]
        hit += k0  # = the flat index into base[src] (K, 2, W): (tier·2 + side)·W + window index
        ss, j = (hit // w) % 2, hit % w
        # one gather/scatter on the flat views instead of three-index fancy indexing (same values, same adds)
        gain = np.exp(self._ref[src] - self._lm[src])[ss]
        flat = self._base[src].reshape(-1)
        flat[hit] += a * gain
        self._held[src] = True
        sj = ss * w + j  # flat index into the (2, W) side × bucket arrays
        old, new = self._oldest.reshape(-1), self._newest.reshape(-1)
        old[sj] = np.minimum(old[sj], ts)
        new[sj] = np.maximum(new[sj], ts)
        self._occ.reshape(-1)[sj] = True
        self._touch(src, ss, j + self._b0)
        self.stats["added_usd"] += float(a.sum())

    def _open(self, v: int, ts: float, entries: tuple[np.ndarray, np.ndarray], weights: tuple[np.ndarray, np.ndarray],
              amounts: tuple[float, float]) -> None:
        """Place new positions of source ``v``: per side, entries × leverage tiers at their liquidation buckets."""
        src, v = v, v % NV  # ``v`` may be a prior source (NV + venue): same venue contract and tiers
        pl = self.placement
        if pl.ratio_band is not None:
            bs = pl.band_slices(v, entries, weights, amounts, self.step, self._b0, self._W, self._window_for,
                                self.stats)
            if bs.total and bs.b_min >= self._b0 and bs.b_max < self._b0 + self._W and bs.total > 64:
                self._add_band(src, ts, bs)
                return
            ss, kk, idx, a = bs.pairs()
        else:
            sl = pl.thin_slices(v, entries, weights, amounts, self.step, self.stats)
            if sl is None:
                return
            ss, kk, idx, a = sl
        if len(idx) == 0:
            return
        j = idx - self._b0
        if len(idx) > 64 and int(j.min()) >= 0 and int(j.max()) < self._W:
            # many slices per bucket (spread bands): sum them per (tier, side, bucket) with a dense bincount
            # over the window — no sort; same order of additions as summing per unique key
            key = (kk.astype(np.int64) * 2 + ss) * self._W + j
            size = self.K * 2 * self._W
            hit = np.flatnonzero(np.bincount(key, minlength=size))
            a = np.bincount(key, weights=a, minlength=size)[hit]
            kk, ss, j = hit // (2 * self._W), (hit // self._W) % 2, hit % self._W
            idx = j + self._b0
        elif len(idx) > 64:  # many slices per bucket: sum them first (np.add.at is slow per element)
            key = (kk.astype(np.int64) * 2 + ss) * (1 << 40) + (idx - idx.min())
            u, inv = np.unique(key, return_inverse=True)
            a = np.bincount(inv, weights=a, minlength=len(u))
            kk, ss, idx = (u >> 40) // 2, (u >> 40) % 2, (u & ((1 << 40) - 1)) + idx.min()
            j = idx - self._b0
        if np.any((j < 0) | (j >= self._W)):
            self._recenter()
            j = idx - self._b0
            inside = (j >= 0) & (j < self._W)
            if not inside.all():
                self.stats["dropped_usd"] += float(a[~inside].sum())
                ss, kk, j, a, idx = ss[inside], kk[inside], j[inside], a[inside], idx[inside]
            if len(j) == 0:
                return
        self._place(src, ts, kk, ss, j, idx, a, summed=len(idx) > 64)

    def _place(self, src: int, ts: float, kk, ss, j, idx, a, summed: bool) -> None:
        """Add USD ``a`` at (tier, side, window index) into source ``src`` (``summed``: keys are unique)."""
        gain = np.exp(self._ref[src, ss] - self._lm[src, ss])
        if summed:  # summed per (tier, side, bucket) above: no duplicates, plain indexing adds
            self._base[src][kk, ss, j] += a * gain
        else:
            np.add.at(self._base[src], (kk, ss, j), a * gain)
        self._held[src] = True
        self._oldest[ss, j] = np.minimum(self._oldest[ss, j], ts)  # one ts for all: duplicates agree
        self._newest[ss, j] = np.maximum(self._newest[ss, j], ts)
        self._occ[ss, j] = True
        self._touch(src, ss, idx)
        self.stats["added_usd"] += float(a.sum())

    def _close(self, v: int, s: int, usd: float) -> None:
        """Close ``usd`` of venue ``v``'s side ``s`` proportionally over its levels (flow and prior alike:
        a position opened before the model started closes as readily as one it saw open)."""
        if usd <= 0:
            return
        srcs = (v, NV + v)
        # a source nothing was ever placed in (the prior, when off) holds exact zeros: skip summing its W·K cells
        totals = [float(self._base[x, :, s, :].sum()) * math.exp(self._lm[x, s] - self._ref[x, s])
                  if self._held[x] else 0.0 for x in srcs]
        total = sum(totals)
        if total <= EPS_USD:
            return
        factor = max(0.0, 1.0 - usd / total)
        self.stats["closed_usd"] += total * (1.0 - factor)
        for x, tot in zip(srcs, totals):
            if tot <= 0:
                continue
            if factor < _ZERO_FACTOR:
                j = np.flatnonzero(self._base[x, :, s, :].sum(axis=0) > 0)
                self._base[x, :, s, :] = 0.0
                self._touch(x, s, j + self._b0)
                self._ref[x, s] = self._lm[x, s]
                continue
            self._lm[x, s] += math.log(factor)
            if self._lm[x, s] - self._ref[x, s] < _FOLD_AT:
                self._fold()

    def _consume(self, tr: np.ndarray) -> None:
        """Levels the trades reached: longs in buckets ≥ the low's bucket, shorts in buckets ≤ the high's."""
        tb = buckets.index(tr["price"], self.step) - self._b0
        ts = tr["ts"]
        run_min = np.minimum.accumulate(tb)
        lo = max(int(run_min[-1]), 0)
        if lo < self._W:
            cand = np.flatnonzero(self._occ[LONG_I, lo:]) + lo
            if len(cand):
                first = np.searchsorted(-run_min, -cand, side="left")
                self._ledger.append(self._sweep(LONG_I, cand, ts[np.minimum(first, len(ts) - 1)]))
        run_max = np.maximum.accumulate(tb)
        hi = min(int(run_max[-1]), self._W - 1)
        if hi >= 0:
            cand = np.flatnonzero(self._occ[SHORT_I, :hi + 1])
            if len(cand):
                first = np.searchsorted(run_max, cand, side="left")
                self._ledger.append(self._sweep(SHORT_I, cand, ts[np.minimum(first, len(ts) - 1)]))

    def _sweep(self, s: int, cand: np.ndarray, when_all: np.ndarray) -> np.ndarray:
        """Zero side ``s`` at window positions ``cand`` and return ledger rows for those that held USD."""
        base = self._base[:, :, s, :][:, :, cand]  # (NS, K, n)
        per_all = base.sum(axis=1) * np.exp(self._lm[:, s] - self._ref[:, s])[:, None]
        self._occ[s, cand] = False
        keep = per_all.sum(axis=0) > EPS_USD
        j, per_venue, when = cand[keep], per_all[:, keep], when_all[keep]
        self._base[:, :, s, cand] = 0.0
        self._oldest[s, cand] = np.inf
        self._newest[s, cand] = -np.inf
        if len(j) == 0:
            return np.empty(0, CONSUMED_DTYPE)
        vv, jj = np.nonzero(per_venue > 0)
        self._touch(vv, s, j[jj] + self._b0)
        out = np.zeros(len(j), CONSUMED_DTYPE)
        out["ts"] = when
        out["bucket"] = j + self._b0
        out["price"] = (j + self._b0 + 0.5) * self.step
        out["side"] = 1 if s == LONG_I else -1
        out["usd"] = per_venue.sum(axis=0)
        by_venue = per_venue[:NV] + per_venue[NV:]
        bits = (1 << np.arange(NV, dtype=np.int64))[:, None]
        out["venues"] = ((by_venue > EPS_USD) * bits).sum(axis=0).astype(np.uint8)
        self.stats["consumed_usd"] += float(out["usd"].sum())
        return out

    def _reconcile(self, row) -> None:
        """A real liquidation removes up to its USD from the same venue's same-side levels, nearest first."""
        q = float(row["usd"])
        v = int(row["venue"])
        s = LONG_I if int(row["side"]) > 0 else SHORT_I
        b = int(buckets.index(float(row["price"]), self.step)) - self._b0
        k = self.reconcile_k
        cand = np.arange(b - k, b + k + 1)
        cand = cand[(cand >= 0) & (cand < self._W)]
        if len(cand) == 0 or q <= 0:
            return
        cand = cand[np.lexsort((cand, np.abs(cand - b)))]  # nearest first; ties: lower bucket first
        srcs = (v, NV + v)  # the venue's observed levels and its prior, bucket by bucket
        have_src = np.stack([self._base[x, :, s, cand].sum(axis=-1) * math.exp(self._lm[x, s] - self._ref[x, s])
                             for x in srcs])  # (2, n)
        have = have_src.sum(axis=0)
        if self._sampled[v] and cand[0] == b:
            # A sampled venue (Binance: the latest liquidation per symbol per second, core/venues.py) printed one
            # order of a burst of unknown size: its same-side positions liquidating in the print's bucket were hit
            # in that second, so the level there is explained whole, not only the printed USD; what the print
            # itself exceeds it by goes to the neighbours nearest first, as for any venue.
            q = max(q, float(have[0]))
        before = np.concatenate([[0.0], np.cumsum(have)[:-1]])
        take = np.clip(q - before, 0.0, have)
        sel = take > 0
        if not sel.any():
            return
        c, tk, hv = cand[sel], take[sel], have[sel]
        keep = np.where(hv > 0, 1.0 - tk / hv, 0.0)
        keep = np.where(keep < 1e-12, 0.0, keep)
        for i, x in enumerate(srcs):
            if have_src[i, sel].any():
                self._base[x, :, s, c] *= keep[:, None]
                self._touch(x, s, c + self._b0)
        self.stats["reconciled_usd"] += float(tk.sum())
