"""The synthetic liquidation model (docs/model.md §3), split along its seams.

One way: events → ``flow`` (how much opened or closed, from where) → ``placement`` (at which liquidation
prices) → the state in ``synthetic`` (``SyntheticModel``: the dense window, event order, clock and decay,
the reads) → ``history`` (what the map replays) and ``ledger`` (what price swept). ``sources`` is the index
space they share: which source and side a level belongs to, and its packed int64 history key.

- ``sources.py``   source (venue flow or prior) × side, the history key packing, ``MAX_VENUES``
- ``flow.py``      per-venue OI intervals: flow since the anchor, the accepted step, taker split, entries
- ``placement.py`` leverage tiers and bands → liquidation price ratios → (side, tier, bucket, USD) slices
- ``history.py``   the column history codec: keyframe + compact per-boundary deltas, replay, re-binning
- ``ledger.py``    the consumed ledger
- ``synthetic.py`` ``SyntheticModel``

``liqmap.core.synthetic`` re-exports the public names, so callers import the model from there.
"""

from .ledger import CONSUMED_CAPACITY, CONSUMED_DTYPE
from .sources import EPS_USD, MAX_VENUES, NS, NV
from .synthetic import SyntheticModel, lev_label

__all__ = ["CONSUMED_CAPACITY", "CONSUMED_DTYPE", "EPS_USD", "MAX_VENUES", "NS", "NV", "SyntheticModel",
           "lev_label"]
