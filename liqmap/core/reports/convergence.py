"""Convergence (docs/detectors.md §5): several independent reads landing on the same level.

Components, each a bucket range with a strength in [0, 1]:
- *wall*: an active wall;
- *sweep*: a sweep whose bucket range touches the level and that ended within ``window_s``;
- *absorption*: an absorption at the level whose last aggression is within ``window_s``;
  for these three the strength is the USD's percentile rank among the same kind over the last
  ``history_hours`` for this asset (docs/detectors.md §5; :class:`StrengthHistory`, kept by the detector), or — until
  ``history_min`` samples exist, and in the stateless :func:`converge` — USD ÷ the largest one present now;
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


class StrengthHistory:
    """The sizes walls, sweeps and absorptions have had over the last ``horizon_s`` for one asset, so a
    component's strength can be its percentile rank there: a wall is strong when it is large for this asset
    today, not merely the largest on screen now. Walls are sampled once per ``wall_every_s`` each (they
    last), sweeps once each, absorptions once settled; the newest ``max_samples`` per kind are kept in numpy
    rings (16 bytes a sample: 65 assets cost at most ~6.4 MB)."""

    def __init__(self, horizon_s: float = 86_400.0, min_samples: int = 20, wall_every_s: float = 300.0,
                 max_samples: int = 2048) -> None:
        self.horizon_s = float(horizon_s)
        self.min_samples = max(1, int(min_samples))
        self.wall_every_s = float(wall_every_s)
        cap = max(1, int(max_samples))
        self._ts = np.full((3, cap), -np.inf)  # sample times per kind (ring)
        self._usd = np.zeros((3, cap))
        self._n = [0, 0, 0]  # samples ever written per kind
        self._seen: list[dict] = [{}, {}, {}]  # item key → when it was last sampled
        self._sorted: list[np.ndarray | None] = [None, None, None]
        self._last = -np.inf  # the previous observe
        self._oldest = [np.inf, np.inf, np.inf]  # oldest sample time in each sorted copy

    def observe(self, now: float, walls=(), sweeps=(), absorptions=()) -> None:
        # sweeps: those ended since the last look (a second of slack; the keys drop repeats); absorptions:
        # once settled (their USD is final then)
        since = self._last - 1.0
        if now < self._last - self.horizon_s:  # a clock that went far back (a new replay): start over
            self.__init__(self.horizon_s, self.min_samples, self.wall_every_s, self._ts.shape[1])
        self._last = now
        items = ([(0, (w.side, w.bucket, w.first_seen), w.usd) for w in walls if w.status == "active"]
                 + [(1, (x.ts, x.venue, x.bucket_lo, x.bucket_hi), x.usd) for x in sweeps
                    if x.end_ts >= since]
                 + [(2, (a.side, a.bucket, a.start), a.usd) for a in absorptions if a.outcome != "pending"])
        cap = self._ts.shape[1]
        for kind, key, usd in items:
            seen = self._seen[kind]
            last = seen.get(key)
            if last is not None and (kind != 0 or now - last < self.wall_every_s):
                continue
            seen[key] = now
            if usd > 0:
                i = self._n[kind] % cap
                self._ts[kind, i], self._usd[kind, i] = now, float(usd)
                self._n[kind] += 1
                self._sorted[kind] = None
        cut = now - self.horizon_s
        for kind in range(3):
            if len(self._seen[kind]) > 4 * cap:  # forget keys of items long gone
                self._seen[kind] = {k: t for k, t in self._seen[kind].items() if t >= cut}
            if self._sorted[kind] is not None and self._oldest[kind] < cut:
                self._sorted[kind] = None  # something aged out

    def count(self, kind: int) -> int:
        return int(np.count_nonzero(self._ts[kind] >= self._last - self.horizon_s))

    def ranks(self, kind: int, usd: np.ndarray) -> np.ndarray | None:
        """Percentile ranks (0..1] of ``usd`` among this kind's history; None while it is too short."""
        if self._sorted[kind] is None:
            m = self._ts[kind] >= self._last - self.horizon_s
            self._sorted[kind] = np.sort(self._usd[kind][m])
            self._oldest[kind] = float(self._ts[kind][m].min()) if m.any() else np.inf
        hist = self._sorted[kind]
        if len(hist) < self.min_samples:
            return None
        return np.maximum(np.searchsorted(hist, usd, side="right") / len(hist), 1e-9)


