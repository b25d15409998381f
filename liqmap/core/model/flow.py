"""Per-venue OI intervals (docs/model.md §3 steps 1–3): traded flow since the anchor, the accepted OI step, its
taker split and its entry prices.

For each venue the model follows the open-interest series; every accepted OI step between two samples of that
venue is one *interval*. ``ΔN = ΔOI × VWAP`` of the venue's trades since the anchor; steps under the floor are
not applied yet (the anchor stays, so slow steady growth is not lost and noise cancels); ``|ΔN|`` is capped;
the taker flow ``φ = B/(B+S)`` splits it between longs and shorts. This module decides *how much* and *where
from*; ``placement.py`` decides where it would be liquidated, and the model's state holds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import buckets
from .sources import NV


@dataclass(slots=True)
class IntervalFlow:
    """One venue's traded flow since its OI anchor (the interval being built): running sums of its volume, price ×
    volume and taker buy/sell USD (added a batch at a time), and the trades themselves for the entry profile."""

    prices: list = field(default_factory=list)
    usds: list = field(default_factory=list)
    n: int = 0
    vol: float = 0.0  # traded USD
    pv: float = 0.0  # Σ price × USD
    buy: float = 0.0  # taker buy USD
    sell: float = 0.0  # taker sell USD
    # the price range of trades already collapsed (by ``compact``)
    low0: float = math.inf
    high0: float = -math.inf

    def add(self, price: np.ndarray, usd: np.ndarray, vol: float, pv: float, buy: float, sell: float) -> None:
        """A batch's trades of this venue and their sums. The sums run batch by batch (the interval's VWAP and
        taker split every OI sample without summing its trades again); the arrays are joined only when an open
        reads its entry profile."""
        self.vol += vol
        self.pv += pv
        self.buy += buy
        self.sell += sell
        if len(price) == 0:
            return
        self.prices.append(price)
        self.usds.append(usd)
        self.n += len(price)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.prices:
            return np.empty(0), np.empty(0)
        if len(self.prices) > 1:
            self.prices = [np.concatenate(self.prices)]
            self.usds = [np.concatenate(self.usds)]
        return self.prices[0], self.usds[0]

    def taker(self) -> tuple[float, float]:
        """(taker buy USD, taker sell USD) of the whole interval."""
        return self.buy, self.sell

    def summary(self) -> tuple[float, float, float, float]:
        """(taker buy USD, taker sell USD, low, high) of the whole interval (the price range only where it is
        needed: high/low entries and compaction)."""
        p, _ = self.arrays()
        if len(p) == 0:
            return self.buy, self.sell, self.low0, self.high0
        return self.buy, self.sell, min(self.low0, float(p.min())), max(self.high0, float(p.max()))

    def compact(self, step: float) -> None:
        """Collapse to one pseudo-trade per bucket (bucket VWAP, summed USD) so a long interval stays small (the
        running sums are kept as they are)."""
        _, _, self.low0, self.high0 = self.summary()
        p, u = self.arrays()
        if len(p) == 0:
            return
        b = buckets.index(p, step)
        keys, inv = np.unique(b, return_inverse=True)
        usd = np.bincount(inv, weights=u, minlength=len(keys))
        pv = np.bincount(inv, weights=p * u, minlength=len(keys))
        vw = np.where(usd > 0, pv / np.where(usd > 0, usd, 1.0), (keys + 0.5) * step)
        self.prices, self.usds, self.n = [vw], [usd], len(keys)


def entry_profile(prices: np.ndarray, usds: np.ndarray, fallback: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-bucket VWAP entries weighted by traded notional (``fallback`` alone when nothing traded)."""
    if len(prices) == 0 or usds.sum() <= 0:
        return np.array([fallback]), np.ones(1)
    b = buckets.index(prices, step)
    b0 = int(b.min())
    span = int(b.max()) - b0 + 1
    if span <= 4 * len(b) + 64:
        # an interval's trades span few buckets: sum per bucket over the offset range and keep the traded ones
        # (the same per-bucket sums in the same order as per unique bucket, without the sort; an untraded
        # bucket sums to exactly 0 and is dropped below with any other that is not positive)
        off = b - b0
        usd = np.bincount(off, weights=usds, minlength=span)
        pv = np.bincount(off, weights=prices * usds, minlength=span)
    else:
        keys, inv = np.unique(b, return_inverse=True)
        usd = np.bincount(inv, weights=usds, minlength=len(keys))
        pv = np.bincount(inv, weights=prices * usds, minlength=len(keys))
    ok = usd > 0
    usd = usd[ok]
    return pv[ok] / usd, usd / usd.sum()


_FEW = 24  # an interval with at most this many trades gets its entry profile in Python (cheaper than numpy's calls)


