"""Dollars that mean dollars (issue 17 item 3, docs/model.md §3 step 12): a ranking-neutral USD scale.

The model places only the open-interest *steps* it sees, so it holds a fraction of the positions really open —
those opened before it started watching, and turnover hidden inside a flat OI, are missing (on the demo it held
0.25–0.62× of the true positions' USD at risk within ±5 %). Open interest is public: what the model has not seen
open must still be somewhere. Placing it (the OI prior, ``core/prior.py``) made the dollars right but the at-risk
ranking worse. This scale says *how much* without saying *where*: what is unseen is taken to be distributed like
what the model does hold, so every printed or drawn USD figure is multiplied by one number per asset (and venue
set) — public OI ÷ the OI the model holds for the same venues — and the map's ranking, its sharpness and the
forecast's ranking are unchanged (one positive factor over every bucket).

- OI counts one side of each contract; the model places each step's USD once (long + short = ΔOI × price), so
  the comparison is OI USD against the model's long + short total.
- Never below 1 (a model holding more than the OI — a stale OI sample, or flow the OI later closed — is not
  shrunk: its levels are what it saw) and at most ``cap`` (``model.dollar_scale_cap``): right after a cold start
  the model holds almost nothing and the ratio is huge and meaningless; a capped scale still under-states.
- Venues without an OI sample yet, or whose held USD is zero, are left out of both sums.
"""

from __future__ import annotations

import math

import numpy as np


def dollar_scale(oi_usd: np.ndarray, held_usd: np.ndarray, mask: np.ndarray, cap: float) -> float:
    """Public OI (USD, per venue; NaN = no sample) ÷ the model's held USD (per venue) over the venues in
    ``mask``, clipped to [1, cap]; 1 when off (cap ≤ 1) or when nothing comparable is held."""
    if not cap > 1.0:
        return 1.0
    ok = mask & np.isfinite(oi_usd) & (oi_usd > 0) & (held_usd > 0)
    if not ok.any():
        return 1.0
    r = float(oi_usd[ok].sum()) / float(held_usd[ok].sum())
    if not math.isfinite(r):
        return 1.0
    return min(max(r, 1.0), float(cap))
