"""What a level belongs to, and how a (bucket, source, side) packs into one int64 history key.

A level's USD is held per *source* and side: source ``v`` (0..NV-1) is venue v's observed OI flow, source
``NV + v`` its cold-start prior (docs/model.md §3 step 10). The column history (``history.py``) and the
mutation log key a level as ``bucket << CODE_BITS | (source·2 + side)``: one sortable int64, so a delta is a
sorted key array, not a dict. Both the code width and the consumed ledger's venue bit field bound how many
venues the model can tell apart (``MAX_VENUES``, checked by the venue registry).
"""

from __future__ import annotations

import numpy as np

from ..events import VENUES

NV = len(VENUES)
NS = 2 * NV  # sources of a level: 0..NV-1 = venue v's OI flow, NV+v = venue v's cold-start prior
LONG_I, SHORT_I = 0, 1  # index of a side in the state arrays
EPS_USD = 1e-9  # levels below this are treated as empty

CODE_BITS = 5  # history keys: bucket << 5 | (source·2 + side)
CODE_MASK = (1 << CODE_BITS) - 1
MAX_INDEX = float(2**50)  # bucket indices above this are refused (keys are index << CODE_BITS in int64)
VENUE_BITS_DTYPE = np.dtype("u1")  # the consumed ledger's venue set: bit i = venue VENUES[i]
# How many venues the model can tell apart: a history key's code (flow or prior × venue × side: 4 per venue)
# must fit its ``CODE_BITS``, and a consumed level records its venues as the bits of one unsigned field.
MAX_VENUES = min((1 << CODE_BITS) // 4, 8 * VENUE_BITS_DTYPE.itemsize)


def pack(source, side, bucket) -> np.ndarray:
    """History keys of these (source, side, absolute bucket) values (broadcast; flattened)."""
    code = np.asarray(source, dtype=np.int64) * 2 + np.asarray(side, dtype=np.int64)
    return ((np.asarray(bucket, dtype=np.int64) << CODE_BITS) | code).ravel()


def bucket_of(keys: np.ndarray) -> np.ndarray:
    return keys >> CODE_BITS


def code_of(keys: np.ndarray) -> np.ndarray:
    """source·2 + side of each key: the row of a (2·NS, …) per-code array."""
    return keys & CODE_MASK


def remap_keys(keys: np.ndarray, remap) -> np.ndarray:
    """Keys with their bucket mapped by ``remap`` (a rebucket), unique and sorted."""
    if len(keys) == 0:
        return keys
    return np.unique((remap(keys >> CODE_BITS) << CODE_BITS) | (keys & CODE_MASK))
