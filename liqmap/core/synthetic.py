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

State is dense: ``base[source, tier, side, bucket]`` over a window of buckets around the price (source
``v`` = venue v's observed OI steps, ``NV + v`` = venue v's cold-start prior), times a per-(source, side)
multiplier held as a log (``_lm``): decay and proportional closes only change that
number, so they cost nothing per bucket. A level's USD = ``base · exp(_lm − _ref)``; ``_ref`` is re-folded
into ``base`` when the multiplier gets extreme.

Column history (what the Synthetic mode draws, columns = time): for every timeframe the model keeps a
sparse keyframe plus one small delta per column boundary — the per-(source, side) ratio of multipliers and
the exact values of the buckets that changed otherwise. Past columns are reconstructed exactly from that,
and memory stays proportional to activity, not to columns × buckets.

Not thread-safe: one caller at a time (the engine holds the asset's lock around update/advance/reads).

Event-time order: within one update, events are processed by timestamp; trades and real liquidations
between two OI samples are handled as one batch per 1-minute column (reconciliation before consumption,
so a real liquidation explains the level it hit before the rest of a swept level is recorded as consumed).
Events older than the model clock are processed at the clock (the clock never goes back).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from . import buckets
from .forecast import TAILS, RealizedVol, expected
from .assets import VenueMarket, default_universe
from .events import LIQ_DTYPE, OI_DTYPE, TRADE_DTYPE, VENUES
from .params import MODEL_DEFAULTS, core_params
from .prior import PriceHistory, surviving_weights
from .tiers import TierTable, liq_price_tiered, table_for
from .timeframes import TIMEFRAMES

LN2 = math.log(2.0)
_FILL_EVERY_S = 120.0  # the OI prior's top-up runs at most this often per venue (core/prior.py)
_FILL_MIN_REL = 0.01  # ... and only for a gap above this share of the target
NV = len(VENUES)
NS = 2 * NV  # sources of a level: 0..NV-1 = venue v's OI flow, NV+v = venue v's cold-start prior
LONG_I, SHORT_I = 0, 1  # index of a side in the state arrays
_CODE_BITS = 5  # history keys: bucket << 5 | (source·2 + side)
_CODE_MASK = (1 << _CODE_BITS) - 1
_FOLD_AT = -300.0  # fold the multiplier into base once it is below e^-300
_ZERO_FACTOR = 1e-12  # a close leaving less than this share zeroes the side outright
EPS_USD = 1e-9  # levels below this are treated as empty
MAX_INDEX = float(2**50)  # bucket indices above this are refused (keys are index << _CODE_BITS in int64)
_NO_KEYS32 = np.empty(0, np.int32)
_NO_VALS16 = np.empty(0, np.float16)

# MODEL_DEFAULTS: the model section of liqmap.core.params (ModelParams), the one place its defaults live.

CONSUMED_DTYPE = np.dtype(
    [
        ("ts", "f8"),  # time of the first trade that reached the bucket
        ("bucket", "i8"),  # bucket index in the step in force at the time
        ("price", "f8"),  # bucket centre
        ("side", "i1"),  # LONG = +1 / SHORT = -1 (the side of the positions liquidated)
        ("usd", "f8"),
        ("venues", "u1"),  # bit i set = venue VENUES[i] contributed
    ]
)
CONSUMED_CAPACITY = 100_000
# How many venues the model can tell apart: a history key's code (flow or prior × venue × side: 4 per venue)
# must fit its ``_CODE_BITS``, and a consumed level records its venues as the bits of one unsigned field.
MAX_VENUES = min((1 << _CODE_BITS) // 4, 8 * CONSUMED_DTYPE["venues"].itemsize)


def lev_label(lev: float) -> str:
    return f"{lev:g}x"


@dataclass
class _Flow:
    """One venue's traded flow since its OI anchor (the interval being built)."""

    prices: list = field(default_factory=list)
    usds: list = field(default_factory=list)
    sides: list = field(default_factory=list)
    n: int = 0
    # taker buy/sell USD and the price range of flow already folded in (by ``compact``)
    buy0: float = 0.0
    sell0: float = 0.0
    low0: float = math.inf
    high0: float = -math.inf

    def add(self, price: np.ndarray, usd: np.ndarray, side: np.ndarray) -> None:
        """Keep the arrays; the sums are taken once per interval (``summary``), not per batch."""
        if len(price) == 0:
            return
        self.prices.append(price)
        self.usds.append(usd)
        self.sides.append(side)
        self.n += len(price)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.prices:
            return np.empty(0), np.empty(0)
        if len(self.prices) > 1:
            self.prices = [np.concatenate(self.prices)]
            self.usds = [np.concatenate(self.usds)]
            self.sides = [np.concatenate(self.sides)]
        return self.prices[0], self.usds[0]

    def summary(self) -> tuple[float, float, float, float]:
        """(taker buy USD, taker sell USD, low, high) of the whole interval."""
        p, u = self.arrays()
        if len(p) == 0:
            return self.buy0, self.sell0, self.low0, self.high0
        sd = self.sides[0]
        buy = float(u[sd > 0].sum())
        sell = float(u[sd < 0].sum())
        return (self.buy0 + buy, self.sell0 + sell, min(self.low0, float(p.min())), max(self.high0, float(p.max())))

    def compact(self, step: float) -> None:
        """Collapse to one pseudo-trade per bucket (bucket VWAP, summed USD) so a long interval stays small."""
        self.buy0, self.sell0, self.low0, self.high0 = self.summary()
        p, u = self.arrays()
        if len(p) == 0:
            return
        b = buckets.index(p, step)
        keys, inv = np.unique(b, return_inverse=True)
        usd = np.bincount(inv, weights=u, minlength=len(keys))
        pv = np.bincount(inv, weights=p * u, minlength=len(keys))
        vw = np.where(usd > 0, pv / np.where(usd > 0, usd, 1.0), (keys + 0.5) * step)
        # pseudo-trades carry side 0: their taker flow and range are already in buy0/sell0/low0/high0
        self.prices, self.usds, self.sides, self.n = [vw], [usd], [np.zeros(len(keys), np.int8)], len(keys)


class _History:
    """One timeframe's column history: a sparse keyframe at boundary ``kb`` and one delta per later boundary.

    Boundary ``b`` is time ``b·period``: the end of column ``b − 1``. A delta is (ratio per venue·side code,
    keys of buckets that changed other than by that ratio, their USD at the boundary). Deltas are stored
    compactly — keys as int32 offsets from the smallest, values as float16 times a per-delta scale (three
    significant digits: the map's colour ramp needs far less) — so a column costs 6 bytes per changed bucket,
    or ~2 when the changed buckets form runs of adjacent buckets per venue·side (leverage-spread bands), which
    are then stored as runs.
    Untouched buckets are carried by the exact float64 ratios, so rounding never accumulates.
    """

    def __init__(self, period: int, capacity: int):
        self.period = period
        self.capacity = capacity
        self.kb: int | None = None
        self.key_keys = np.empty(0, np.int64)
        self.key_vals = np.empty(0, np.float64)
        self.deltas: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque()
        self.lm_last = np.zeros(2 * NS)
        self.pending: list[np.ndarray] = []

    @property
    def last(self) -> int:
        return (self.kb or 0) + len(self.deltas)

    def push(self, ratio: np.ndarray, keys: np.ndarray, vals: np.ndarray) -> None:
        self.deltas.append(self._encode(ratio, keys, vals))
        while len(self.deltas) > self.capacity:
            self._evict()

    @staticmethod
    def _encode(ratio: np.ndarray, keys: np.ndarray, vals: np.ndarray) -> tuple:
        """(ratio, k0, rel, scale, q, runs). Spread bands touch long runs of adjacent buckets per venue·side
        code, so when that is smaller the keys are stored as runs instead: ``runs`` = (start bucket offset
        int32, code uint8, length int32) per run of consecutive buckets of one code, ``rel`` empty and ``q``
        in run order (code-major). Otherwise ``runs`` is None and ``rel`` holds one int32 offset per key.
        ``keys`` must be sorted and unique."""
        if len(keys) == 0:
            return (ratio, 0, _NO_KEYS32, 1.0, _NO_VALS16, None)
        top = float(np.max(vals))
        scale = top / 32768.0 if top > 0 else 1.0
        b = keys >> _CODE_BITS
        b0 = int(b[0])
        if len(keys) > 8 and int(b[-1]) - b0 < 2**31:
            code = (keys & _CODE_MASK).astype(np.uint8)
            order = np.argsort(code, kind="stable")  # keys are sorted by bucket: now code-major, bucket-minor
            bo, co = b[order] - b0, code[order]
            brk = np.flatnonzero((np.diff(bo) != 1) | (np.diff(co) != 0)) + 1
            if (len(brk) + 1) * 9 < len(keys) * 4:
                starts = np.concatenate([[0], brk])
                lens = np.diff(np.append(starts, len(keys))).astype(np.int32)
                runs = (bo[starts].astype(np.int32), co[starts], lens)
                return (ratio, b0, _NO_KEYS32, scale, (vals[order] / scale).astype(np.float16), runs)
        k0 = int(keys.min())
        rel = keys - k0
        rel = rel.astype(np.int32) if int(rel.max()) < 2**31 else rel
        return (ratio, k0, rel, scale, (vals / scale).astype(np.float16), None)

    def delta(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ratio, keys int64, USD float64) of delta ``i`` (boundary kb + i → kb + i + 1); keys unique, not
        necessarily sorted."""
        ratio, k0, rel, scale, q, runs = self.deltas[i]
        if runs is not None:
            start, code, length = runs
            first = np.cumsum(length) - length
            b = np.repeat(start.astype(np.int64) + k0 - first, length) + np.arange(len(q), dtype=np.int64)
            keys = (b << _CODE_BITS) | np.repeat(code.astype(np.int64), length)
            return ratio, keys, q.astype(np.float64) * scale
        return ratio, rel.astype(np.int64) + k0, q.astype(np.float64) * scale

    def _evict(self) -> None:
        ratio, keys, vals = self.delta(0)
        self.deltas.popleft()
        kk = self.key_keys
        kv = self.key_vals * ratio[kk & _CODE_MASK]
        if len(keys):
            pos = np.searchsorted(kk, keys)
            pos_c = np.minimum(pos, max(len(kk) - 1, 0))
            hit = (pos < len(kk)) & (kk[pos_c] == keys) if len(kk) else np.zeros(len(keys), bool)
            kv[pos_c[hit]] = vals[hit]
            kk = np.concatenate([kk, keys[~hit]])
            kv = np.concatenate([kv, vals[~hit].astype(np.float64)])
            order = np.argsort(kk, kind="stable")
            kk, kv = kk[order], kv[order]
        keep = kv > EPS_USD
        self.key_keys, self.key_vals = kk[keep], kv[keep]
        self.kb = (self.kb or 0) + 1

    def skip_empty(self, n: int, ratio: np.ndarray) -> None:
        """Append ``n`` deltas that only apply ``ratio``; beyond capacity, fold them straight into the keyframe."""
        if n <= 0:
            return
        overflow = n - self.capacity
        if overflow > 0:
            while self.deltas:
                self._evict()
            self.key_vals = self.key_vals * (ratio[self.key_keys & _CODE_MASK] ** overflow)
            keep = self.key_vals > EPS_USD
            self.key_keys, self.key_vals = self.key_keys[keep], self.key_vals[keep]
            self.kb = (self.kb or 0) + overflow
            n = self.capacity
        empty_k, empty_v = np.empty(0, np.int64), np.empty(0, np.float64)
        for _ in range(n):
            self.push(ratio, empty_k, empty_v)

    def nbytes(self) -> int:
        return int(self.key_keys.nbytes + self.key_vals.nbytes
                   + sum(d[0].nbytes + d[2].nbytes + d[4].nbytes + 16
                         + (sum(x.nbytes for x in d[5]) if d[5] is not None else 0) for d in self.deltas))


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

        lev = np.asarray(p["leverage_tiers"], dtype=np.float64)
        w = np.asarray(p["leverage_weights"], dtype=np.float64)
        if lev.ndim != 1 or len(lev) == 0 or len(lev) != len(w):
            raise ValueError("model: leverage_tiers and leverage_weights need the same, non-zero length")
        if not (np.all(np.isfinite(lev)) and np.all(lev > 1.0) and np.all(np.isfinite(w)) and np.all(w >= 0)
                and w.sum() > 0):
            raise ValueError("model: leverage tiers must be > 1x and weights non-negative, not all zero")
        self.leverage = lev
        self.K = len(lev)
        self._lev_eff = np.zeros((NV, self.K))
        self._w_eff = np.zeros((NV, self.K))
        self._notional = np.zeros((NV, self.K))
        typical = float(p["typical_position_usd"])
        for v, name in enumerate(VENUES):
            t = self.tiers[name]
            ok = lev <= t.max_leverage + 1e-9
            le = lev.copy()
            ww = np.where(ok, w, 0.0)
            if ww.sum() <= 0:
                # every configured tier is above this venue's cap: all weight on the lowest tier, at the cap
                k0 = int(np.argmin(lev))
                ww = np.zeros_like(w)
                ww[k0] = 1.0
                le[k0] = t.max_leverage
            self._lev_eff[v] = le
            self._w_eff[v] = ww / ww.sum()
            cap = np.asarray(t.max_notional_at(le), dtype=np.float64)
            self._notional[v] = np.clip(np.minimum(typical, cap * (1 - 1e-9)), 1e-6, None)
        # Liquidation price / entry for each (venue, side, tier). With the position notional N fixed at entry,
        # LP/E = ((1 − s/L) − s·cum/N)/(1 − s·m) (linear) or 1/(1 + s(1/L − m + cum/N)) (inverse), and the
        # tier at the liquidation price (notional N·LP/E) does not depend on E either: so it is one number.
        self._ratio = np.full((NV, 2, self.K), np.nan)
        for v, name in enumerate(VENUES):
            for s, side in ((LONG_I, 1.0), (SHORT_I, -1.0)):
                self._ratio[v, s] = liq_price_tiered(1.0, self._lev_eff[v], side, self._notional[v],
                                                     self.tiers[name], inverse=bool(self._inverse[v]))
        self._ratio[self._w_eff[:, None, :].repeat(2, axis=1) <= 0] = np.nan
        # Leverage bands (docs/model.md §3 step 4): tier k stands for the leverages between the geometric
        # midpoints to its neighbours, narrowed by an exponent. The levels — what the map draws — use a narrow
        # band (``leverage_spread``; 0 = thin lines at each tier's exact price, as sharp as the simulator's true
        # positions). The forecast weighs each tier over a wider band (``forecast_leverage_spread``): where a
        # tier's traders really sit is uncertain, and the forecast is an expectation over that. Its levels are a
        # second state fed the same events (``_fc``), so price sweeping part of a wide band consumes exactly that
        # part (a thin line re-spread at read time would keep the swept half of its band).
        self.spread = float(min(max(float(p["leverage_spread"]), 0.0), 1.0))
        self._ratio_band = self._leverage_bands(self.spread) if self.spread > 0 else None
        self.forecast_spread = float(min(max(float(p["forecast_leverage_spread"]), 0.0), 1.0))
        self._fc: SyntheticModel | None = None
        if self.forecast_spread > self.spread:
            # the OI prior feeds the forecast's state only with forecast_prior_oi_fill (it lowered the ranging
            # market's forecast on seeds 1-4, docs/benchmarks.md): the dollars the map shows come from the levels
            self._fc = SyntheticModel(asset, step, {**p, "leverage_spread": self.forecast_spread,
                                                    "prior_oi_fill": p["forecast_prior_oi_fill"]}, tiers=self.tiers,
                                      markets=markets, columns=1, cfg=cfg, _history=False)

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
        # topped up to ``prior_oi_fill`` × its public OI (USD) less what the model already holds for it, at the
        # entries the price history makes plausible and that price has not liquidated since. 0 = off.
        self.prior_fill = max(float(p["prior_oi_fill"]), 0.0)
        self._prior_hl_s = phl * 3600.0 if phl > 0 and math.isfinite(phl) else 0.0
        self._px_hist = PriceHistory() if self.prior_fill > 0 else None
        self._last_fill = np.full(NV, -math.inf)
        self._k_decay = np.concatenate([np.full(NV, k_flow), np.full(NV, k_prior)])[:, None]  # (NS, 1)
        self._decays = bool(self._k_decay.any())
        self.reconcile_k = max(0, int(p["reconcile_buckets"]))
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
        self._t: float | None = None
        self.last_price: float | None = None

        self._anchor_oi = np.full(NV, np.nan)
        self._anchor_ts = np.full(NV, np.nan)
        self._flow = [_Flow() for _ in VENUES]

        self._consumed_parts: list[np.ndarray] = []
        self._consumed_n = 0
        self._consumed_cache: np.ndarray | None = None

        self._mut: list[np.ndarray] = []  # history keys touched since the last 1m boundary
        # column history (the map); the forecast's state (``_fc``) keeps none
        self._hist = ({tf: _History(per, self.columns + 1) for tf, per in TIMEFRAMES.items()} if _history else {})
        self._cache: dict = {}

        self.stats = {k: 0.0 for k in ("added_usd", "closed_usd", "consumed_usd", "reconciled_usd",
                                       "dropped_usd", "unplaced_usd", "intervals", "skipped", "capped",
                                       "rejected_rows", "prior_usd")}

    def _leverage_bands(self, spread: float) -> np.ndarray:
        """(NV, 2, K, 2) liquidation price / entry at the low and high edge of each tier's leverage band.

        Tier k stands for the leverages between the geometric midpoints to its neighbours; ``spread`` (0..1)
        narrows that band around the tier as an exponent (1 = the whole band, 0.2 = a fifth of it in log
        leverage). Edges are capped by the venue's max leverage for the position; NaN where a tier is unused."""
        lev = self.leverage
        order = np.argsort(lev)
        ls = lev[order]
        mids = np.sqrt(ls[1:] * ls[:-1]) if len(ls) > 1 else np.empty(0)
        lo_edge = np.concatenate([[ls[0] ** 2 / mids[0]] if len(mids) else [ls[0] / 1.5], mids])
        hi_edge = np.concatenate([mids, [ls[-1] ** 2 / mids[-1]] if len(mids) else [ls[-1] * 1.5]])
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        lo_edge, hi_edge = lo_edge[inv], hi_edge[inv]
        band = np.full((NV, 2, self.K, 2), np.nan)
        for v, name in enumerate(VENUES):
            t = self.tiers[name]
            le = self._lev_eff[v]
            l_lo = np.maximum(le * (lo_edge / lev) ** spread, 1.0 + 1e-6)
            l_hi = np.minimum(le * (hi_edge / lev) ** spread,
                              np.maximum(np.asarray(t.max_leverage_for(self._notional[v])), le))
            for s, side in ((LONG_I, 1.0), (SHORT_I, -1.0)):
                for e, l_e in enumerate((l_lo, l_hi)):
                    band[v, s, :, e] = liq_price_tiered(1.0, l_e, side, self._notional[v], t,
                                                        inverse=bool(self._inverse[v]))
        band[~np.isfinite(band)] = np.nan
        band[self._w_eff[:, None, :].repeat(2, axis=1) <= 0] = np.nan
        return np.sort(band, axis=-1)

    # --- public API ----------------------------------------------------------------------------------

    def update(self, oi: np.ndarray | None = None, trades: np.ndarray | None = None,
               liqs: np.ndarray | None = None) -> None:
        """Feed new events (any venues; each array in time order). Empty input changes nothing."""
        if self._fc is not None:
            self._fc.update(oi, trades, liqs)
        oi = self._clean(oi, OI_DTYPE, ("oi",))
        trades = self._clean(trades, TRADE_DTYPE, ("price", "qty", "usd"))
        liqs = self._clean(liqs, LIQ_DTYPE, ("price", "qty", "usd"))
        if len(oi) == 0 and len(trades) == 0 and len(liqs) == 0:
            return
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
                    self._top_up_prior(oi[r])

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
        return (nz + self._b0).astype(np.int64), lo, sh

    def forecast_levels(self, venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The levels the forecast weighs: each tier spread over ``forecast_leverage_spread`` of its leverage band
        (traders use 7x, 12x, 20x ..., not only the tier values), from the same events as :meth:`levels` —
        same opens, closes, decay and reconciliation; consumption differs only where price swept part of a
        band. Without a wider forecast band: :meth:`levels` itself."""
        return self.levels(venues) if self._fc is None else self._fc.levels(venues)

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
        vals = np.where(vals > EPS_USD, vals, 0.0)
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
        if self._consumed_cache is None:
            self._consumed_cache = (np.concatenate(self._consumed_parts) if self._consumed_parts
                                    else np.empty(0, CONSUMED_DTYPE))
            self._consumed_parts = [self._consumed_cache] if len(self._consumed_cache) else []
        return self._consumed_cache

    def total_long(self, venues: tuple[str, ...] | None = None) -> float:
        return float(self._actual_by_venue()[self._venue_mask(venues), LONG_I].sum()) if self._W else 0.0

    def total_short(self, venues: tuple[str, ...] | None = None) -> float:
        return float(self._actual_by_venue()[self._venue_mask(venues), SHORT_I].sum()) if self._W else 0.0

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

        # past columns (their end boundary recorded): replay keyframe + deltas. The replay state at the last
        # boundary reached is cached per (tf, rows), so a caller asking only for new columns pays only for those.
        first_b = max(col_lo + 1, h.kb)
        last_b = min(col_hi, h.last)
        if first_b <= last_b:
            ck = (tf, int(row0), nrows)
            cache = self._cache.get(ck)
            if cache is not None and h.kb <= cache[0] <= first_b:
                b, work = cache
            else:
                b, work = h.kb, np.zeros((2 * NS, nrows))
                self._scatter(work, h.key_keys, h.key_vals, row0, nrows)

            def emit(bb: int) -> None:
                if bb >= first_b:
                    out_l[:, bb - 1 - col_lo] = work[codes_l].sum(axis=0)
                    out_s[:, bb - 1 - col_lo] = work[codes_s].sum(axis=0)

            emit(b)
            while b < last_b:
                ratio, keys, vals = h.delta(b - h.kb)
                work *= ratio[:, None]
                self._scatter(work, keys, vals, row0, nrows)
                b += 1
                emit(b)
            self._cache.pop(ck, None)
            self._cache[ck] = (b, work)
            while len(self._cache) > 6:
                self._cache.pop(next(iter(self._cache)))
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
        for h in self._hist.values():
            self._rebin_history(h, remap)
        self._mut = [self._remap_keys(np.concatenate(self._mut), remap)] if self._mut else []
        for h in self._hist.values():
            h.pending = [self._remap_keys(np.concatenate(h.pending), remap)] if h.pending else []
        self._cache.clear()
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
        for f in self._flow:
            f.compact(self.step)

    def memory_bytes(self) -> int:
        """Approximate bytes held (state + column history + ledger)."""
        n = self._base.nbytes + self._oldest.nbytes + self._newest.nbytes
        n += sum(h.nbytes() for h in self._hist.values())
        n += sum(x.nbytes for x in self._consumed_parts)
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

    # --- clock, decay, history -------------------------------------------------------------------------

    def _start_clock(self, t: float) -> None:
        self._t = t
        for h in self._hist.values():
            h.kb = int(math.floor(t / h.period))
            h.lm_last = self._lm.reshape(-1).copy()

    def _clock_to(self, t: float) -> None:
        if self._t is None:
            self._start_clock(t)
            return
        if t <= self._t:
            return
        t0 = self._t
        m0, m1 = int(math.floor(t0 / 60.0)), int(math.floor(t / 60.0))
        if m1 > m0:
            self._flush_mutations()
            for h in self._hist.values():
                b_from = int(math.floor(t0 / h.period)) + 1
                b_to = int(math.floor(t / h.period))
                if b_to < b_from:
                    continue
                # first boundary: the changes since the last one; the rest only decay
                lm_b = self._lm - self._k_decay * (b_from * h.period - t0)
                keys = np.unique(np.concatenate(h.pending)) if h.pending else np.empty(0, np.int64)
                h.pending = []
                ratio = np.exp(lm_b.reshape(-1) - h.lm_last)
                vals = self._values_at_keys(keys, lm_b)
                h.push(ratio, keys, vals)
                n_rest = b_to - b_from
                if n_rest > 0:
                    h.skip_empty(n_rest, np.broadcast_to(np.exp(-self._k_decay * h.period), (NS, 2)).reshape(-1))
                h.lm_last = (self._lm - self._k_decay * (b_to * h.period - t0)).reshape(-1)
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

    def _flush_mutations(self) -> None:
        if not self._mut:
            return
        keys = np.unique(np.concatenate(self._mut))
        self._mut = []
        for h in self._hist.values():
            h.pending.append(keys)
            if len(h.pending) > 64:
                h.pending = [np.unique(np.concatenate(h.pending))]

    def _touch(self, v: int | np.ndarray, s: int | np.ndarray, idx: np.ndarray) -> None:
        """Record that these (venue, side, absolute bucket) values changed other than by decay/close ratio."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size:
            code = np.asarray(v, dtype=np.int64) * 2 + np.asarray(s, dtype=np.int64)
            self._mut.append(((idx << _CODE_BITS) | code).ravel())

    def _touch_nonzero(self, vs_w: np.ndarray, b0: int) -> None:
        """Touch every nonzero (venue, side, bucket) of a (V, 2, W) array."""
        v, s, j = np.nonzero(vs_w > 0)
        if len(j):
            self._touch(v, s, j + b0)

    def _values_at_keys(self, keys: np.ndarray, lm: np.ndarray) -> np.ndarray:
        if len(keys) == 0:
            return np.empty(0)
        idx = keys >> _CODE_BITS
        code = keys & _CODE_MASK
        v, s = code // 2, code % 2
        j = idx - self._b0
        ok = (j >= 0) & (j < self._W)
        out = np.zeros(len(keys))
        if ok.any():
            sums = self._base[v[ok], :, s[ok], j[ok]].sum(axis=-1)
            out[ok] = sums * np.exp(lm[v[ok], s[ok]] - self._ref[v[ok], s[ok]])
        return np.where(out > EPS_USD, out, 0.0)

    @staticmethod
    def _scatter(work: np.ndarray, keys: np.ndarray, vals: np.ndarray, row0: int, nrows: int) -> None:
        if len(keys) == 0:
            return
        r = (keys >> _CODE_BITS) - row0
        ok = (r >= 0) & (r < nrows)
        if ok.any():
            work[(keys[ok] & _CODE_MASK), r[ok]] = vals[ok]

    @staticmethod
    def _remap_keys(keys: np.ndarray, remap) -> np.ndarray:
        if len(keys) == 0:
            return keys
        return np.unique((remap(keys >> _CODE_BITS) << _CODE_BITS) | (keys & _CODE_MASK))

    def _rebin_history(self, h: _History, remap) -> None:
        """Reconstruct every recorded boundary densely, re-bin it, and re-encode keyframe + deltas."""
        if h.kb is None:
            return
        decoded = [h.delta(i) for i in range(len(h.deltas))]
        all_keys = [h.key_keys] + [k for _, k, _ in decoded]
        cat = np.concatenate(all_keys) if all_keys else np.empty(0, np.int64)
        if len(cat) == 0:
            return
        idx = cat >> _CODE_BITS
        lo, hi = int(idx.min()), int(idx.max())
        n = hi - lo + 1
        new_of_row = remap(np.arange(lo, hi + 1))
        nlo = int(new_of_row.min())
        nn = int(new_of_row.max()) - nlo + 1

        # remap is monotone: each new bucket gathers one run of consecutive old rows, so a reduceat over the
        # runs does what np.add.at would, without its per-element cost (a rebucket runs under the asset lock)
        starts = np.flatnonzero(np.r_[True, np.diff(new_of_row) != 0])
        cols = new_of_row[starts] - nlo

        def rebin(work: np.ndarray) -> np.ndarray:
            out = np.zeros((2 * NS, nn))
            out[:, cols] = np.add.reduceat(work, starts, axis=1)
            return out

        def sparse(dense: np.ndarray, only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
            code, j = np.nonzero(dense > EPS_USD) if only is None else only
            keys = ((j.astype(np.int64) + nlo) << _CODE_BITS) | code
            vals = dense[code, j]
            order = np.argsort(keys)
            return keys[order], vals[order]

        work = np.zeros((2 * NS, n))
        self._scatter(work, h.key_keys, h.key_vals, lo, n)
        kk, kv = sparse(rebin(work))
        new_deltas = deque()
        for ratio, keys, vals in decoded:
            work *= ratio[:, None]
            self._scatter(work, keys, vals, lo, n)
            dense = rebin(work)
            if len(keys):
                touched = np.zeros((2 * NS, nn), bool)  # the re-binned cells this delta changed (no hashing)
                touched[keys & _CODE_MASK, remap(keys >> _CODE_BITS) - nlo] = True
                nk, nv_ = sparse(dense, np.nonzero(touched))
            else:
                nk, nv_ = np.empty(0, np.int64), np.empty(0)
            new_deltas.append(h._encode(ratio, nk, nv_))
        h.key_keys, h.key_vals = kk, kv
        h.deltas = new_deltas

    # --- per-venue state helpers -----------------------------------------------------------------------

    def _actual_by_venue(self) -> np.ndarray:
        """(V, 2, W) USD."""
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
        self._clock_to(t_last)
        if len(tr):
            self.last_price = float(tr["price"][-1])
            self._vol.add(int(math.floor(t_last / 60.0)), self.last_price)
            if self._px_hist is not None:
                self._px_hist.add(tr["ts"], tr["price"].astype(np.float64))
            for v in np.flatnonzero(np.bincount(tr["venue"], minlength=NV)):  # venues present, ascending
                sel = tr[tr["venue"] == v]
                f = self._flow[int(v)]
                if np.isfinite(self._anchor_oi[int(v)]):
                    f.add(sel["price"].astype(np.float64), sel["usd"].astype(np.float64), sel["side"])
                    if f.n > 50_000:
                        f.compact(self.step)
        elif self.last_price is None and len(lq):
            self.last_price = float(lq["price"][-1])
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
        self._clock_to(ts)
        oi = float(row["oi"])
        f = self._flow[v]
        if not np.isfinite(self._anchor_oi[v]):
            self._anchor_oi[v], self._anchor_ts[v] = oi, ts
            self._flow[v] = _Flow()
            self._place_prior(v, ts, oi, float(row["mark"]))
            return
        prices, usds = f.arrays()
        vol = float(usds.sum()) if len(usds) else 0.0
        if vol > 0:
            vwap = float((prices * usds).sum() / vol)
        elif row["mark"] > 0:
            vwap = float(row["mark"])
        elif self.last_price:
            vwap = self.last_price
        else:
            return  # cannot price the step yet; keep the anchor and wait
        if self._W == 0:
            self._allocate(vwap)
        if self.last_price is None:
            self.last_price = vwap
        d_n = (oi - self._anchor_oi[v]) * vwap
        oi_usd = oi * vwap
        p = self.params
        cap = float(p["cap_rel"]) * oi_usd
        # The USD floor never exceeds half the cap: on a venue holding under min_delta_usd / (cap_rel / 2) of OI
        # ($1.7M at the defaults: small coins, a venue's thin book) a step big enough to pass $25k would be cut
        # to the cap anyway, so almost every step was skipped and the model never saw the asset's positions.
        floor = min(float(p["min_delta_usd"]), 0.5 * cap)
        if abs(d_n) < max(float(p["min_delta_rel"]) * oi_usd, floor) or d_n == 0:
            self.stats["skipped"] += 1
            return
        if abs(d_n) > cap:
            d_n = math.copysign(cap, d_n)
            self.stats["capped"] += 1
        buy, sell, low, high = f.summary()
        tot = buy + sell
        phi = buy / tot if tot > 0 else 0.5
        phi_a = self.alpha * phi + (1.0 - self.alpha) / 2.0
        self.stats["intervals"] += 1
        if d_n > 0:
            long_amt = d_n * phi_a
            short_amt = d_n - long_amt
            if p["entry_mode"] == "highlow" and f.n:
                one = np.ones(1)
                self._open(v, ts, (np.array([low]), np.array([high])), (one, one), (long_amt, short_amt))
            else:
                entries, w = self._entry_profile(prices, usds, vwap)
                self._open(v, ts, (entries, entries), (w, w), (long_amt, short_amt))
        else:
            r = -d_n
            self._close(v, LONG_I, r * (1.0 - phi_a))
            self._close(v, SHORT_I, r * phi_a)
        self._anchor_oi[v], self._anchor_ts[v] = oi, ts
        self._flow[v] = _Flow()

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
        if self.prior_sigma > 0:
            z = np.linspace(-3.0, 3.0, 25)
            entries = price * np.exp(z * self.prior_sigma)
            w = np.exp(-0.5 * z * z)
            w /= w.sum()
        else:
            entries, w = np.array([price]), np.ones(1)
        self._open(NV + v, ts, (entries, entries), (w, w), (amount / 2.0, amount / 2.0))
        self.stats["prior_usd"] += amount

    def _top_up_prior(self, row) -> None:
        """Open-interest prior (docs/model.md §3 step 11): hold venue ``v``'s positions at ``prior_oi_fill`` × its
        public OI. The gap between that and what the model holds for the venue (flow and prior, both sides) is
        opened as the venue's prior source at the entries :mod:`liqmap.core.prior` finds plausible and still
        alive, half long, half short. At most once per ``_FILL_EVERY_S`` per venue (the gap moves slowly)."""
        v = int(row["venue"])
        ts = float(row["ts"])
        if ts - self._last_fill[v] < _FILL_EVERY_S or self._W == 0:
            return
        price = self.last_price or (float(row["mark"]) if row["mark"] > 0 else 0.0)
        if not price > 0:
            return
        self._last_fill[v] = ts
        target = self.prior_fill * float(row["oi"]) * price
        mult = np.exp(self._lm[[v, NV + v]] - self._ref[[v, NV + v]])  # (2 sources, 2 sides)
        held = float((self._base[[v, NV + v]].sum(axis=(1, 3)) * mult).sum())
        gap = target - held
        if not (gap > _FILL_MIN_REL * target and math.isfinite(gap)):
            return
        # the unseen past's spread: the configured σ, or the realized volatility over the mean age of an entry
        sigma = self.prior_sigma or self.sigma_hour * math.sqrt(max(self._prior_hl_s, 3600.0) / 3600.0 / LN2)
        ent, w, lo, hi = self._px_hist.entries(ts, price, self._prior_hl_s, sigma)
        wl, ws = surviving_weights(ent, w, lo, hi, self._ratio[v], self._w_eff[v])
        amounts = (gap / 2.0 if wl.sum() > 0 else 0.0, gap / 2.0 if ws.sum() > 0 else 0.0)
        self._open(NV + v, ts, (ent, ent), (wl, ws), amounts)
        self.stats["prior_usd"] += sum(amounts)

    def _entry_profile(self, prices: np.ndarray, usds: np.ndarray, fallback: float) -> tuple[np.ndarray, np.ndarray]:
        """Per-bucket VWAP entries weighted by traded notional."""
        if len(prices) == 0 or usds.sum() <= 0:
            return np.array([fallback]), np.ones(1)
        b = buckets.index(prices, self.step)
        keys, inv = np.unique(b, return_inverse=True)
        usd = np.bincount(inv, weights=usds, minlength=len(keys))
        pv = np.bincount(inv, weights=prices * usds, minlength=len(keys))
        ok = usd > 0
        entries = pv[ok] / usd[ok]
        return entries, usd[ok] / usd[ok].sum()

    def _open(self, v: int, ts: float, entries: tuple[np.ndarray, np.ndarray], weights: tuple[np.ndarray, np.ndarray],
              amounts: tuple[float, float]) -> None:
        """Place new positions of venue ``v``: per side, entries × leverage tiers at their liquidation buckets."""
        src, v = v, v % NV  # ``v`` may be a prior source (NV + venue): same venue contract and tiers
        parts_s, parts_k, parts_idx, parts_a = [], [], [], []
        for s in ((LONG_I, SHORT_I) if self._ratio_band is None else ()):
            amount = amounts[s]
            if not (amount > 0 and math.isfinite(amount)):
                continue
            rho = self._ratio[v, s]  # (K,)
            wk = self._w_eff[v]
            lp = entries[s][:, None] * rho[None, :]  # (n, K)
            # weights per entry (× the tier weights), or per (entry, tier) already (the OI prior's survivors)
            amt = amount * (weights[s] if weights[s].ndim == 2 else weights[s][:, None] * wk[None, :])
            ok = np.isfinite(lp) & (lp > 0) & (wk[None, :] > 0)
            if not ok.all():
                self.stats["unplaced_usd"] += float(amt[~ok & (wk[None, :] > 0)].sum())
            kk = np.broadcast_to(np.arange(self.K)[None, :], lp.shape)[ok]
            parts_s.append(np.full(len(kk), s))
            parts_k.append(kk)
            parts_idx.append(buckets.index(lp[ok], self.step))
            parts_a.append(amt[ok])
        if self._ratio_band is not None:
            ss, kk, idx, a = self._spread_bands(v, entries, weights, amounts)
        elif not parts_s:
            return
        else:
            ss, kk, idx, a = (np.concatenate(x) for x in (parts_s, parts_k, parts_idx, parts_a))
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
        gain = np.exp(self._ref[src, ss] - self._lm[src, ss])
        if len(idx) > 64:  # summed per (tier, side, bucket) above: no duplicates, plain indexing adds
            self._base[src][kk, ss, j] += a * gain
        else:
            np.add.at(self._base[src], (kk, ss, j), a * gain)
        self._oldest[ss, j] = np.minimum(self._oldest[ss, j], ts)  # one ts for all: duplicates agree
        self._newest[ss, j] = np.maximum(self._newest[ss, j], ts)
        self._occ[ss, j] = True
        self._touch(src, ss, idx)
        self.stats["added_usd"] += float(a.sum())

    def _spread_bands(self, v: int, entries, weights, amounts):
        """(side, tier, bucket, USD) with each (entry, tier) slice spread evenly over its band of prices.

        The window clipping is per side (a side may recenter the window); the per-bucket expansion — the
        part proportional to the band widths — runs once over both sides' slices."""
        sides = [s for s in (LONG_I, SHORT_I) if amounts[s] > 0 and math.isfinite(amounts[s])]
        if not sides:
            return (np.empty(0, np.int64),) * 3 + (np.empty(0),)
        # both sides' (entry, tier) slices as one (rows, K) table, rows side-major
        row_s = np.concatenate([np.full(len(entries[s]), s) for s in sides])
        ent = np.concatenate([entries[s] for s in sides]) if len(sides) > 1 else entries[sides[0]]
        wgt = np.concatenate([weights[s] for s in sides]) if len(sides) > 1 else weights[sides[0]]
        row_amt = np.array([amounts[s] for s in sides])[np.searchsorted(sides, row_s)]
        wk = self._w_eff[v]
        band = self._ratio_band[v][row_s]  # (rows, K, 2)
        lo = ent[:, None] * band[:, :, 0]
        hi = ent[:, None] * band[:, :, 1]
        amt = row_amt[:, None] * (wgt if wgt.ndim == 2 else wgt[:, None] * wk[None, :])
        ok = np.isfinite(lo) & np.isfinite(hi) & (lo > 0) & (wk[None, :] > 0)
        bad = ~ok & (wk[None, :] > 0)
        if bad.any():
            for s in sides:
                r = row_s == s
                self.stats["unplaced_usd"] += float(amt[r][bad[r]].sum())
        kk = np.broadcast_to(np.arange(self.K)[None, :], lo.shape)[ok]
        ss = np.broadcast_to(row_s[:, None], lo.shape)[ok]
        lo, hi, amt = lo[ok], hi[ok], amt[ok]
        edges = [0, *np.searchsorted(ss, sides[1:]).tolist(), len(ss)]  # each side's elements: contiguous
        parts = [slice(edges[i], edges[i + 1]) for i in range(len(sides))]
        # a band can be far wider than the window in buckets (tiny steps): only the window's part is
        # spread, the rest is counted as dropped (as a level outside the window would be). Each side checks
        # the window in turn (the first may recenter it for the second).
        win_lo = np.empty(len(lo))
        win_hi = np.empty(len(lo))
        b_min = np.empty(len(lo), np.int64)
        for part in parts:
            w_lo, w_hi = self._b0 * self.step, (self._b0 + self._W) * self.step
            lo_p, hi_p = lo[part], hi[part]
            off_centre = (self.last_price is not None and abs(int(buckets.index(self.last_price, self.step))
                                                              - (self._b0 + self._W // 2)) > self._W // 8)
            if len(lo_p) and (lo_p.min() < w_lo or hi_p.max() >= w_hi) and off_centre:
                self._recenter()
                w_lo, w_hi = self._b0 * self.step, (self._b0 + self._W) * self.step
            win_lo[part], win_hi[part], b_min[part] = w_lo, w_hi, self._b0
        width0 = hi - lo
        lo_c, hi_c = np.clip(lo, win_lo, win_hi), np.clip(hi, win_lo, win_hi)
        inside_share = np.where(width0 > 0, (hi_c - lo_c) / np.where(width0 > 0, width0, 1.0),
                                ((lo >= win_lo) & (lo < win_hi)).astype(np.float64))
        lost = amt * (1.0 - inside_share)
        for part in parts:
            self.stats["dropped_usd"] += float(lost[part].sum())
        keep = inside_share > 0
        ss, kk, lo, hi, amt = ss[keep], kk[keep], lo_c[keep], hi_c[keep], (amt * inside_share)[keep]
        b_min, b_max = b_min[keep], b_min[keep] + self._W - 1
        b_lo = np.clip(buckets.index(lo, self.step), b_min, b_max)
        b_hi = np.clip(np.maximum(buckets.index(hi, self.step), b_lo), b_min, b_max)
        n = b_hi - b_lo + 1
        total = int(n.sum())
        first = np.cumsum(n) - n
        b = np.repeat(b_lo - first, n) + np.arange(total)  # bucket of each (slice, bucket) pair
        width = hi - lo
        pos = width > 0
        w_safe = np.where(pos, width, 1.0)
        ov = np.minimum(np.repeat(hi, n), (b + 1) * self.step) - np.maximum(np.repeat(lo, n), b * self.step)
        frac = np.where(np.repeat(pos, n), np.clip(ov, 0.0, None) / np.repeat(w_safe, n), np.repeat(1.0 / n, n))
        return np.repeat(ss, n), np.repeat(kk, n), b, np.repeat(amt, n) * frac

    def _close(self, v: int, s: int, usd: float) -> None:
        """Close ``usd`` of venue ``v``'s side ``s`` proportionally over its levels (flow and prior alike:
        a position opened before the model started closes as readily as one it saw open)."""
        if usd <= 0:
            return
        srcs = (v, NV + v)
        totals = [float(self._base[x, :, s, :].sum()) * math.exp(self._lm[x, s] - self._ref[x, s]) for x in srcs]
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
                self._ledger(self._sweep(LONG_I, cand, ts[np.minimum(first, len(ts) - 1)]))
        run_max = np.maximum.accumulate(tb)
        hi = min(int(run_max[-1]), self._W - 1)
        if hi >= 0:
            cand = np.flatnonzero(self._occ[SHORT_I, :hi + 1])
            if len(cand):
                first = np.searchsorted(run_max, cand, side="left")
                self._ledger(self._sweep(SHORT_I, cand, ts[np.minimum(first, len(ts) - 1)]))

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

    def _ledger(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        rows = rows[np.argsort(rows["ts"], kind="stable")]
        self._consumed_parts.append(rows)
        self._consumed_n += len(rows)
        self._consumed_cache = None
        if self._consumed_n > CONSUMED_CAPACITY * 1.5:
            allrows = np.concatenate(self._consumed_parts)[-CONSUMED_CAPACITY:]
            self._consumed_parts, self._consumed_n = [allrows], len(allrows)

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
