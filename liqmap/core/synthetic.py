"""The synthetic liquidation model's public names (docs/model.md §3); the model itself is ``liqmap.core.model``.

Kept as the import path every caller uses (engine, reports, feeds' venue registry, benchmarks, tests), so the
split of the model into ``liqmap/core/model/`` (issue 15) changed no caller.
"""

from __future__ import annotations

from .model.history import ColumnHistory as _History
from .model.ledger import CONSUMED_CAPACITY, CONSUMED_DTYPE
from .model.sources import CODE_BITS as _CODE_BITS
from .model.sources import CODE_MASK as _CODE_MASK
from .model.sources import EPS_USD, LONG_I, MAX_INDEX, MAX_VENUES, NS, NV, SHORT_I
from .model.synthetic import SyntheticModel, lev_label

__all__ = ["CONSUMED_CAPACITY", "CONSUMED_DTYPE", "EPS_USD", "LONG_I", "MAX_INDEX", "MAX_VENUES", "NS", "NV",
           "SHORT_I", "SyntheticModel", "lev_label", "_CODE_BITS", "_CODE_MASK", "_History"]
