"""The demo's resting open interest: cohorts that bring each asset's open interest to its real size while its
liquidations stay at their real rate (issue 16 item 3).

The simulator's active traders (``market.py``) are sized for speed: ~$80M of open interest on BTC and ~$1M on
PENDLE, where these venues together hold tens of $bn and ~$41M. Their liquidations, though, already come at a
real rate (seed 0, one simulated hour: BTC $12M, SOL $1.8M, PENDLE $0.1M an hour; real BTC: tens of $M an hour,
more in cascades). Real open interest is ~100× its hourly liquidations because most of it is low-leverage (or
cross-margined with collateral to spare) and held for days; the simulator's is ~15 % an hour. Scaling every
position (the ``demoscale`` attempt) made BTC liquidate ~$700M an hour and flooded the alerts.

So the missing open interest is added as what it is in a real market: *resting cohorts*. Each resting position
stands for many traders with the same entry; it has low leverage (lognormal around ``resting_leverage``, so its
liquidation price is tens of % away), no stop or take-profit, and is held for days (exponential, mean
``resting_hold_hours``). They exist from the start, in pairs — a long and a short of the same lots on the same
venue, each other's counterparty — and when one's holding time is over it hands its position to the next holder
at today's price (a block off the tape: same venue, side and lots, a fresh leverage and holding time). So the
venues' open interest (the heavier side) carries a constant real-sized level and moves by exactly the active
traders' steps: the model is fed the same opens and closes as without them, but judges them against real-sized OI
(its floor ``model.min_delta_rel`` and cap ``cap_rel`` are shares of OI; on the tiny OI of the active traders
alone the cap cut every larger step, and the model held 0.2-0.45x of the true USD at risk near price on small
assets), and the dollar scale divides real-sized OI. Only linear contracts hold them: an inverse contract's open
interest is USD, which the wire and the model read in coins, so a real-sized level there would move with price.
A big enough move still liquidates some of them, at their true prices, through the same cascade as everyone else.
They are drawn from their own random stream, so the active traders and the price path are those of the simulator
without them (``tests/test_demo_resting.py``).

Target open interest per asset (one side, all demo venues), a power law in the asset's activity rank through two
anchors: BTC ``resting_oi_btc_usd`` = $20bn (the low end of "tens of $bn" of BTC perpetual open interest on
Binance, Bybit, OKX, Hyperliquid and Deribit together; Binance alone lists ~$10bn) and PENDLE (rank 64)
``resting_oi_small_usd`` = $41M (the project's measurement, ``notes/s6.md``). Between them OI ∝ (rank + 1)^−1.48:
ETH ≈ $7bn, SOL ≈ $3.9bn, PEPE ≈ $120M. ``resting_oi_btc_usd = 0`` turns the cohorts off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SMALL_RANK = 64  # PENDLE, the 65th asset: the small anchor's rank
LEV_SIGMA = 0.25  # log-sigma of the cohorts' leverage ...
LEV_MIN = 1.5  # at least this (at 1x a long has no liquidation price) ...
LEV_MAX = 4.0  # ... at most this (liquidation ≥ ~24 % away: a resting cohort is not what a normal hour liquidates)
SIZE_SIGMA = 0.6  # log-sigma of a cohort's size


def target_oi(rank: int, cfg: dict) -> float:
    """One-sided open interest (USD, all demo venues) the resting cohorts of the asset ranked ``rank`` hold."""
    big, small = float(cfg.get("resting_oi_btc_usd", 0.0)), float(cfg.get("resting_oi_small_usd", 0.0))
    if big <= 0 or small <= 0:
        return 0.0
    slope = math.log(big / small) / math.log(SMALL_RANK + 1.0)
    return big * (rank + 1.0) ** -slope


@dataclass(frozen=True)
class Resting:
    """One asset's resting cohorts: ``rate × hold_s`` of them in steady state (half long, half short), held
    ``hold_s`` on average (then rolled to the next holder), of mean ``usd``."""

    rate: float
    hold_s: float
    usd: float
    leverage: float

    @classmethod
    def for_asset(cls, rank: int, cfg: dict, flow_share: float = 1.0) -> "Resting":
        """The cohorts for the asset ranked ``rank`` (``flow_share``: a shadow venue's part of them). Steady state
        holds ``resting_positions`` cohorts, half long and half short, so each is 2 × target / count."""
        oi = target_oi(rank, cfg)
        n = float(cfg.get("resting_positions", 0))
        hold_s = float(cfg.get("resting_hold_hours", 72.0)) * 3600.0
        if oi <= 0 or n <= 0:
            return cls(0.0, hold_s, 0.0, 1.0)
        return cls(n / hold_s * flow_share, hold_s, 2.0 * oi / n, float(cfg.get("resting_leverage", 2.5)))

    def draw(self, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(leverage, USD) of ``k`` new cohorts; the size's lognormal has mean ``usd``."""
        lev = np.round(self.leverage * np.exp(LEV_SIGMA * rng.standard_normal(k)), 1)
        usd = self.usd * np.exp(SIZE_SIGMA * rng.standard_normal(k) - SIZE_SIGMA ** 2 / 2)
        return np.clip(lev, LEV_MIN, LEV_MAX), usd
