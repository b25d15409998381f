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

Steps 1–3 live in ``flow.py``, 4–5 in ``placement.py``, the column history in ``history.py``. What one state
does with placed positions (open, close, consume, reconcile) is in ``book.py``, the priors in ``prior_fill.py``,
the dense window with its clock and decay in ``window.py``, the read-only questions in ``readout.py``: flat
mixins of :class:`SyntheticModel`, each over the same state. This module holds that state, its construction, and
the order events reach it in.

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
from ..hitrate import RANGE_PCT as HIT_RANGE_PCT  # the forecast is scored and read within ± this % of price
from ..params import MODEL_DEFAULTS, core_params
from ..tiers import TierTable, table_for
from ..venues import TABLE as VENUE_TABLE
from .book import LevelBook, TradeReach
from .flow import VenueFlows
from .history import Histories
from .ledger import ConsumedLedger
from ..prior import PriceHistory
from .resting import RECORD_STALE_S, RestingColumns, RestingLayer, add_levels, column_record
from .pending import OpenQueue, open_extent
from .placement import Placement
from .prior_fill import LN2, PriorFill
from .readout import LevelReadout, lev_label
from .filling import OIFill
from .regime import ForcedShare
from .sources import LONG_I, MAX_INDEX, NS, NV, SHORT_I
from .window import StateWindow

LONG_DRIFT_MIN_HOURS = 2.0  # the long drift replaces the volatility window's once this many hours of closes are seen

__all__ = ["SyntheticModel", "lev_label"]

# MODEL_DEFAULTS: the model section of liqmap.core.params (ModelParams), the one place its defaults live.


def _block(dtype: np.dtype) -> np.dtype:
    """A view of an event dtype whose field ``f`` is its first four float64 fields as one (4,) row."""
    names = dtype.names[:4]
    assert all(dtype.fields[n][0] == np.float64 and dtype.fields[n][1] == 8 * i for i, n in enumerate(names))
    return np.dtype({"names": ["f"], "formats": [(np.float64, (4,))], "offsets": [0],
                     "itemsize": dtype.itemsize})


_BLOCK = {d: _block(d) for d in (OI_DTYPE, TRADE_DTYPE, LIQ_DTYPE)}


def _merged_params(params: dict | None) -> dict:
    p = dict(MODEL_DEFAULTS)
    for k, v in (params or {}).items():
        p[k] = v
    return p