def entry_profile_few(prices: list, usds: list, fallback: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`entry_profile` of a few trades given as plain floats: the same per-bucket sums in the same order
    (bincount adds each bucket's trades in array order from 0.0), the same divisions, the same weight sum."""
    acc: dict[int, list] = {}
    for p, u in zip(prices, usds):
        b = buckets.index_of(p, step)
        a = acc.get(b)
        if a is None:
            acc[b] = [u, p * u]
        else:
            a[0] += u
            a[1] += p * u
    keys = sorted(b for b, a in acc.items() if a[0] > 0)
    if not keys:
        return np.array([fallback]), np.ones(1)
    usd = np.array([acc[b][0] for b in keys])
    return np.array([acc[b][1] for b in keys]) / usd, usd / usd.sum()


def net_long_share(buy: float, sell: float, d_n: float) -> float:
    """The long share of an OI step read from the taker imbalance in USD (opt-in, docs/model.md §3 step 2).

    An aggressive open of a long and a close of a short are taker buys, an open of a short and a close of a long
    taker sells; the rest of the volume (turnover, market makers' and hedgers' flow) opens nothing and nets out. So
    the longs minus the shorts a rise opened (on a fall: the shorts minus the longs it closed) are about ``buy −
    sell``, bounded by the step: the long share is ``½ + ½·clip((buy − sell)/|ΔN|, −1, 1)``. The ratio
    ``buy/(buy + sell)`` spreads the same imbalance over every traded dollar, most of which opened nothing, and so
    splits nearly evenly a step the imbalance made one-sided. An empty step is split evenly."""
    if not d_n:
        return 0.5
    x = (buy - sell) / abs(d_n)
    return 0.5 + 0.5 * max(-1.0, min(1.0, x))


@dataclass
class OIStep:
    """An accepted OI step of one venue: ``d_n`` USD (> 0 opens, < 0 closes), ``phi_a`` the long share (the
    interval's price range, for high/low entries, is read from its flow when needed)."""

    d_n: float
    phi_a: float


class VenueFlows:
    """Each venue's OI anchor and the flow traded since it."""

    COMPACT_AT = 50_000  # trades kept per interval before they are collapsed to one per bucket

    def __init__(self) -> None:
        # plain floats (NaN: no sample yet), read a few times per batch and per OI sample
        self.anchor_oi = [math.nan] * NV
        self.anchor_usd = [math.nan] * NV  # the anchor's USD: an inverse venue's steps are measured in it
        self.anchor_ts = [math.nan] * NV
        self.sample_ts = [math.nan] * NV  # each venue's last OI sample, accepted or not
        self.flows = [IntervalFlow() for _ in range(NV)]

    def add_trades(self, tr: np.ndarray, step: float) -> None:
        """Trades of one batch into their venue's interval (venues without an anchor yet: not kept)."""
        venue = tr["venue"]
        count = np.bincount(venue, minlength=NV).tolist()
        anchored = [v for v in range(NV) if count[v] and math.isfinite(self.anchor_oi[v])]
        if not anchored:
            return
        price, usd, side = tr["price"], tr["usd"], tr["side"]
        # per venue: traded USD split by taker side (sell, none, buy) and Σ price × USD, two bincounts a batch
        by_side = np.bincount(venue * 3 + (np.sign(side) + 1), weights=usd, minlength=3 * NV).tolist()
        pv = np.bincount(venue, weights=price * usd, minlength=NV).tolist()
        if max(count) == len(venue):  # one venue
            price, usd = price.astype(np.float64), usd.astype(np.float64)
        else:
            # the batch grouped by venue (stable: each venue's trades keep their order), so each venue's
            # trades are one slice of two arrays instead of a mask and two copies per venue
            order = np.argsort(venue, kind="stable")
            price, usd = price[order], usd[order]
        for v in anchored:
            f = self.flows[v]
            start = sum(count[:v])
            run = slice(start, start + count[v])
            sell, none, buy = by_side[3 * v:3 * v + 3]
            f.add(price[run], usd[run], sell + none + buy, pv[v], buy, sell)
            if f.n > self.COMPACT_AT:
                f.compact(step)

    def sample_gap(self, v: int, ts: float) -> float:
        """Seconds since venue ``v``'s previous OI sample (0 for its first), and ``ts`` kept as the last."""
        last = self.sample_ts[v]
        self.sample_ts[v] = ts
        return max(ts - last, 0.0) if math.isfinite(last) else 0.0

    def first_sample(self, v: int, ts: float, oi: float, usd: float = math.nan) -> bool:
        """Anchor venue ``v`` at its first OI sample (True: nothing to step from yet)."""
        if math.isfinite(self.anchor_oi[v]):
            return False
        self.reanchor(v, oi, ts, usd)
        return True

    def reanchor(self, v: int, oi: float, ts: float, usd: float = math.nan) -> None:
        self.anchor_oi[v], self.anchor_usd[v], self.anchor_ts[v] = oi, usd, ts
        self.flows[v] = IntervalFlow()

    def vwap(self, v: int, mark: float, last_price: float | None) -> float | None:
        """The interval's VWAP; without trades the mark, else the last traded price; None: cannot price yet."""
        f = self.flows[v]
        if f.vol > 0:
            return f.pv / f.vol
        if mark > 0:
            return mark
        if last_price:
            return last_price
        return None

    def accept(self, v: int, oi: float, vwap: float, params: dict, alpha: float, stats: dict,
               usd: float = math.nan, relief=None, net_weight: float = 0.0, gap_s: float = 0.0) -> OIStep | None:
        """The step from venue ``v``'s anchor to ``oi``, or None while it is below the floor (anchor kept).

        ``usd`` (an inverse venue's OI in USD, finite at the anchor too): the step is the change in USD. An inverse
        contract is a fixed number of dollars, so its OI in coins moves with price while nobody trades: measured in
        coins, a 1 % rise read as 1 % of the venue's OI closing (Deribit's BTC perpetual: ~$10M a 1 % move).

        ``relief`` (a callable, asked only for a rise past the cap): True keeps that rise up to the traded notional,
        as ``cap_open_volume`` does always (the model passes whether the asset's OI is filling, filling.py).

        ``gap_s``: seconds since the venue's previous OI sample; past ``cap_gap_ref_s`` the cap grows with
        √(gap ÷ ``cap_gap_ref_s``) (docs/model.md §3 step 1)."""
        a_usd = self.anchor_usd[v]
        if math.isfinite(usd) and math.isfinite(a_usd):
            d_n, oi_usd = usd - a_usd, usd
        else:
            d_n = (oi - self.anchor_oi[v]) * vwap
            oi_usd = oi * vwap
        cap = float(params["cap_rel"]) * oi_usd
        ref = float(params.get("cap_gap_ref_s", 0.0))
        if ref > 0 and gap_s > ref:
            # a sample this far from the last (a back-fill's 5-minute history) carries that many live samples' moves:
            # the cap grows as a walk's range does, with the square root of the gap
            cap *= math.sqrt(gap_s / ref)
        # The USD floor never exceeds half the cap: on a venue holding under min_delta_usd / (cap_rel / 2) of OI
        # ($1.7M at the defaults: small coins, a venue's thin book) a step big enough to pass $25k would be cut
        # to the cap anyway, so almost every step was skipped and the model never saw the asset's positions.
        floor = min(float(params["min_delta_usd"]), 0.5 * cap)
        if abs(d_n) < max(float(params["min_delta_rel"]) * oi_usd, floor) or d_n == 0:
            stats["skipped"] += 1
            return None
        if d_n > cap and (params.get("cap_open_volume", False) or (relief is not None and relief())):
            # while the asset's OI fills (relief, filling.py) or always with cap_open_volume (opt-in; docs/model.md §3
            # step 1): a rise the venue's own trades in the interval can carry is real
            # growth (a new listing's OI grows from nothing; one whale's open is many times 3 % of a thin venue's
            # OI), so it is kept up to the traded notional; a jump with no trades behind it stays capped
            cap = max(cap, self.flows[v].vol)
        if abs(d_n) > cap:
            d_n = math.copysign(cap, d_n)
            stats["capped"] += 1
        buy, sell = self.flows[v].taker()
        tot = buy + sell
        phi = buy / tot if tot > 0 else 0.5
        stats["intervals"] += 1
        phi_a = alpha * phi + (1.0 - alpha) / 2.0
        if net_weight > 0.0:  # opt-in: the imbalance read against the step (net_long_share), blended in
            phi_a = (1.0 - net_weight) * phi_a + net_weight * net_long_share(buy, sell, d_n)
        return OIStep(d_n, phi_a)

    def entries(self, v: int, st: OIStep, vwap: float, step: float,
                mode: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """((long entries, short entries), (their weights)) of an opening step: the interval's traded-price
        profile, or with ``mode == "highlow"`` longs at the interval's low and shorts at its high."""
        f = self.flows[v]
        if mode == "highlow" and f.n:
            one = np.ones(1)
            _, _, low, high = f.summary()
            return (np.array([low]), np.array([high])), (one, one)
        if 0 < f.n <= _FEW:
            entries, w = entry_profile_few([x for a in f.prices for x in a.tolist()],
                                           [x for a in f.usds for x in a.tolist()], vwap, step)
            return (entries, entries), (w, w)
        prices, usds = f.arrays()
        entries, w = entry_profile(prices, usds, vwap, step)
        return (entries, entries), (w, w)

    def compact(self, step: float) -> None:
        for f in self.flows:
            f.compact(step)
