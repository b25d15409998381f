"""Plausibility at the parser boundary: no impossible number leaves a venue parser.

The market rings already refuse NaN, inf, zero and negative values, but a finite number can still be
absurd: one aggTrade priced 1e30 overflowed the engine (``OverflowError``, no report), a quantity of 1e30
put $6.5e34 of trades into a report, book levels of 1e303 USD were accepted, and ``float('１２３')`` is 123.
Every row a venue parser emits, and every book level it applies, is checked here first, per venue:

- timestamps: finite, in (0, ``MAX_TS``] and within ``PAST_S`` before / ``FUTURE_S`` after the
  frame's receipt time — plus the venue's clock offset when its timestamps sit far from the receipt times
  (fixtures and old recordings restamped on purpose: the first row fixes the offset, ``REANCHOR``
  agreeing rows move it; live, the offset is 0);
- prices: finite, within [``MIN_PRICE``, ``MAX_PRICE``] and within a factor ``BAND`` of this venue's last good
  price of the asset (its trades and marks; ``BOOK_BAND`` for book levels); a venue's first price has only the
  absolute bounds;
- sizes: finite, positive (open interest and book deletes may be 0), and the USD notional of one trade or
  liquidation at most ``MAX_EVENT_USD``, of open interest at most ``MAX_OI_USD``; ``usd`` = price × qty;
- sides are ±1.

A value that fails is dropped and counted in ``rejected[(kind, reason)]`` — never applied to rings, books
or the model. Re-anchoring: a genuine move beyond the band (or a venue whose first price was wrong) would
otherwise be rejected forever, so ``REANCHOR`` consecutive out-of-band prices that agree with each other
(within a factor 2) become the new reference.

Numbers spelled with non-ASCII digits are refused per frame (``non_ascii_number``) by ``suspicious_text``
before any field is read: JSON may carry them raw or as ``\\uFF11`` escapes, and Python's ``float`` accepts
every Unicode digit.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

MIN_PRICE = 1e-9  # per base coin (PEPE-style coins trade near 1e-5)
MAX_PRICE = 1e8
BAND = 10.0  # a price beyond ×/÷ 10 of the venue's last good price of the asset is not a price of it
MAX_EVENT_USD = 1e10  # one trade or liquidation (the largest ever printed are ~1e9)
MAX_OI_USD = 1e12
MAX_LEVEL_USD = 1e10  # one book level (price × size)
PAST_S = 2 * 86400.0  # exchange timestamps at most this far behind the receipt time ...
FUTURE_S = 300.0  # ... or this far ahead (the rings refuse > 60 s ahead of their own clock later)
REANCHOR = 20
MAX_TS = 4.1e9  # 2099: beyond is no timestamp (a frame with "t": 1e300 once hung replay)
BOOK_BAND = 1e6  # book levels: real books hold stub orders far from the price (the 2021 BitMEX sample has
# XBTUSD bids at 0.5 with BTC at 32,000 and asks at 1,000,000; ADAUSDT bids at 0.00001 with ADA at 1.17), so
# their band only refuses the absurd (1e19, 1e30, 1e303 USD); the map never draws that far anyway



class Plausibility:
    """One per venue feed: the last good price per asset and the rejection counters."""

    def __init__(self, clock_check: bool = True) -> None:
        # clock_check=False: frames with no receipt time of their own (test fixtures gathered from several
        # years and fed in one stream); every other check still applies
        self.clock_check = clock_check
        self.ref: dict[str, float] = {}  # asset → last good price (per base coin)
        self.rejected: Counter = Counter()  # (kind, reason) → rows or levels refused
        self._outliers: dict[str, list[float]] = {}
        # exchange clock − receipt clock per kind, fixed by the kind's first row (0 when it is near)
        self.offset: dict[str, float] = {}
        self._ts_outliers: dict[str, list[float]] = {}

    # ---------------------------------------------------------------------------------- references
    def band(self, asset: str) -> tuple[float, float, float]:
        """(lowest price, highest price, largest USD) a book level of ``asset`` may have."""
        ref = self.ref.get(asset)
        if ref is None:
            return MIN_PRICE, MAX_PRICE, MAX_LEVEL_USD
        return max(MIN_PRICE, ref / BOOK_BAND), min(MAX_PRICE, ref * BOOK_BAND), MAX_LEVEL_USD

    def price_ok(self, asset: str, price: float) -> bool:
        """A single venue price (a mark) against the bounds and band; a good one becomes the reference."""
        if not (MIN_PRICE <= price <= MAX_PRICE):  # NaN fails too
            return False
        ref = self.ref.get(asset)
        if ref is None or ref / BAND <= price <= ref * BAND:
            self.ref[asset] = price
            self._outliers.pop(asset, None)
            return True
        return False

    # ---------------------------------------------------------------------------------------- rows
    def rows(self, kind: str, asset: str, rows: np.ndarray, receipt: float) -> np.ndarray:
        """The rows of a numpy batch (event dtype) that are plausible; the others counted by reason."""
        if len(rows) == 0:
            return rows
        kept = self.tuples(kind, asset, rows.tolist(), receipt)
        return rows if len(kept) == len(rows) else np.array(kept, dtype=rows.dtype)

    def tuples(self, kind: str, asset: str, rows: list, receipt: float) -> list:
        """The rows of one (kind, asset) batch — tuples in the event dtype's field order, as the venue parsers
        build them — that are plausible; the others counted by reason. Plain Python: batches are a few rows,
        where numpy's per-call overhead (~25 array operations) cost more than the parsing itself."""
        rej = self.rejected
        oi = kind == "oi"
        pi = 3 if oi else 1  # price field: the mark for open interest
        ref = self.ref.get(asset)
        lo, hi = (ref / BAND, ref * BAND) if ref is not None else (MIN_PRICE, MAX_PRICE)
        clock = self.clock_check and 0 < receipt <= MAX_TS
        offset = self.offset.get(kind)
        out = []
        for r in rows:
            try:
                ts = r[0]
                if not 0 < ts <= MAX_TS:  # NaN fails too
                    rej[(kind, "bad_ts")] += 1
                    continue
                if clock:
                    if offset is None:
                        first = ts - receipt
                        offset = self.offset[kind] = 0.0 if -PAST_S <= first <= FUTURE_S else first
                    rel = ts - receipt - offset
                    if not -PAST_S <= rel <= FUTURE_S:
                        self._clock_outlier(kind, rel, offset)
                        offset = self.offset[kind]
                        rej[(kind, "ts_far_from_clock")] += 1
                        continue
                    self._ts_outliers.pop(kind, None)
                price = r[pi]
                if not MIN_PRICE <= price <= MAX_PRICE:
                    rej[(kind, "price_out_of_bounds")] += 1
                    continue
                if not lo <= price <= hi:
                    if kind == "trade":
                        self._reanchor(asset, price)
                    rej[(kind, "price_off_band")] += 1
                    continue
                if oi:
                    size, usd = r[1], r[2]
                    if not (0 <= size < math.inf and 0 <= usd <= MAX_OI_USD):
                        rej[(kind, "size_out_of_bounds")] += 1
                        continue
                else:
                    size, usd = r[2], r[3]
                    if not (0 < size < math.inf and 0 < usd <= MAX_EVENT_USD):
                        rej[(kind, "size_out_of_bounds")] += 1
                        continue
                    # usd is price × qty (normalize.to_base; BitMEX's own notionals agree to their rounding): a
                    # row where they disagree by more than 1 % has a broken field
                    if not abs(usd - price * size) <= 1e-2 * usd:
                        rej[(kind, "usd_mismatch")] += 1
                        continue
                    if r[4] not in (-1, 1):
                        rej[(kind, "bad_side")] += 1
                        continue
                out.append(r)
            except TypeError:  # a parser handed over something that is not a number
                rej[(kind, "bad_type")] += 1

        # Trades (and marks, ``price_ok``) move the reference; liquidations and open interest are checked
        # against it but do not move it: they are rarer, and a liquidation's bankruptcy price sits away
        # from the market by design.
        if out and kind == "trade":
            self.ref[asset] = float(out[-1][1])
            self._outliers.pop(asset, None)
        return out

    def _reanchor(self, asset: str, price: float) -> None:
        """Out-of-band trade prices that keep coming and agree with each other become the reference."""
        got = self._outliers.setdefault(asset, [])
        got.append(float(price))
        del got[:-REANCHOR]
        if len(got) >= REANCHOR and max(got) <= 2.0 * min(got):
            self.ref[asset] = float(np.median(got))
            self._outliers.pop(asset, None)

    def _clock_outlier(self, kind: str, rel: float, offset: float) -> None:
        """Timestamps far from the clock that keep coming at one steady offset become the new offset."""
        got = self._ts_outliers.setdefault(kind, [])
        got.append(rel)
        del got[:-REANCHOR]
        if len(got) >= REANCHOR and max(got) - min(got) <= PAST_S:
            self.offset[kind] = offset + float(np.median(got))
            self._ts_outliers.pop(kind, None)

    def total(self) -> int:
        return sum(self.rejected.values())


def suspicious_text(msg) -> bool:
    """True when a frame could spell a number in non-ASCII digits: it has non-ASCII text or a ``\\u``
    escape. Exchange frames are ASCII, so this is a rare slow path (``non_ascii_number``)."""
    if isinstance(msg, str):
        return not msg.isascii() or "\\u" in msg
    if isinstance(msg, (bytes, bytearray)):
        return not msg.isascii() or b"\\u" in msg
    return False


def has_non_ascii_number(obj) -> bool:
    """A decoded frame holding a string with non-ASCII characters that ``float`` would accept as a number."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            if not x.isascii():
                try:
                    float(x)
                    return True
                except ValueError:
                    pass
        elif isinstance(x, dict):
            stack.extend(x.values())
            stack.extend(k for k in x if isinstance(k, str))
        elif isinstance(x, list):
            stack.extend(x)
    return False
