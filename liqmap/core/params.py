"""The core's parameters, typed and frozen, with their defaults in one place.

``liqmap.config`` owns the user-facing settings (files, environment, flags, validation) and builds these
objects (``config.core_params(cfg)``); the core only ever receives them, so no module under ``liqmap.core``
imports ``liqmap.config`` (an import-linter contract holds it). The defaults written here are the defaults:
``config.DEFAULTS`` takes its ``buckets``, ``model``, ``engine``, ``store`` and ``reports`` sections from
these classes (``section_defaults``) and ``liqmap.core.reports.defaults``, so no default is restated.

Every constructor that takes parameters also accepts a plain settings mapping (the whole settings dict or a
partial one, as tests write them): :func:`core_params` fills what is missing from these defaults.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .reports.defaults import ReportParams, report_params

HOUR = 3600.0


@dataclass(frozen=True)
class BucketParams:
    target_bp: float = 5.0  # bucket step ≈ this many basis points of price, rounded to a nice number


@dataclass(frozen=True)
class ModelParams:
    """Synthetic liquidation model (docs/model.md §3). Shown in the help screen."""

    leverage_tiers: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
    leverage_weights: tuple[float, ...] = (0.15, 0.30, 0.25, 0.20, 0.10)
    taker_alpha: float = 1.0  # 1 = split new OI by taker flow; 0 = split evenly
    # The split read from the taker imbalance in USD instead (core/model/flow.py net_long_share): longs minus shorts
    # opened ≈ taker buys − sells, bounded by the step. This share of it blended over the ratio split. 0 = off.
    # (opt-in, off) ... or by the taker imbalance in USD read against the step (core/model/flow.py net_long_share):
    # longs minus shorts opened ≈ taker buys − sells, bounded by the step; this share of it blended over the ratio
    # split. Lifts range 1-10 1.421 -> 1.479 and costs every other condition (steady 1.755 -> 1.640, trend 1.748 ->
    # 1.499; docs/benchmarks.md, issue 17 item 4, session 11), so 0. taker_net_forced_share > 0: only while the
    # published liquidations are under that share of the traded USD (0 = always)
    taker_net_weight: float = 0.0
    taker_net_forced_share: float = 0.0
    # Every contract is one long and one short: a fall in OI first closes what the heavier side holds over the
    # other beyond this share of the two sides' sum, the rest by taker flow. 1 = off (by taker flow alone) ...
    side_gap_max: float = 0.0
    # ... but only in a forced phase: while the venues' published liquidations are at least this share of the
    # traded USD over forecast_vol_window_minutes (core/model/regime.py; 0 = always). Balancing always lifts
    # cascade 1-10 1.413 -> 1.719 but costs range (1.422 -> 1.372), where the taker split is information; gated
    # at 1.5 % cascade 1.695, range 1.421, steady 1.755 (docs/benchmarks.md, issue 17 item 4, session 10)
    side_gap_forced_share: float = 0.015
    min_delta_rel: float = 2e-5  # ignore |ΔOI| below this share of OI ...
    min_delta_usd: float = 25000.0  # ... or below this many USD
    cap_rel: float = 0.03  # cap one interval's |ΔOI| at this share of OI
    # ... times √(gap ÷ this) when an OI sample comes more than this many seconds after the venue's last (0 = never):
    # a back-fill's 5-minute history carries 30 live samples' moves, and at 3 % the cap cut a tenth to a quarter of
    # its steps on the tiny-OI demo (back-filled range 1-10: model ÷ truth USD 0.561 -> 1.059). 10 s, the slowest live
    # cadence (Binance's REST poll), chosen over 30 s on seeds 1-10 and confirmed on 11-30 (docs/benchmarks.md, s16)
    cap_gap_ref_s: float = 10.0
    # An OI rise beyond that cap is kept up to the notional the venue traded in the interval (every new contract is
    # traded; a jump with no trades behind it stays capped). Off by default: it lifts the market that opens empty
    # (forecast 1.115 -> 1.219 x the baseline, seeds 1-10: its whales and its growth from a tiny OI are no longer
    # cut to 3 %) but costs the steady market (1.745 -> 1.649) — docs/benchmarks.md, issue 17 item 4, session 10
    cap_open_volume: bool = False
    # ... but always while the asset's open interest is filling: its OI summed over venues (USD) at least this × what
    # it was forecast_vol_window_minutes ago (core/model/filling.py; 0 = never). A market that holds its positions
    # moves tens of percent in an hour (the demo's small OI at most 3.1x, seeds 1-10); one filling from nothing (a new
    # listing, the demo's market that opens empty: peaks 130-420x) multiplies, and there the 3 % cap cut its growth
    # and every whale. Seeds 1-10: empty 1.115 -> 1.213, steady, trend, range, cascade unchanged at 3 or 4 (at 2:
    # trend and range -0.007); hold-outs empty 11-20 1.425, 21-30 1.711, 31-40 1.812, the rest unchanged —
    # docs/benchmarks.md, issue 17 item 4, session 11
    cap_open_fill_ratio: float = 4.0
    half_life_hours: float = 48.0  # decay of unconsumed levels
    reconcile_buckets: int = 3  # real liquidations cancel estimated levels within ±this many buckets
    heatmap_sigma_buckets: float = 1.5  # Synthetic Heatmap smoothing, in screen rows (× the view's zoom in buckets)
    hybrid_real_hours: float = 4.0  # real liquidations shown in Hybrid mode
    hybrid_half_life_hours: float = 2.0  # ... fading with this half-life (0 = no fade)
    raw_half_life_hours: float = 0.0  # Raw mode recency decay; 0 = off (cells are exact USD sums)
    heatmap_clip_pct: float = 99.0  # Synthetic Heatmap: cells at/above this percentile read as full
    heatmap_decades: float = 3.0  # ... and this many orders of magnitude below it fade to ~0.1
    # What Synthetic, Synthetic Heatmap and Hybrid draw (core/grids/reach.py): each level's USD at risk × the chance
    # price reaches it within the forecast horizon, to this power. 0 = plain at-risk lines (0.86x the distance
    # baseline on seeds 1-10); 1 = expected liquidations (1.53x, but 1.23x sharper than the true positions);
    # 0.7: 1.51x, sharpness 1.08x the oracle's, far clusters still drawn (dimmer) — docs/benchmarks.md
    synthetic_reach_alpha: float = 0.7
    range_pct: float = 15.0  # price range around the last price that the model tracks
    typical_position_usd: float = 20000.0  # position size used to pick the margin tier (MMR, cum) of a level
    track_pct: float = 35.0  # the model keeps levels within ± this % of price (a 5x level sits ~20 % away)
    max_buckets: int = 8192  # ... but never more buckets than this per asset
    entry_mode: str = "profile"  # profile = entries spread over traded prices; highlow = longs at low, shorts at high
    # The levels the map draws: 0 = each tier a thin line at its exact liq price (as sharp as the demo's true
    # positions: top-10 % share 0.48 vs 0.52 on seeds 1-10); 1 = each tier spread evenly in price over the band
    # of leverages between it and its neighbours (geometric midpoints), a wash (0.22) — docs/model.md §3 step 4
    leverage_spread: float = 0.0
    # The forecast weighs each tier over this share of its leverage band (traders use 7x, 12x, 20x..., not only
    # the tier values; 1 ranks the next hour's liquidations better than lines: 1.658x vs 1.587x the baseline on
    # seeds 1-10). Wider than leverage_spread: a second state of the model, fed the same events (docs/model.md §5)
    forecast_leverage_spread: float = 1.0
    # Cold-start prior (docs/model.md §3 step 10): at each venue's first OI sample, this share of the OI already
    # open is placed around the price over the leverage tiers, half long, half short, labelled "prior" in
    # provenance. 0 = off: on the demo market it lowered forecast_skill (benchmarks/bench_forecast.py).
    prior_weight: float = 0.0
    prior_entry_sigma_pct: float = 0.0  # prior entries spread log-normally around the price with this σ (%)
    prior_half_life_hours: float = 6.0  # the prior fades with this half-life (its own; 0 = no fade)
    # Open-interest prior (docs/model.md §3 step 11, core/prior.py): each venue's positions are held at this
    # multiple of its public OI (USD), the gap placed at entries from the price history seen (time at price,
    # older minutes weighted 2^(-age/prior_half_life_hours), the unseen past log-normal around the first price
    # with prior_entry_sigma_pct) that price has not liquidated since. 0 = off.
    prior_oi_fill: float = 0.0
    # ... topped up only in a forced phase: while the venues' published liquidations are at least this share of the
    # traded USD over forecast_vol_window_minutes (core/model/regime.py; 0 = always)
    prior_fill_forced_share: float = 0.0
    # The same prior for the forecast's own state (next-hour ranking); 0 = off. Always on it cost the ranging market
    # (range seeds 1-10: 1.421 -> 1.247 at 0.5), so only in a forced phase (forecast_prior_forced_share, 2 % of the
    # traded USD): when price runs through leveraged positions en masse, the positions opened before the model
    # watched come within reach — in a fall the old longs below price that it never saw open (docs/benchmarks.md,
    # issue 17 item 4, sessions 11-12). Session 11 turned it off again: sized by the OI alone, at real-sized open
    # interest (the product's demo, any live venue) it made NEXT 1H print $270-420M clusters beside a map of a few $M a
    # row. Since session 12 it says only *where* (forecast_levels reports the map's dollars within ±5 % of price,
    # docs/model.md §3 step 11) and it is bounded by what the model saw (forecast_prior_held_cap below).
    forecast_prior_oi_fill: float = 0.5
    forecast_prior_forced_share: float = 0.02
    # A state's OI prior tops the state up to at most this multiple of the USD its own OI steps placed for the venue
    # (0 = no bound): most of a real venue's OI is low-leverage and held for days, far from price (the demo's resting
    # cohorts stand for it), which is why the dollar scale (dollar_scale_cap, 3) credits the unseen at most 3x the
    # held; unbounded, the prior at real size placed ~100x the flow near price and the forecast ranked by the prior
    # alone (steady seeds 1-10 at real size 1.631 -> 1.276x the baseline). 3, the scale's own bound, chosen on
    # seeds 1-10 over 2 (docs/benchmarks.md, "The forecast's dollars at real-sized open interest").
    # prior_held_cap bounds the map's prior (off), forecast_prior_held_cap the forecast's.
    prior_held_cap: float = 0.0
    forecast_prior_held_cap: float = 3.0
    # The resting layer (docs/model.md §3 step 13, core/model/resting.py): this share of each venue's public OI (USD)
    # is taken to be low-leverage positions held for days (an exponential hold of resting_hold_hours), entered along
    # the price path and the unseen past before it, at resting_leverage_tiers; those price has not liquidated since
    # (and what it did, reopened at today's price) are added to the forecast's levels (NEXT 1H, its ranking) in real
    # USD. 0 = off. 0.65 over 0.5 and 0.8, 1.5-3x over (2x, 3x) and (2x, 3x, 4x), at real size on seeds 1-8 of all
    # five conditions; confirmed on 17-22 (docs/benchmarks.md, session 16)
    resting_share: float = 0.65
    resting_hold_hours: float = 24.0
    resting_leverage_tiers: tuple[float, ...] = (1.5, 2.0, 2.5, 3.0)
    resting_leverage_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    # Dollars that mean dollars (docs/model.md §3 step 12, core/model/scale.py): every USD the model reports is
    # multiplied by public OI ÷ the OI it holds (one number per asset and venue set, so rankings are unchanged),
    # clipped to [1, this]. 1 = off. 3 chosen on steady seeds 1-10 (model ÷ truth USD at risk ±5 %: 0.31 unscaled,
    # 0.94 at 3, 1.17 at 4, 1.37 uncapped: the unseen positions are older than the held ones, fewer of them near
    # price); confirmed on 11-30 and the other market conditions in forecast_dollars (docs/benchmarks.md).
    dollar_scale_cap: float = 3.0
    # Next-hour forecast (liqmap/core/forecast.py): levels weighted by the chance price reaches them within
    # the horizon, from the realized volatility of 1-minute returns and a fat-tailed (Student-t, 3 dof) move.
    forecast_horizon_hours: float = 1.0
    forecast_vol_window_minutes: int = 60  # realized volatility over this many minutes of trades ...
    forecast_default_vol_hour_pct: float = 1.0  # ... or this (% per hour) until ten minutes have been seen
    forecast_tails: str = "t3"  # t3 = fat tails (Student-t, 3 dof); gauss = thin tails
    # The walk carries this share of the trend seen over the volatility window (core/forecast.py: a level ahead
    # of a run is nearer, one behind it further), shrunk by its noise: 1 - shrink/t² of it is kept, t = drift ÷
    # its standard error, none when t² <= shrink (a ranging market's wander). 0 = the driftless walk.
    forecast_drift_weight: float = 0.5
    forecast_drift_shrink: float = 4.0
    # ... measured over this many hours of closes once two are seen (a live start's back-fill gives 6 h, the demo's
    # pre-roll 2¼ h) instead of the volatility window's hour: over hours a run stands out of the noise and a wander
    # does not. 0 (or no longer than the window) = the window's hour. 6 chosen on back-filled seeds 1-10 over 3 (the
    # trend 1.386 -> 1.859 / 1.478x the baseline, nothing lost), confirmed on 11-20 and untouched 21-30 (trend
    # +0.52 / +0.71; cascade and empty -0.04 to -0.06 on one or two sets); cold starts unchanged (docs/benchmarks.md,
    # "Session 14: the drift over hours").
    forecast_drift_hours: float = 6.0
    # The walk's spread over the hour: σ of 1-minute returns × √(their variance ratio at this many minutes,
    # core/forecast.py RealizedVol.variance_ratio), shrunk toward 1 by its noise (1 - shrink/z² of the gap kept).
    # 0 = off (the 1-minute σ as it is). Opt-in: on the demo's range market (seeds 1-10, the condition it was
    # meant for) the ratio is above 1, not below, and the ranking barely moves (docs/benchmarks.md, session 10).
    forecast_vr_minutes: int = 0
    forecast_vr_shrink: float = 4.0
    # NEXT 1H prints each cluster's chance of reach through the calibration map fitted on the demo (seeds 1-10;
    # liqmap/core/calibration.py): the walk's raw chance missed what happened by up to 23 points per decile
    forecast_calibrated: bool = True


@dataclass(frozen=True)
class EngineParams:
    columns: int = 240  # time columns kept per view
    workers: int = 2
    fast_hz: float = 1.0  # refresh of the asset on screen at 1m
    max_queue: int = 16  # background jobs (one per asset) waiting at most; beyond that work is shed
    # Ring capacity ceilings per (asset, venue); the engine derives smaller ones from the windows
    # (liqmap.core.engine.capacity) and uses the smaller of the two.
    ring_capacity_liq: int = 16384
    ring_capacity_trade: int = 262144
    ring_capacity_oi: int = 16384
    ring_capacity_book: int = 4096


@dataclass(frozen=True)
class StoreParams:
    flush_seconds: float = 5.0  # history is written this often (a kill -9 loses at most this much)
    retention_days: float = 7.0  # history partitions older than this are deleted
    compact_after_seconds: float = 600.0  # small flush files older than this are merged per UTC day
    oi_every_seconds: float = 60.0  # open-interest history keeps one sample per venue per this many seconds
    # Rows kept in memory while the disk refuses them (full, read-only); past this the oldest are dropped
    # and counted in the status line (~100 bytes a row: the default bounds it to ~200 MB).
    max_pending_rows: int = 2000000


@dataclass(frozen=True)
class GridParams:
    """The grid knobs (from the ``model`` section); seconds here, hours in the settings."""

    raw_half_life_s: float = ModelParams.raw_half_life_hours * HOUR  # Raw recency decay; 0 = off, exact sums
    hybrid_real_s: float = ModelParams.hybrid_real_hours * HOUR  # Hybrid shows real liquidations this recent ...
    hybrid_half_life_s: float = ModelParams.hybrid_half_life_hours * HOUR  # ... fading with this half-life
    heatmap_sigma_buckets: float = ModelParams.heatmap_sigma_buckets
    heatmap_clip_pct: float = ModelParams.heatmap_clip_pct
    heatmap_decades: float = ModelParams.heatmap_decades
    synthetic_reach_alpha: float = ModelParams.synthetic_reach_alpha

    @classmethod
    def from_model(cls, m: ModelParams) -> "GridParams":
        return cls(raw_half_life_s=m.raw_half_life_hours * HOUR, hybrid_real_s=m.hybrid_real_hours * HOUR,
                   hybrid_half_life_s=m.hybrid_half_life_hours * HOUR, heatmap_sigma_buckets=m.heatmap_sigma_buckets,
                   heatmap_clip_pct=m.heatmap_clip_pct, heatmap_decades=m.heatmap_decades,
                   synthetic_reach_alpha=m.synthetic_reach_alpha)


@dataclass(frozen=True)
class CoreParams:
    """Everything the core is parameterized by: built by ``config.core_params``, passed to the engine."""

    buckets: BucketParams = field(default_factory=BucketParams)
    model: ModelParams = field(default_factory=ModelParams)
    engine: EngineParams = field(default_factory=EngineParams)
    store: StoreParams = field(default_factory=StoreParams)
    reports: ReportParams = field(default_factory=report_params)
    data_dir: str | None = None  # where the store writes (None: ``default_data_dir()``)

    @property
    def grid(self) -> GridParams:
        return GridParams.from_model(self.model)

    def model_dict(self) -> dict[str, Any]:
        """The model section as the plain dict ``SyntheticModel(params=...)`` reads (lists as lists)."""
        return section_defaults(self.model)


# ------------------------------------------------------------------ building them


def section_defaults(obj_or_cls) -> dict[str, Any]:
    """A parameter class's (or object's) values as a settings section: tuples become lists (the settings'
    list type), so ``config.DEFAULTS`` can be built from the classes above."""
    obj = obj_or_cls() if isinstance(obj_or_cls, type) else obj_or_cls
    return {f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
            for f in dataclasses.fields(obj)}


def build(cls, section: Mapping[str, Any] | None):
    """``cls`` from a settings section: its keys over the defaults. A key the class does not have is refused
    (``ValueError``): a setting added to ``config`` but not here would otherwise never reach the core."""
    if not section:
        return cls()
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in section if k not in names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no parameter {', '.join(unknown)} (add it to liqmap/core/params.py)")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in section.items()})


def core_params(cfg: "CoreParams | Mapping[str, Any] | None") -> CoreParams:
    """``cfg`` as :class:`CoreParams`: returned as is when it already is one, else built from a (possibly
    partial) settings mapping over the defaults."""
    if isinstance(cfg, CoreParams):
        return cfg
    cfg = cfg or {}
    return CoreParams(
        buckets=build(BucketParams, cfg.get("buckets")),
        model=build(ModelParams, cfg.get("model")),
        engine=build(EngineParams, cfg.get("engine")),
        store=build(StoreParams, cfg.get("store")),
        reports=report_params(cfg),
        data_dir=cfg.get("_data_dir"),
    )


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/liqmap (~/.local/share/liqmap): where history and snapshots go unless told otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "liqmap"


#: The model section as a plain dict (what ``SyntheticModel`` merges its ``params`` over).
MODEL_DEFAULTS: Mapping[str, Any] = MappingProxyType(section_defaults(ModelParams))
