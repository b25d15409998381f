"""Convergence (methods §3.5): several independent reads landing on the same level.

Components, each a bucket range with a strength in [0, 1]:
- *wall*: an active wall (strength = its USD ÷ the largest active wall's);
- *sweep*: a sweep whose bucket range touches the level and that ended within ``window_s``
  (strength = USD ÷ the largest such sweep's);
- *absorption*: an absorption at the level whose last aggression is within ``window_s`` (same normalisation);
- *synthetic*: a model bucket whose long + short USD is ≥ the ``synthetic_pct`` percentile of the model's
  non-empty buckets (strength = its percentile rank).
A level fires when ≥ ``min_components`` kinds have an item within ±``buckets`` of it. The score is the
weighted mean of the best strength per kind (0 for kinds that did not fire). Neighbouring firing levels
collapse into one chip (the best-scoring level), which keeps its ``since`` while it keeps firing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from ..buckets import price_of
from ._common import Record, params

KINDS = ("wall", "sweep", "absorption", "synthetic")


@dataclass(frozen=True)
class Convergence(Record):
    bucket: int
    price: float  # lower edge of the bucket
    distance_bp: float
    score: float  # 0..1
    count: int  # kinds that fired
    components: tuple[str, ...]  # which kinds, in KINDS order
    ages: dict[str, float | None]  # kind → seconds since its newest item near the level (synthetic: None)
    strengths: dict[str, float]
    since: float  # when this chip first fired


@dataclass
class _Item:
    kind: int
    lo: int
    hi: int
    strength: float
    age: float | None


def _items(now: float, walls, sweeps, absorptions, synth, window: float, pct: float) -> list[_Item]:
    items: list[_Item] = []
    act = [w for w in walls if w.status == "active"]
    if act:
        top = max(w.usd for w in act) or 1.0
        items += [_Item(0, w.bucket, w.bucket, w.usd / top, w.age_s) for w in act]
    sw = [s for s in sweeps if now - s.end_ts <= window]
    if sw:
        top = max(s.usd for s in sw) or 1.0
        items += [_Item(1, s.bucket_lo, s.bucket_hi, s.usd / top, max(0.0, now - s.end_ts)) for s in sw]
    ab = [a for a in absorptions if now - a.last <= window]
    if ab:
        top = max(a.usd for a in ab) or 1.0
        items += [_Item(2, a.bucket, a.bucket, a.usd / top, max(0.0, now - a.last)) for a in ab]
    if synth is not None:
        idx, lng, sht = synth
        dens = np.asarray(lng, dtype=float) + np.asarray(sht, dtype=float)
        nz = dens > 0
        if nz.any():
            vals = np.sort(dens[nz])
            cut = float(np.percentile(vals, pct))
            # ≥ the percentile and above the median: a flat profile has no clusters at all.
            sel = nz & (dens >= cut) & (dens > float(np.median(vals)))
            for b, d in zip(np.asarray(idx)[sel].tolist(), dens[sel].tolist()):
                rank = float(np.searchsorted(vals, d, side="right")) / len(vals)
                items.append(_Item(3, int(b), int(b), rank, None))
    return items


def converge(now: float, mid: float | None, step: float, walls: Sequence = (), sweeps: Sequence = (),
             absorptions: Sequence = (), synth=None, cfg: Mapping[str, Any] | None = None) -> list[Convergence]:
    """Stateless: the chips firing now (``since`` = ``now``). :class:`ConvergenceDetector` keeps ``since``."""
    p = params(cfg, "convergence")
    nb = int(p["buckets"])
    w = np.asarray(p["weights"], dtype=float)
    items = _items(now, walls, sweeps, absorptions, synth, float(p["window_s"]), float(p["synthetic_pct"]))
    if not items:
        return []
    lo = min(it.lo for it in items) - nb
    hi = max(it.hi for it in items) + nb
    n = hi - lo + 1
    best = np.zeros((4, n))  # best strength per kind of an item within ±nb of each bucket
    dist = np.full((4, n), float(nb + 1))  # distance (buckets) to the nearest item of each kind
    pos = np.arange(lo, hi + 1)
    for it in items:
        a, b = it.lo - nb - lo, it.hi + nb - lo + 1
        np.maximum(best[it.kind, a:b], it.strength if it.strength > 0 else 1e-9, out=best[it.kind, a:b])
        d = np.maximum(np.maximum(it.lo - pos[a:b], pos[a:b] - it.hi), 0)
        np.minimum(dist[it.kind, a:b], d, out=dist[it.kind, a:b])
    fired = best > 0
    count = fired.sum(axis=0)
    score = (w[:, None] * best).sum(axis=0) / max(w.sum(), 1e-12)
    cand = np.flatnonzero(count >= int(p["min_components"]))
    if not len(cand):
        return []
    # Best level first: most kinds, then score, then where the components sit closest together, then
    # nearest to mid; its neighbours within ±2·buckets are the same chip.
    ref = mid if mid else 0.0
    spread = np.where(best > 0, dist, 0.0).sum(axis=0)
    order = sorted(cand.tolist(), key=lambda i: (-count[i], -round(float(score[i]), 9), spread[i],
                                                 abs((lo + i + 0.5) * step - ref)))
    taken: list[int] = []
    out: list[Convergence] = []
    for i in order:
        if any(abs(i - j) <= 2 * nb for j in taken):
            continue
        taken.append(i)
        bucket = lo + i
        comps, ages, strengths = [], {}, {}
        for k in range(4):
            if not fired[k, i]:
                continue
            comps.append(KINDS[k])
            near = [it for it in items if it.kind == k and it.lo - nb <= bucket <= it.hi + nb]
            strengths[KINDS[k]] = float(best[k, i])
            ag = [it.age for it in near if it.age is not None]
            ages[KINDS[k]] = min(ag) if ag else None
        price = float(price_of(bucket, step))
        out.append(Convergence(
            bucket=bucket, price=price, distance_bp=(price / mid - 1.0) * 1e4 if mid else 0.0,
            score=float(score[i]), count=int(count[i]), components=tuple(comps), ages=ages,
            strengths=strengths, since=now,
        ))
    return out


class ConvergenceDetector:
    """:func:`converge` each tick, remembering since when each chip (± ``buckets``) has been firing."""

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.nb = int(params(cfg, "convergence")["buckets"])
        self.chips: list[Convergence] = []

    def reset(self) -> None:
        self.chips = []

    def update(self, now: float, mid: float | None, step: float, walls=(), sweeps=(), absorptions=(),
               synth=None) -> list[Convergence]:
        new = converge(now, mid, step, walls, sweeps, absorptions, synth, self.cfg)
        out = []
        for c in new:
            prev = [o for o in self.chips if abs(o.bucket - c.bucket) <= self.nb]
            if prev:
                c = replace(c, since=min(o.since for o in prev))
            out.append(c)
        self.chips = out
        return out