class SyntheticModel(StateWindow, LevelBook, PriorFill, LevelReadout):
    """Estimated liquidation notional at risk per price bucket, for one asset across venues.

    ``step`` is the asset's bucket step (liqmap.core.buckets); ``params`` the config ``model`` section;
    ``tiers`` per-venue tier tables (default: :func:`liqmap.core.tiers.table_for`); ``markets`` per-venue
    contracts (default: the asset's markets in the default universe; decides linear vs inverse);
    ``columns`` how many columns of each timeframe the history keeps (``engine.columns``; taken from
    ``cfg`` when given).
    """

    # Opens wait in a queue and are placed together (pending.py); False: each is placed as it comes (the
    # reference the tests hold the queue to)
    BATCH_OPENS = True

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
        self._queue = OpenQueue(self.placement, self.placement.ratio_band is not None) if self.BATCH_OPENS else None
        self.forecast_spread = float(min(max(float(p["forecast_leverage_spread"]), 0.0), 1.0))
        self._fc: SyntheticModel | None = None
        if self.forecast_spread > self.spread:
            # the OI prior feeds the forecast's state only with forecast_prior_oi_fill (it lowered the ranging
            # market's forecast on seeds 1-4, docs/benchmarks.md): the dollars the map shows come from the levels
            self._fc = SyntheticModel(asset, step, {**p, "leverage_spread": self.forecast_spread,
                                                    "prior_oi_fill": p["forecast_prior_oi_fill"],
                                                    "prior_held_cap": p["forecast_prior_held_cap"],
                                                    "prior_fill_forced_share": p["forecast_prior_forced_share"],
                                                    "resting_share": 0.0},  # the outer model adds its layer
                                      tiers=self.tiers,
                                      markets=markets, columns=1, cfg=cfg, _history=False)
        # The states one event stream drives. Both see the same flow (interval, OI step, taker split, entries:
        # nothing there depends on where levels were placed), so it is worked out once here and handed to each
        # state; only placement, closes, consumption and reconciliation run per state (issue 17: the forecast's
        # state repeating the flow was a third of the model's time).
        self._states: tuple[SyntheticModel, ...] = (self,) if self._fc is None else (self._fc, self)

        self.alpha = float(min(max(float(p["taker_alpha"]), 0.0), 1.0))
        self.side_gap_max = float(min(max(float(p.get("side_gap_max", 1.0)), 0.0), 1.0))
        # ... only while the market is in a forced phase (regime.py): the venues' published liquidations at least
        # this share of the traded USD over the volatility window (0: always)
        self.side_gap_forced = max(float(p.get("side_gap_forced_share", 0.0)), 0.0)
        self._forced = ForcedShare(int(p["forecast_vol_window_minutes"]))
        # Opt-in (off): the split by the taker imbalance in USD (flow.net_long_share) blended in with this weight,
        # only while published liquidations are under taker_net_forced_share of the traded USD (0 = no gate)
        self.taker_net_w = float(min(max(float(p.get("taker_net_weight", 0.0)), 0.0), 1.0))
        self.taker_net_forced = max(float(p.get("taker_net_forced_share", 0.0)), 0.0)
        # An OI rise past the cap is kept up to the venue's traded notional while the asset's open interest is
        # filling: at least this × what it was an hour ago (filling.py; 0 = never, unless cap_open_volume)
        self.cap_fill = max(float(p.get("cap_open_fill_ratio", 0.0)), 0.0)
        self._fill = OIFill(NV, int(p["forecast_vol_window_minutes"])) if self.cap_fill > 0 else None
        # this state's OI prior tops up only in a forced phase (0: always): see ``_prior_gate_open``
        self.prior_forced = max(float(p.get("prior_fill_forced_share", 0.0)), 0.0)
        # the forced share is measured only if something reads it (the side balance or a gated prior)
        self._track_forced = (self.side_gap_forced > 0 and self.side_gap_max < 1.0) or (
            self.taker_net_w > 0 and self.taker_net_forced > 0) or any(
            m.prior_forced > 0 and m.prior_fill > 0 for m in self._states if m is not self) or (
            self.prior_forced > 0 and float(p["prior_oi_fill"]) > 0)
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
        self.prior_held_cap = max(float(p.get("prior_held_cap", 0.0)), 0.0)  # ... at most × the flow held (0: no bound)
        self._prior_hl_s = phl * 3600.0 if phl > 0 and math.isfinite(phl) else 0.0
        # The resting layer (docs/model.md §3 step 13, resting.py): the low-leverage OI held for days, read from the
        # same price path and the OI samples when the forecast's levels are asked for
        self._resting = RestingLayer(p, self.tiers, self._inverse, float(p["typical_position_usd"]))
        # ... and what it held near price at each column's end, for the map's past columns
        self._rest_cols = RestingColumns(self.columns) if self._resting.on and _history else None
        self._rest_due = -math.inf if self._rest_cols is not None else math.inf  # the next minute's boundary
        # the price path the priors' and the layer's entries come from: one per model (the forecast's state reads it)
        self._px_hist = (PriceHistory() if self.prior_fill > 0 or (self._fc is not None and self._fc.prior_fill > 0)
                         or self._resting.on else None)
        self._last_fill = np.full(NV, -math.inf)
        self._k_decay = np.concatenate([np.full(NV, k_flow), np.full(NV, k_prior)])[:, None]  # (NS, 1)
        self._decays = bool(self._k_decay.any())
        self._k_max = float(self._k_decay.max())
        self._fold_check_at = -math.inf  # the clock asks whether a multiplier needs folding from then on
        self.reconcile_k = max(0, int(p["reconcile_buckets"]))
        # a real liquidation's buckets, as offsets from its own: nearest first, ties lower first
        self._reconcile_order = np.array(sorted(range(-self.reconcile_k, self.reconcile_k + 1),
                                                key=lambda d: (abs(d), d)), dtype=np.int64)
        # venues whose liquidation prints are a sample (one per symbol per second): see ``LevelBook._reconcile``
        self._sampled = np.array([v.liq_sampled for v in VENUE_TABLE] + [False] * (NV - len(VENUE_TABLE)))[:NV]
        # the USD scale (core/model/scale.py, ``LevelReadout.usd_scale``): each venue's last public OI (NaN = none)
        self.dollar_cap = max(float(p["dollar_scale_cap"]), 1.0)
        self._oi_now = np.full(NV, np.nan)
        # next-hour forecast (liqmap.core.forecast): realized volatility of the trades seen, and the horizon
        self.horizon_hours = max(float(p["forecast_horizon_hours"]), 0.0)
        self.tails = str(p["forecast_tails"])
        if self.tails not in TAILS:
            raise ValueError(f"model: forecast_tails must be one of {', '.join(TAILS)}, got {self.tails!r}")
        self._vol = RealizedVol(int(p["forecast_vol_window_minutes"]),
                                float(p["forecast_default_vol_hour_pct"]) / 100.0)
        self.drift_weight = max(float(p.get("forecast_drift_weight", 0.0)), 0.0)
        self.drift_shrink = max(float(p.get("forecast_drift_shrink", 4.0)), 0.0)
        # the same drift over the last forecast_drift_hours of closes once LONG_DRIFT_MIN_HOURS are seen (None = off)
        dh = float(p.get("forecast_drift_hours", 0.0))
        self._long = RealizedVol(int(round(dh * 60.0)), float(p["forecast_default_vol_hour_pct"]) / 100.0) \
            if dh * 60.0 > int(p["forecast_vol_window_minutes"]) else None
        # the walk's spread over the horizon: σ of 1-minute returns × √(variance ratio at this many minutes)
        # (RealizedVol.variance_ratio; 0 = off, the 1-minute σ as it is)
        self.vr_minutes = max(int(p.get("forecast_vr_minutes", 0)), 0)
        self.vr_shrink = max(float(p.get("forecast_vr_shrink", 4.0)), 0.0)

        # dense state, allocated at the first price
        self._W = 0
        self._b0 = 0
        self._base = np.zeros((NS, self.K, 2, 0))
        # each (source, side)'s sum of ``base``, kept until base changes there (NaN: to be summed): a close
        # needs it, and closes come far more often than anything else touches a side
        self._sums = np.full((NS, 2), np.nan)
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
        # where each OI sample cuts the trades and liquidations (all of them after the last sample)
        o_ts = oi["ts"]
        t_cut = (np.searchsorted(trades["ts"], o_ts, side="right").tolist() if len(trades) else [0] * len(oi))
        l_cut = (np.searchsorted(liqs["ts"], o_ts, side="right").tolist() if len(liqs) else [0] * len(oi))
        t_cut.append(len(trades))
        l_cut.append(len(liqs))
        oi_rows = oi.tolist()  # (ts, oi, oi_usd, mark, venue) as plain numbers: one conversion, not four per row
        for r in range(len(oi) + 1):
            j, k = t_cut[r], l_cut[r]
            if j > ti or k > li:
                self._flow_batch(trades[ti:j], liqs[li:k])
                ti, li = j, k
            if r < len(oi):
                ts, oi_base, oi_usd, mark, venue = oi_rows[r]
                self._apply_oi(ts, oi_base, mark, venue, oi_usd if self._inverse[venue] else math.nan)
                if self._px_hist is not None:
                    sigma = None  # worked out only for a state whose gate is open (most samples: none)
                    for m in self._states:
                        if m.prior_fill > 0 and self._prior_gate_open(m):
                            if sigma is None:
                                sigma = self._prior_sigma()
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

    def _clock_to(self, t: float) -> None:
        t0 = self._t
        StateWindow._clock_to(self, t)
        # a minute's boundary crossed: the resting layer near price as it stands, for the columns that just ended
        # (before this update's events, as the flow's history records them)
        if t >= self._rest_due:
            self._rest_due = (math.floor(t / 60.0) + 1) * 60.0
            if t0 is not None:
                self._rest_cols.record(t0, t, self._resting_record)

    def _resting_record(self) -> tuple | None:
        if not self._resting.reaches(self._px_hist, self.last_price, self.params["range_pct"] / 100.0):
            return None  # far from price (most of the time): no shape built
        oi_usd = self._oi_now * (self.last_price or math.nan)
        b, lo, sh = self._near(self._resting.record_levels(self._px_hist, self._t, self.last_price, oi_usd, self.step,
                                                           RECORD_STALE_S))
        ok = np.isfinite(oi_usd) & (oi_usd > 0)
        return column_record(b, lo, sh, self._resting.share * np.where(ok, oi_usd, 0.0))

    def _near(self, lv: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The levels within ±``range_pct`` of the last price (the span the model tracks and the reports read)."""
        b, lo, sh = lv
        if not len(b) or not self.last_price:
            return b[:0], lo[:0], sh[:0]
        near = np.abs((b + 0.5) * self.step / self.last_price - 1.0) <= self.params["range_pct"] / 100.0
        return b[near], lo[near], sh[near]

    def near_resting_levels(self, venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The resting layer within ±``range_pct`` of price: the part the map's columns, the reports and the Hybrid
        forward profile draw (its billions a third of the price away are the forecast's alone)."""
        if not self._resting.on:
            return np.empty(0, np.int64), np.empty(0), np.empty(0)
        return self._near(self.resting_levels(venues))

    def forecast_levels(self, venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The levels the forecast weighs: each tier spread over ``forecast_leverage_spread`` of its leverage band
        (traders use 7x, 12x, 20x ..., not only the tier values), from the same events as :meth:`levels` —
        same opens, closes, decay and reconciliation; consumption differs only where price swept part of a
        band. Without a wider forecast band: :meth:`levels` itself. Plus the resting layer (docs/model.md §3
        step 13), in the OI's USD."""
        flow = self._flow_forecast_levels(venues)
        return add_levels(flow, self.resting_levels(venues)) if self._resting.on else flow

    def resting_levels(self, venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The resting layer (docs/model.md §3 step 13) of these venues: (bucket, long USD, short USD), in the OI's
        USD; empty when it is off or before an OI sample and a minute of prices."""
        oi_usd = np.where(self._venue_mask(venues)[:NV], self._oi_now * (self.last_price or math.nan), math.nan)
        return self._resting.levels(self._px_hist, self._t, self.last_price, oi_usd, self.step)

    def report_levels(self, venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The liquidation levels the reports weigh (the verdict's magnets, convergence, the screener, the Hybrid
        forward profile): the map's :meth:`levels` and the resting layer within ±``range_pct`` of price, so that a
        magnet the NEXT 1H forecast names after a 30 % run is the one the verdict names too. Only that near: the
        layer's billions a third of the price away set convergence's percentile of the model's buckets, and the
        demo's chips vanished. The map's columns draw the same (``column_profiles``)."""
        flow = self.levels(venues)
        if not self._resting.on or not self.last_price:
            return flow
        return add_levels(flow, self.near_resting_levels(venues))

    def _flow_forecast_levels(self, venues: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The forecast's levels from the flow the model saw (and its OI prior), on the dollar scale."""
        if self._fc is None:
            return self.levels(venues)
        b, lo, sh = self._fc.levels(venues)  # the inner state holds no OI samples: unscaled
        abv = self._actual_by_venue()
        k = self.usd_scale(venues, abv)
        if self._fc.prior_fill > 0 and self._fc.stats["prior_usd"] > 0:  # once the prior has placed anything
            mask = self._venue_mask(venues)
            # how many: the forecast state's own flow (its prior rows left out), then the map's as before
            own = self._fc._actual_by_venue()[:NV][mask[:NV]].sum(axis=(0, 1))
            k *= self._prior_dollars(b, lo + sh, (own, self._fc._b0), (abv[mask].sum(axis=(0, 1)), self._b0))
        return (b, lo * k, sh * k) if k != 1.0 else (b, lo, sh)

    def _prior_dollars(self, fc_b: np.ndarray, fc_usd: np.ndarray, *held: tuple[np.ndarray, int]) -> float:
        """The factor that puts the forecast's levels, OI prior included, on the dollars of the flow it has seen
        (``held``: (USD per window bucket before the scale, the window's first bucket), first choice first). The
        prior says where the positions the model never saw open sit, not how many there are — that is the dollar
        scale's answer (step 12) — so the forecast reports the USD its own state's flow holds within
        ±``HIT_RANGE_PCT`` of price, spread by its own levels; the map's if that holds none there; all of it if
        neither does. Sized by the OI instead, at real-sized OI NEXT 1H printed ~100× the map beside it and jumped
        by that each time the prior's gate opened; matched on the whole window, a prior spread far from price left
        NEXT 1H a few % of the map's dollars near price; matched on the map's thin lines, it copied their error
        where price stops inside a tier's band and sweeps the line whole (docs/benchmarks.md, "The forecast's
        dollars at real size", "The 22× checkpoint")."""
        px = self.last_price
        if px:
            lo_b = int(buckets.index(px * (1.0 - HIT_RANGE_PCT / 100.0), self.step))
            hi_b = int(buckets.index(px * (1.0 + HIT_RANGE_PCT / 100.0), self.step))
            fc_near = float(fc_usd[(fc_b >= lo_b) & (fc_b <= hi_b)].sum())
            for usd, b0 in held:
                near = float(usd[max(lo_b - b0, 0):max(hi_b - b0 + 1, 0)].sum())
                if near > 0 and fc_near > 0:
                    return near / fc_near
        usd, _ = held[-1]
        total, fc_total = float(usd.sum()), float(fc_usd.sum())
        return total / fc_total if total > 0 and fc_total > 0 else 1.0

    @property
    def sigma_hour(self) -> float:
        """The walk's volatility per hour (log returns): the realized volatility of the 1-minute returns the model
        has seen (the default if few), scaled by √ of their variance ratio with ``forecast_vr_minutes``."""
        s = self._vol.sigma_hour()
        return s * math.sqrt(self._vol.variance_ratio(self.vr_minutes, self.vr_shrink)) if self.vr_minutes else s

    @property
    def drift_hour(self) -> float:
        """The trend the forecast's walk carries (log return per hour; 0 = driftless): ``forecast_drift_weight``
        of the shrunk drift (:meth:`RealizedVol.drift_hour`) over the last ``forecast_drift_hours`` of closes once
        ``LONG_DRIFT_MIN_HOURS`` of them are seen (a back-fill gives 6 h), else over the volatility window's hour.
        Measured over hours, a run stands out of its noise and a wander does not; over one hour the wander of an
        untrended market often passes the shrink and reverts (docs/benchmarks.md, session 14)."""
        if not self.drift_weight:
            return 0.0
        long = self._long is not None and self._long.minutes_seen() >= LONG_DRIFT_MIN_HOURS * 60
        vol = self._long if long else self._vol
        return self.drift_weight * vol.drift_hour(self.drift_shrink)

    @property
    def minute_closes(self) -> tuple[tuple[int, float], ...]:
        """The (minute, last traded price) closes of the volatility window, oldest first: what the forecast's σ
        and drift are measured on, and the market regime its calibrated chance is read in (core/calibration.py)."""
        return tuple(self._vol._closes)

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
        el, es, p = expected(b, lo, sh, self.step, px, self.sigma_hour, h, self.tails, self.drift_hour)
        return b, el, es, p

    def rebucket(self, new_step: float) -> None:
        """Re-bin the state and the column history into ``new_step`` (price moved more than 2× off the step)."""
        if not (new_step > 0 and math.isfinite(new_step)) or new_step == self.step:
            return
        if self._fc is not None:
            self._fc.rebucket(new_step)
        self._place_queued()
        old = self.step

        def remap(idx: np.ndarray) -> np.ndarray:
            return buckets.index((np.asarray(idx, dtype=np.float64) + 0.5) * old, new_step)

        # history first (it reads bucket keys in the old step)
        self._histories.rebin(remap)
        if self._rest_cols is not None:
            self._rest_cols.rebin(old, float(new_step))
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
            self._sums[:] = np.nan
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
        self._place_queued()
        n = self._base.nbytes + self._oldest.nbytes + self._newest.nbytes
        n += self._histories.nbytes()
        n += self._rest_cols.nbytes() if self._rest_cols is not None else 0
        n += self._ledger.nbytes()
        return int(n) + (self._fc.memory_bytes() if self._fc is not None else 0)

    # --- input hygiene ---------------------------------------------------------------------------------

    def _clean(self, a: np.ndarray | None, dtype: np.dtype, positive: tuple[str, ...]) -> np.ndarray:
        if a is None or len(a) == 0:
            return np.empty(0, dtype)
        a = np.asarray(a)
        if not (a.dtype == dtype and self._all_clean(a, dtype)):
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

    def _all_clean(self, a: np.ndarray, dtype: np.dtype) -> bool:
        """Every row passes :meth:`_clean`'s checks (the usual case): a few rows one by one in Python, more from the
        column minima and maxima of the first four fields — all float64, side by side in every event dtype — and
        the largest venue. A NaN fails every comparison (a NaN anywhere in a checked column makes its minimum
        NaN); then :meth:`_clean` checks the rows with numpy and drops the bad ones."""
        lim = MAX_INDEX * self.step
        inf = math.inf
        if len(a) <= 12:  # a few rows (OI samples, liquidations): row by row in Python is cheaper than numpy
            if dtype == OI_DTYPE:
                return all(-inf < t < inf and v < NV and 0 < o < inf and 0 <= mk < lim
                           for t, o, _, mk, v in a.tolist())
            return all(-inf < r[0] < inf and r[5] < NV and 0 < r[1] < lim and 0 < r[2] < inf and 0 < r[3] < inf
                       for r in a.tolist())
        blk = a.view(_BLOCK[dtype])["f"]  # (n, 4): ts and three float fields of each row, in place
        mn, mx = blk.min(axis=0).tolist(), blk.max(axis=0).tolist()
        if not (-inf < mn[0] and mx[0] < inf and int(a["venue"].max()) < NV):
            return False
        if dtype == OI_DTYPE:  # ts, oi, oi_usd (not checked), mark
            return 0 < mn[1] and mx[1] < math.inf and 0 <= mn[3] and mx[3] < lim
        # ts, price, qty, usd: all positive, the price below the bucket limit
        return 0 < mn[1] and mx[1] < lim and 0 < mn[2] and mx[2] < math.inf and 0 < mn[3] and mx[3] < math.inf

    # --- events ----------------------------------------------------------------------------------------

    def _flow_batch(self, tr: np.ndarray, lq: np.ndarray) -> None:
        """Trades and liquidations between two OI samples, one 1-minute column at a time."""
        if len(tr) == 0 and len(lq) == 0:
            return
        # both are in time order (``_clean``): the first and last column are those of the earliest and latest
        first = min(float(tr["ts"][0]) if len(tr) else math.inf, float(lq["ts"][0]) if len(lq) else math.inf)
        last = max(float(tr["ts"][-1]) if len(tr) else -math.inf, float(lq["ts"][-1]) if len(lq) else -math.inf)
        if math.floor(first / 60.0) == math.floor(last / 60.0):  # the usual case: one column
            self._flow_column(tr, lq)
            return
        edges = np.unique(np.floor(np.concatenate([tr["ts"], lq["ts"]]) / 60.0))
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
            if self._long is not None:
                self._long.add(int(math.floor(t_last / 60.0)), last)
            if self._px_hist is not None:
                self._px_hist.add(tr["ts"], tr["price"])
            self._flows.add_trades(tr, self.step)
        elif self.last_price is None and len(lq):
            for m in states:
                m.last_price = float(lq["price"][-1])
        if self._track_forced:
            self._forced.add(int(math.floor(t_last / 60.0)), float(tr["usd"].sum()) if len(tr) else 0.0,
                             float(lq["usd"].sum()) if len(lq) else 0.0)
        reach = TradeReach(tr, self.step) if len(tr) else None
        for m in states:
            m._column_levels(reach, lq)

    def _column_levels(self, reach: TradeReach | None, lq: np.ndarray) -> None:
        """One state's side of a column of flow: real liquidations reconciled, then the levels trades swept."""
        if self._W == 0:
            if self.last_price:
                self._allocate(self.last_price)
            else:
                return
        for row in lq:
            self._reconcile(row)
        if reach is not None:
            self._consume(reach)

    def _taker_net_now(self) -> float:
        """The weight of the net-imbalance split (flow.net_long_share) now: ``taker_net_weight``, but 0 while the
        published liquidations are at least ``taker_net_forced_share`` of the traded USD (regime.py; 0: no gate).
        Off by default: it lifts the ranging market and costs every other (docs/benchmarks.md, session 11)."""
        if self.taker_net_w <= 0.0:
            return 0.0
        if self.taker_net_forced > 0 and self._forced.share() >= self.taker_net_forced:
            return 0.0
        return self.taker_net_w

    def _side_gap_now(self) -> float:
        """The side gap an OI fall tolerates now: ``side_gap_max`` in a forced phase (published liquidations at
        least ``side_gap_forced_share`` of the traded USD over the window, regime.py), else 1 (taker flow alone).
        In a quiet market the taker split is information the balancing would override (range seeds 1-10: 1.422
        -> 1.372 balancing always); in a cascade the sweep of one side is what drives the sides apart."""
        if self.side_gap_max >= 1.0:
            return 1.0
        if self.side_gap_forced > 0 and self._forced.share() < self.side_gap_forced:
            return 1.0
        return self.side_gap_max

    def _prior_gate_open(self, m: SyntheticModel) -> bool:
        """May state ``m``'s OI prior top up now? Always with its forced share 0; else only in a forced phase
        (the venues' published liquidations at least that share of the traded USD over the window, regime.py). The
        prior places what the model never saw open; in a quiet market that assumption costs the flow it did see
        (range seeds 1-10: 1.421 -> 1.247 with the forecast's prior always on), in a cascade price runs through
        the old positions the model never saw — in a fall the longs opened above, now below price."""
        return m.prior_forced <= 0 or self._forced.share() >= m.prior_forced

    def _apply_oi(self, ts: float, oi: float, mark: float, v: int, usd: float = math.nan) -> None:
        """One OI sample (time, base units, mark price, venue index; ``usd``: an inverse venue's OI in USD, which
        its steps are measured in — see ``VenueFlows.accept``)."""
        states = self._states
        for m in states:
            m._clock_to(ts)
        self._oi_now[v] = oi
        # priced before the step (which may set the first last_price)
        usd_v = usd if math.isfinite(usd) else oi * (mark if mark > 0 else (self.last_price or 0.0))
        self._apply_oi_step(ts, oi, mark, v, usd)
        if self._fill is not None:
            # the sample joins the asset's OI history only after its own step was judged (a whale's open does not
            # count as the growth that lets it through)
            self._fill.add(ts, v, usd_v)

    def _filling(self) -> bool:
        """Is the asset's OI young (filling.py): at least ``cap_open_fill_ratio`` × what it was a window ago?"""
        return self._fill is not None and self._fill.ratio() >= self.cap_fill

    def _apply_oi_step(self, ts: float, oi: float, mark: float, v: int, usd: float) -> None:
        """The OI sample as a step from the venue's anchor: the first places the prior, later ones open or close."""
        states = self._states
        fl = self._flows
        gap_s = fl.sample_gap(v, ts)
        if fl.first_sample(v, ts, oi, usd):
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
        st = fl.accept(v, oi, vwap, self.params, self.alpha, self.stats, usd, self._filling, self._taker_net_now(),
                       gap_s=gap_s)
        if st is None:
            return  # below the floor: the interval keeps growing from the same anchor
        if st.d_n > 0:
            long_amt = st.d_n * st.phi_a
            entries, weights = fl.entries(v, st, vwap, self.step, self.params["entry_mode"])
            ext = open_extent(entries, weights) if self._queue is not None else None
            for m in states:
                m._open(v, ts, entries, weights, (long_amt, st.d_n - long_amt), ext)
        else:
            r = -st.d_n
            gap_max = self._side_gap_now()
            for m in states:
                long_close, short_close = r * (1.0 - st.phi_a), r * st.phi_a
                if gap_max < 1.0:
                    # every contract is one long and one short: what one side holds beyond gap_max of the
                    # two sides' sum over the other closes first, the rest by the taker flow. By the taker flow
                    # alone, a market falling through its longs (swept) while both sides closed alike left the
                    # model 5:1 short where the true positions were even (demo cascade seed 5), its top buckets
                    # above price all hour while the liquidations ran through the longs below.
                    lu, su = m._venue_side_usd(v, LONG_I), m._venue_side_usd(v, SHORT_I)
                    over = abs(lu - su) - gap_max * (lu + su)
                    if over > 0:
                        first = min(over, r)
                        long_close = (first if lu > su else 0.0) + (r - first) * (1.0 - st.phi_a)
                        short_close = r - long_close
                m._close(v, LONG_I, long_close)
                m._close(v, SHORT_I, short_close)
        fl.reanchor(v, oi, ts, usd)
