"""The one-line verdict for the status bar, derived only from the reports and the model's levels.

``▼ 65,800 −0.6% liqs $42M · ▲ 67,100 +1.4% wall $18M · book: bids 62% · CONVERGENCE 66,000``

A *magnet* is the bucket within ±``range_pct`` of mid holding the most USD of estimated liquidations (the
model's long + short) plus active wall USD plus, where a venue publishes positions, the exact liquidation USD of
its tracked wallets (named ``exact $X``: known, not estimated); one below mid (▼) and one above (▲), each saying which it is (wall, liqs, or both with
their USD) and held with hysteresis (``VerdictMemory``) so a flickering wall does not make it jump. The book part is the
distance-weighted bid share from the asymmetry read; the convergence part names the live chip nearest mid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..buckets import index_of, label, price_of
from ._common import fmt_usd, params

MINUS = "\u2212"


def _pct(x: float) -> str:
    s = f"{abs(x):.2f}%" if abs(x) < 0.1 else f"{abs(x):.1f}%"  # −0.04% rather than −0.0%
    return (MINUS if x < 0 else "+") + s


@dataclass(frozen=True)
class Magnet:
    """One side's magnet: the bucket, and what pulls there — active wall USD and estimated liquidation USD."""

    bucket: int
    wall_usd: float
    liq_usd: float
    exact_usd: float = 0.0  # exact liquidation USD of tracked wallets (a venue that publishes positions)

    @property
    def usd(self) -> float:
        return self.wall_usd + self.liq_usd + self.exact_usd

    def what(self) -> str:
        """``wall $9.7M``, ``liqs $50k``, ``exact $2.1M`` or ``wall $3M + liqs $1.2M``: a trader must know which he
        is reading (``exact``: known positions' liquidation prices, not an estimate)."""
        w, q, e = self.wall_usd, self.liq_usd, self.exact_usd
        if e > 0:
            rest = Magnet(self.bucket, w, q) if w + q >= MIXED_SHARE * self.usd else None
            return f"exact {fmt_usd(e)}" + (f" + {rest.what()}" if rest is not None else "")
        if w >= MIXED_SHARE * self.usd and q >= MIXED_SHARE * self.usd:
            return f"wall {fmt_usd(w)} + liqs {fmt_usd(q)}"
        return f"wall {fmt_usd(w)}" if w >= q else f"liqs {fmt_usd(q)}"


MIXED_SHARE = 0.15  # both named when each holds at least this share of the magnet's USD


class _Field:
    """Wall and liquidation USD per bucket within ±range of mid; the split between below and above mid."""

    def __init__(self, mid: float, step: float, walls: Sequence, synth, range_pct: float, exact=None) -> None:
        self.lo = lo = index_of(mid * (1 - range_pct / 100.0), step)
        hi = index_of(mid * (1 + range_pct / 100.0), step)
        n = hi - lo + 1
        self.wall = np.zeros(n)
        self.liq = self._binned(synth, lo, n)
        self.exact = self._binned(exact, lo, n)
        for w in walls:
            if w.status == "active" and lo <= w.bucket <= hi:
                self.wall[w.bucket - lo] += w.usd
        mb = index_of(mid, step)
        split = mb - lo + (1 if (mb + 0.5) * step < mid else 0)  # first index on the "above" side
        self.split = min(max(split, 0), len(self.wall))
        self.total = self.wall + self.liq + self.exact  # what best() ranks by (the arrays are not changed later)

    @staticmethod
    def _binned(levels, lo: int, n: int) -> np.ndarray:
        """Long + short USD of ``levels`` (bucket, long, short) per bucket ``lo`` … ``lo + n - 1``; the
        screener builds a field for every asset ingested since its last refresh, so few numpy calls:
        bincount (np.add.at is ~10x slower), and one unsigned compare for both ends of the range."""
        if levels is None:
            return np.zeros(n)
        idx, lng, sht = levels
        rel = np.asarray(idx, dtype=np.int64) - lo
        tot = np.asarray(lng, dtype=float) + np.asarray(sht, dtype=float)
        m = (rel.view(np.uint64) < n) & (tot > 0)  # a bucket below lo wraps to a huge unsigned number
        return np.bincount(rel[m], weights=tot[m], minlength=n)[:n]

    def side(self, up: bool) -> slice:
        return slice(self.split, len(self.wall)) if up else slice(0, self.split)

    def best(self, up: bool) -> Magnet | None:
        sl = self.side(up)
        tot = self.total[sl]
        if not len(tot):
            return None
        j = int(tot.argmax())
        if not tot[j] > 0:
            return None
        j += sl.start
        return Magnet(self.lo + j, float(self.wall[j]), float(self.liq[j]), float(self.exact[j]))

    def at(self, bucket: int, up: bool) -> Magnet | None:
        """The magnet at ``bucket`` now, or None when that bucket is no longer on this side within range."""
        sl = self.side(up)
        j = bucket - self.lo
        if not sl.start <= j < sl.stop:
            return None
        return Magnet(bucket, float(self.wall[j]), float(self.liq[j]), float(self.exact[j]))


