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


def _components(now: float, walls, sweeps, absorptions, synth, window: float, pct: float):
    """Per kind present: (kind, lo buckets, hi buckets, strengths, ages (NaN = none)) as arrays."""
    out = []
    act = [w for w in walls if w.status == "active"]
    if act:
        b = np.array([w.bucket for w in act], dtype=np.int64)
        u = np.array([w.usd for w in act], dtype=float)
        out.append((0, b, b, u / (u.max() or 1.0), np.array([w.age_s for w in act], dtype=float)))
    sw = [x for x in sweeps if now - x.end_ts <= window]
    if sw:
        u = np.array([x.usd for x in sw], dtype=float)
        out.append((1, np.array([x.bucket_lo for x in sw], dtype=np.int64),
                    np.array([x.bucket_hi for x in sw], dtype=np.int64), u / (u.max() or 1.0),
                    np.array([max(0.0, now - x.end_ts) for x in sw], dtype=float)))
    ab = [a for a in absorptions if now - a.last <= window]
    if ab:
        b = np.array([a.bucket for a in ab], dtype=np.int64)
        u = np.array([a.usd for a in ab], dtype=float)
        out.append((2, b, b, u / (u.max() or 1.0), np.array([max(0.0, now - a.last) for a in ab], dtype=float)))
    if synth is not None:
        idx, lng, sht = synth
        dens = np.asarray(lng, dtype=float) + np.asarray(sht, dtype=float)
        nz = dens > 0
        if nz.any():
            vals = np.sort(dens[nz])
            cut = float(np.percentile(vals, pct))
            # ≥ the percentile and above the median: a flat profile has no clusters at all.
            sel = nz & (dens >= cut) & (dens > float(vals[len(vals) // 2]))
            if sel.any():
                b = np.asarray(idx, dtype=np.int64)[sel]
                rank = np.searchsorted(vals, dens[sel], side="right") / len(vals)
                out.append((3, b, b, rank.astype(float), np.full(len(b), np.nan)))
    return out


def converge(now: float, mid: float | None, step: float, walls: Sequence = (), sweeps: Sequence = (),
             absorptions: Sequence = (), synth=None, cfg: Mapping[str, Any] | None = None) -> list[Convergence]:
    """Stateless: the chips firing now (``since`` = ``now``). :class:`ConvergenceDetector` keeps ``since``."""
    p = params(cfg, "convergence")
    nb = int(p["buckets"])
    w = np.asarray(p["weights"], dtype=float)
    comps = _components(now, walls, sweeps, absorptions, synth, float(p["window_s"]), float(p["synthetic_pct"]))
    if len(comps) < int(p["min_components"]):
        return []
    lo = min(int(c[1].min()) for c in comps) - nb
    hi = max(int(c[2].max()) for c in comps) + nb
    n = hi - lo + 1
    best = np.zeros((4, n))  # best strength per kind of an item within ±nb of each bucket
    dist = np.full((4, n), float(nb + 1))  # distance (buckets) to the nearest item of each kind
    for kind, klo, khi, st, _ in comps:
        # Every bucket each item reaches (its range widened by ±nb), flattened.
        span = khi - klo + 1 + 2 * nb
        item = np.repeat(np.arange(len(klo)), span)
        pos = klo[item] - nb + (np.arange(int(span.sum())) - np.repeat(np.cumsum(span) - span, span))
        d = np.maximum(np.maximum(klo[item] - pos, pos - khi[item]), 0)
        np.maximum.at(best[kind], pos - lo, np.maximum(st[item], 1e-9))
        np.minimum.at(dist[kind], pos - lo, d.astype(float))
    fired = best > 0
    count = fired.sum(axis=0)
    cand = np.flatnonzero(count >= int(p["min_components"]))
    if not len(cand):
        return []
    score = (w[:, None] * best).sum(axis=0) / max(w.sum(), 1e-12)
    # Best level first: most kinds, then score, then where the components sit closest together, then
    # nearest to mid; its neighbours within ±2·buckets are the same chip.
    ref = mid if mid else 0.0
    spread = np.where(fired, dist, 0.0).sum(axis=0)
    order = sorted(cand.tolist(), key=lambda i: (-count[i], -round(float(score[i]), 9), spread[i],
                                                 abs((lo + i + 0.5) * step - ref)))
    by_kind = {c[0]: c for c in comps}
    taken: list[int] = []
    out: list[Convergence] = []
    for i in order:
        if any(abs(i - j) <= 2 * nb for j in taken):
            continue
        taken.append(i)
        bucket = lo + i
        comps_fired, ages, strengths = [], {}, {}
        for k in range(4):
            if not fired[k, i]:
                continue
            comps_fired.append(KINDS[k])
            _, klo, khi, _, age = by_kind[k]
            near = (klo - nb <= bucket) & (bucket <= khi + nb)
            a = age[near]
            a = a[~np.isnan(a)]
            strengths[KINDS[k]] = float(best[k, i])
            ages[KINDS[k]] = float(a.min()) if len(a) else None
        price = float(price_of(bucket, step))
        out.append(Convergence(
            bucket=bucket, price=price, distance_bp=(price / mid - 1.0) * 1e4 if mid else 0.0,
            score=float(score[i]), count=int(count[i]), components=tuple(comps_fired), ages=ages,
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
