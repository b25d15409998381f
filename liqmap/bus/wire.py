"""What goes over the wire: subjects, keys and payloads.

Rows travel as the numpy structured arrays the parsers produce (``liqmap.core.events``), one message per
(kind, venue, asset) and batch: ``VERSION`` byte + ``rows.tobytes()``. The dtype is fixed by the kind in the
subject, so the payload needs no schema and decoding is one ``np.frombuffer`` (a copy-free view). Measured
against orjson lists of row tuples (``docs/bus.md``): encode and decode are each well over 10× cheaper and
the payload smaller, because a row is 34–42 bytes of binary against ~90 bytes of JSON text.

Books travel as snapshots: the top ``bus.book_levels`` levels of each side of a venue's book, ``book`` rows
(``side`` +1 bid, −1 ask), replacing the viewer's copy whole — deltas would need every one in order, and a
viewer joining late needs only the newest (the books stream keeps one message per subject).

Engine snapshots go to the KV bucket under ``<asset>.<mode>.<timeframe>.<venues>`` as the store's own
snapshot files (``liqmap.core.codec``, quantized and compressed): a viewer decodes them into a full map at once.
"""

from __future__ import annotations

import numpy as np

from liqmap.core.events import KINDS

VERSION = b"\x01"
PREFIX = "liqmap"
ROW_KINDS = ("trade", "liq", "oi")  # the retention stream's kinds; books are their own stream
ALL_VENUES = "all"


class WireError(ValueError):
    """A message that is not ours or is damaged (counted and dropped by the reader)."""


def subject(kind: str, venue: str, asset: str) -> str:
    return f"{PREFIX}.{kind}.{venue}.{asset}"


def parse_subject(subj: str) -> tuple[str, str, str]:
    parts = subj.split(".")
    if len(parts) != 4 or parts[0] != PREFIX or parts[1] not in KINDS:
        raise WireError(f"not a liqmap subject: {subj[:80]!r}")
    return parts[1], parts[2], parts[3]


def encode_rows(rows: np.ndarray) -> bytes:
    return VERSION + np.ascontiguousarray(rows).tobytes()


def decode_rows(kind: str, payload: bytes) -> np.ndarray:
    dtype = KINDS.get(kind)
    if dtype is None:
        raise WireError(f"unknown kind {kind!r}")
    if payload[:1] != VERSION:
        raise WireError(f"unknown payload version {payload[:1]!r}")
    body = memoryview(payload)[1:]
    if len(body) % dtype.itemsize:
        raise WireError(f"{kind} payload of {len(body)} bytes is not whole rows of {dtype.itemsize}")
    return np.frombuffer(body, dtype=dtype)


def book_rows(book, venue_id: int, depth: int) -> np.ndarray:
    """The top ``depth`` levels of both sides of ``book`` as ``book`` rows (bids first)."""
    from liqmap.core.events import ASK, BID, BOOK_DTYPE

    bp, bq = book.levels(BID, depth)
    ap, aq = book.levels(ASK, depth)
    out = np.zeros(len(bp) + len(ap), dtype=BOOK_DTYPE)
    out["ts"] = book.ts
    out["price"][: len(bp)], out["qty"][: len(bp)], out["side"][: len(bp)] = bp, bq, BID
    out["price"][len(bp):], out["qty"][len(bp):], out["side"][len(bp):] = ap, aq, ASK
    out["venue"] = venue_id
    return out


def snapshot_key(asset: str, mode: str, timeframe: str, venues) -> str:
    vs = "-".join(venues) if venues else ALL_VENUES
    return f"{asset}.{mode}.{timeframe}.{vs}"