def magnets(mid: float, step: float, walls: Sequence = (), synth=None,
            range_pct: float = 3.0) -> tuple[tuple[int, float] | None, tuple[int, float] | None]:
    """((bucket, usd) below mid, (bucket, usd) above mid), each the largest within range, or None.

    The bucket holding mid counts on the side of mid its centre lies on."""
    f = _Field(mid, step, walls, synth, range_pct)
    out = [f.best(up) for up in (False, True)]
    return tuple((m.bucket, m.usd) if m is not None else None for m in out)  # type: ignore[return-value]


class VerdictMemory:
    """Hysteresis for the magnets, so the verdict does not flip as a wall flickers.

    The magnet a side names stays named while it holds at least 1/``switch_ratio`` of the strongest candidate's
    USD; one that vanishes (a wall pulled for a moment, re-placed a second later) is still named for
    ``hold_s`` seconds with its last USD unless something ``switch_ratio`` times larger appears. A magnet
    price has crossed is dropped at once: it is no longer on that side."""

    def __init__(self, switch_ratio: float = 1.5, hold_s: float = 30.0) -> None:
        self.switch_ratio = float(switch_ratio)
        self.hold_s = float(hold_s)
        self._held: dict[bool, tuple[Magnet, float]] = {}  # up → (magnet, last time it had USD)

    def choose(self, f: _Field, up: bool, now: float) -> Magnet | None:
        best = f.best(up)
        pick, seen = best, now
        held = self._held.get(up)
        if held is not None:
            prev, prev_seen = held
            cur = f.at(prev.bucket, up)  # None: price crossed it or it left the range
            if cur is not None and cur.usd > 0:
                if best is None or best.usd <= self.switch_ratio * cur.usd:
                    pick = cur
            elif cur is not None and now - prev_seen < self.hold_s:  # gone a moment ago: hold it
                if best is None or best.usd <= self.switch_ratio * prev.usd:
                    pick, seen = prev, prev_seen
        if pick is None:
            self._held.pop(up, None)
        else:
            self._held[up] = (pick, seen)
        return pick

    def reset(self) -> None:
        self._held.clear()


def verdict(mid: float | None, step: float, walls: Sequence = (), asym=None, convergence: Sequence = (),
            synth=None, cfg: Mapping[str, Any] | None = None, memory: VerdictMemory | None = None,
            now: float = 0.0, exact=None) -> str:
    """``▼ 65,800 −0.6% liqs $42M · ▲ 67,100 +1.4% wall $18M · book: bids 62% · CONVERGENCE 66,000``.

    Parts in a fixed order of importance (the status bar drops them from the end when the line is short)."""
    if not mid or not step > 0:
        return ""
    p = params(cfg, "verdict")
    parts: list[str] = []
    f = _Field(mid, step, walls, synth, float(p["range_pct"]), exact)
    for arrow, up in (("\u25bc", False), ("\u25b2", True)):
        m = memory.choose(f, up, now) if memory is not None else f.best(up)
        if m is not None:
            price = float(price_of(m.bucket, step))
            parts.append(f"{arrow} {label(price, step)} {_pct((price / mid - 1.0) * 100.0)} {m.what()}")
    if asym is not None:
        share = asym.bid_share
        parts.append(f"book: bids {share * 100:.0f}%" if share >= 0.5 else f"book: asks {(1 - share) * 100:.0f}%")
    if convergence:
        c = min(convergence, key=lambda c: abs(c.price - mid))
        parts.append(f"CONVERGENCE {label(c.price, step)}")
    return " \u00b7 ".join(parts)
