"""Defaults of the order-flow reports (docs/detectors.md), and the typed parameters built from them.

``liqmap.config.DEFAULTS["reports"]`` is this table (the settings schema takes it from here, so the defaults
live in one place and the core never imports the config). USD floors are per asset: ``*_by_asset`` tables
are free-form (asset name → USD) and override ``min_usd`` for the assets they name.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

REPORT_DEFAULTS: dict[str, dict[str, Any]] = {
    "walls": {
        "k_median": 5.0,  # a bucket is a wall when its size ≥ k × median of nearby buckets ...
        "range_pct": 3.0,  # ... the buckets within ±this % of mid (same side)
        "min_usd": 50000.0,  # ... and its USD size ≥ this floor (Coinglass: others $50K)
        "min_usd_by_asset": {"BTC": 1000000.0, "ETH": 500000.0},  # Coinglass floors
        "min_age_s": 15.0,  # ... and it has existed this long
        "min_seen_share": 0.8,  # ... seen in at least this share of snapshots since first sighting
        "per_venue": True,  # also find walls that stand out in one venue's own book
        "venue_share": 0.1,  # a venue is listed for a wall when it holds ≥ this share of the USD
        "pull_drop": 0.7,  # a wall that shrinks by ≥ this share of its peak has ended ...
        "traded_share": 0.3,  # ... pulled if < this share of the fall traded there, else consumed
        "keep_ended_s": 300.0,  # pulled/consumed walls stay listed this long
        "max_per_side": 10,  # active walls listed per side (largest first)
    },
    "asymmetry": {
        "lambda_bp": 35.0,  # distance weight e^(−d/λ), d in bp from mid
        "ranges_pct": [0.5, 1.0, 2.0],  # plain (unweighted) imbalance within these ranges
        "dominance": 0.1,  # |weighted imbalance| above this names a dominant side
    },
    "sweeps": {
        "gap_ms": 100.0,  # same-side taker trades closer than this form one run
        "close_grace_ms": 250.0,  # a run is closed this long after its gap elapsed (feed latency)
        "min_ticks": 3,  # a run is a sweep when it moved ≥ max(min_ticks ticks, min_bp) ...
        "min_bp": 3.0,
        "min_levels": 3,  # ... or traded at ≥ this many distinct price levels ...
        "k_sigma": 3.0,  # ... and its USD ≥ μ + kσ of 1-second notional (per venue) ...
        "stats_window_s": 1800.0,  # ... over this window
        "min_usd": 100000.0,  # USD floor, always applied
        "min_usd_by_asset": {"BTC": 500000.0, "ETH": 250000.0},
        "warmup_s": 120.0,  # until this much history exists the floor × warmup_factor applies
        "warmup_factor": 2.0,
        "cluster_window_s": 60.0,  # repeats on the same side within this window ...
        "cluster_buckets": 2,  # ... and within ± this many buckets are clustered (count × total)
        "cross_venue_ms": 200.0,  # same side on ≥ 2 venues within this → cross-venue
        "liq_pad_s": 1.0,  # liquidations this close to a sweep (same venue, forced side) are inside it
        "keep_s": 900.0,  # sweeps kept (convergence looks back 15 min)
        "max_kept": 500,
    },
    "absorptions": {
        "window_s": 15.0,  # aggressive volume at one level within this window ...
        "k_sigma": 3.0,  # ... ≥ μ + kσ of per-level window volume over stats_window_s ...
        "stats_window_s": 1800.0,
        "min_usd": 100000.0,  # ... and ≥ this USD floor
        "min_usd_by_asset": {"BTC": 1000000.0, "ETH": 500000.0},
        "warmup_samples": 50,  # per-level samples needed before μ + kσ is trusted
        "warmup_factor": 2.0,  # floor × this until then
        "max_ticks": 2,  # price may go at most max(max_ticks ticks, max_bp) beyond the level
        "max_bp": 2.0,
        "refill_ratio": 1.5,  # aggressive volume ÷ peak visible size at the level (refill evidence)
        "horizon_s": 60.0,  # outcome (held / broke) decided this long after the last aggression
        "keep_s": 900.0,
        "max_kept": 200,
    },
    "convergence": {
        "buckets": 2,  # components within ± this many buckets of one level
        "window_s": 900.0,  # sweeps and absorptions count this long
        "min_components": 3,  # of wall, sweep, absorption, synthetic cluster
        "synthetic_pct": 90.0,  # a synthetic cluster is a bucket ≥ this percentile of model density
        "weights": [1.0, 1.0, 1.0, 1.0],  # score weights: wall, sweep, absorption, synthetic
        "history_hours": 24.0,  # a wall/sweep/absorption's strength: its USD's percentile over this window
        "history_min": 20,  # ... once this many of its kind were seen (before: ÷ the largest present now)
    },
    "verdict": {
        "range_pct": 3.0,  # magnets (synthetic clusters and walls) looked for within ± this %
    },
}

SECTIONS: tuple[str, ...] = tuple(REPORT_DEFAULTS)


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(copy.deepcopy(dict(d)))


@dataclass(frozen=True)
class ReportParams:
    """The ``reports`` settings, one read-only section per report, every key filled in from the defaults."""

    walls: Mapping[str, Any] = field(default_factory=lambda: _frozen(REPORT_DEFAULTS["walls"]))
    asymmetry: Mapping[str, Any] = field(default_factory=lambda: _frozen(REPORT_DEFAULTS["asymmetry"]))
    sweeps: Mapping[str, Any] = field(default_factory=lambda: _frozen(REPORT_DEFAULTS["sweeps"]))
    absorptions: Mapping[str, Any] = field(default_factory=lambda: _frozen(REPORT_DEFAULTS["absorptions"]))
    convergence: Mapping[str, Any] = field(default_factory=lambda: _frozen(REPORT_DEFAULTS["convergence"]))
    verdict: Mapping[str, Any] = field(default_factory=lambda: _frozen(REPORT_DEFAULTS["verdict"]))

    def section(self, name: str) -> Mapping[str, Any]:
        return getattr(self, name)


def report_params(cfg: "ReportParams | Mapping[str, Any] | None" = None) -> ReportParams:
    """``cfg`` as :class:`ReportParams`: as is when it already is one; else from the whole settings, a
    ``CoreParams`` (its ``reports``), or just their ``reports`` table, each section over the defaults."""
    if isinstance(cfg, ReportParams):
        return cfg
    inner = getattr(cfg, "reports", None)
    if isinstance(inner, ReportParams):
        return inner
    if not cfg:
        return ReportParams()
    rep = cfg["reports"] if "reports" in cfg else cfg
    return ReportParams(**{sec: _frozen({**REPORT_DEFAULTS[sec], **(rep.get(sec) or {})}) for sec in SECTIONS})
