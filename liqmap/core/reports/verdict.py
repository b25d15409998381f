"""The one-line verdict for the status bar, derived only from the reports and the model's levels.

``▼ 65,800 −0.6% $42M · ▲ 67,100 +1.4% $18M · book: bids 62% · CONVERGENCE 66,000``

A *magnet* is the bucket within ±``range_pct`` of mid holding the most USD of estimated liquidations (the
model's long + short) plus active wall USD; one below mid (▼) and one above (▲). The book part is the
distance-weighted bid share from the asymmetry read; the convergence part names the live chip nearest mid.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..buckets import index, label, price_of
from ._common import fmt_usd, params

MINUS = "\u2212"


def _pct(x: float) -> str:
    s = f"{abs(x):.2f}%" if abs(x) < 0.1 else f"{abs(x):.1f}%"  # −0.04% rather than −0.0%
    return (MINUS if x < 0 else "+") + s


def magnets(mid: float, step: float, walls: Sequence = (), synth=None,
            range_pct: float = 3.0) -> tuple[tuple[int, float] | None, tuple[int, float] | None]:
    """((bucket, usd) below mid, (bucket, usd) above mid), each the largest within range, or None.

    The bucket holding mid counts on the side of mid its centre lies on."""
    lo = int(index(mid * (1 - range_pct / 100.0), step))
    hi = int(index(mid * (1 + range_pct / 100.0), step))
    mass = np.zeros(hi - lo + 1)
    if synth is not None:
        idx, lng, sht = synth
        idx = np.asarray(idx, dtype=np.int64)
        tot = np.asarray(lng, dtype=float) + np.asarray(sht, dtype=float)
        m = (idx >= lo) & (idx <= hi) & (tot > 0)
        np.add.at(mass, idx[m] - lo, tot[m])
    for w in walls:
        if w.status == "active" and lo <= w.bucket <= hi:
            mass[w.bucket - lo] += w.usd
    mb = int(index(mid, step))
    split = mb - lo + (1 if (mb + 0.5) * step < mid else 0)  # first index on the "above" side
    split = min(max(split, 0), len(mass))

    def pick(part: np.ndarray, off: int) -> tuple[int, float] | None:
        if not len(part) or not part.max() > 0:
            return None
        j = int(np.argmax(part))
        return lo + off + j, float(part[j])

    return pick(mass[:split], 0), pick(mass[split:], split)


def verdict(mid: float | None, step: float, walls: Sequence = (), asym=None, convergence: Sequence = (),
            synth=None, cfg: Mapping[str, Any] | None = None) -> str:
    if not mid or not step > 0:
        return ""
    p = params(cfg, "verdict")
    parts: list[str] = []
    dn, up = magnets(mid, step, walls, synth, float(p["range_pct"]))
    for arrow, m in (("\u25bc", dn), ("\u25b2", up)):
        if m is not None:
            price = float(price_of(m[0], step))
            parts.append(f"{arrow} {label(price, step)} {_pct((price / mid - 1.0) * 100.0)} {fmt_usd(m[1])}")
    if asym is not None:
        share = asym.bid_share
        parts.append(f"book: bids {share * 100:.0f}%" if share >= 0.5 else f"book: asks {(1 - share) * 100:.0f}%")
    if convergence:
        c = min(convergence, key=lambda c: abs(c.price - mid))
        parts.append(f"CONVERGENCE {label(c.price, step)}")
    return " \u00b7 ".join(parts)