def _strength(history: StrengthHistory | None, kind: int, u: np.ndarray) -> np.ndarray:
    r = history.ranks(kind, u) if history is not None else None
    return r if r is not None else u / (u.max() or 1.0)


def _components(now: float, walls, sweeps, absorptions, synth, window: float, pct: float,
                history: StrengthHistory | None = None):
    """Per kind present: (kind, lo buckets, hi buckets, strengths, ages (NaN = none)) as arrays."""
    out = []
    act = [w for w in walls if w.status == "active"]
    if act:
        b = np.array([w.bucket for w in act], dtype=np.int64)
        u = np.array([w.usd for w in act], dtype=float)
        out.append((0, b, b, _strength(history, 0, u), np.array([w.age_s for w in act], dtype=float)))
    sw = [x for x in sweeps if now - x.end_ts <= window]
    if sw:
        u = np.array([x.usd for x in sw], dtype=float)
        out.append((1, np.array([x.bucket_lo for x in sw], dtype=np.int64),
                    np.array([x.bucket_hi for x in sw], dtype=np.int64), _strength(history, 1, u),
                    np.array([max(0.0, now - x.end_ts) for x in sw], dtype=float)))
    ab = [a for a in absorptions if now - a.last <= window]
    if ab:
        b = np.array([a.bucket for a in ab], dtype=np.int64)
        u = np.array([a.usd for a in ab], dtype=float)
        out.append((2, b, b, _strength(history, 2, u),
                    np.array([max(0.0, now - a.last) for a in ab], dtype=float)))
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
             absorptions: Sequence = (), synth=None, cfg: Mapping[str, Any] | None = None,
             history: StrengthHistory | None = None) -> list[Convergence]:
    """Stateless: the chips firing now (``since`` = ``now``). :class:`ConvergenceDetector` keeps ``since``
    and the strength history."""
    p = params(cfg, "convergence")
    nb = int(p["buckets"])
    w = np.asarray(p["weights"], dtype=float)
    comps = _components(now, walls, sweeps, absorptions, synth, float(p["window_s"]), float(p["synthetic_pct"]),
                        history)
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


def keep_since(chips: list[Convergence], before: Sequence[Convergence], nb: int) -> list[Convergence]:
    """``chips`` with the ``since`` of any chip ``before`` within ± ``nb`` buckets (a chip that keeps firing
    keeps the time it first fired)."""
    out = []
    for c in chips:
        prev = [o.since for o in before if abs(o.bucket - c.bucket) <= nb]
        out.append(replace(c, since=min(prev)) if prev else c)
    return out


class ConvergenceDetector:
    """:func:`converge` each tick, remembering since when each chip (± ``buckets``) has been firing."""

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        self.cfg = cfg
        p = params(cfg, "convergence")
        self.nb = int(p["buckets"])
        self.chips: list[Convergence] = []
        self.history = StrengthHistory(float(p["history_hours"]) * 3600.0, int(p["history_min"]))

    def reset(self) -> None:
        self.chips = []

    def update(self, now: float, mid: float | None, step: float, walls=(), sweeps=(), absorptions=(),
               synth=None) -> list[Convergence]:
        self.history.observe(now, walls, sweeps, absorptions)
        new = converge(now, mid, step, walls, sweeps, absorptions, synth, self.cfg, self.history)
        self.chips = keep_since(new, self.chips, self.nb)
        return self.chips
