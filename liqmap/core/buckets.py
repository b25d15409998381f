"""Canonical price buckets: the same relative resolution for every asset, on round numbers.

A bucket step is the "nice" number (1, 2, 2.5 or 5 × 10^k) nearest in log terms to ``target_bp`` of the
price, never finer than the tick. BTC at 66,000 and 5 bp → 25 (33 is nearer 25 than 50 in log terms);
ETH at 3,000 → 1 or 2; an altcoin at 0.41 → 0.0002. Labels stay round and an altcoin map reads like BTC.

Bucket ``i`` covers prices ``[i·step, (i+1)·step)``; indices are integers so grids of different windows
line up without float drift.
"""

from __future__ import annotations

import functools
import math

import numpy as np

NICE_MANTISSAS = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_step(raw: float) -> float:
    """The nice number nearest to ``raw`` in log space."""
    if not (raw > 0 and math.isfinite(raw)):
        raise ValueError(f"bucket step needs a positive finite size, got {raw!r}")
    exp = math.floor(math.log10(raw))
    best, best_err = None, math.inf
    for e in (exp - 1, exp, exp + 1):
        for m in NICE_MANTISSAS:
            cand = m * 10.0**e
            err = abs(math.log(cand / raw))
            if err < best_err - 1e-12:
                best, best_err = cand, err
    # Round away float noise so 0.0002 prints as 0.0002, not 0.00020000000000000001.
    return float(f"{best:.12g}")


def bucket_step(price: float, tick: float, target_bp: float = 5.0) -> float:
    """Canonical bucket step for an asset at ``price`` with exchange ``tick``.

    The step must be a whole number of ticks (otherwise buckets alternately hold one and two ticks and
    the map shows stripes), and never finer than the tick. Among the nice numbers that qualify, the one
    nearest the target wins if it is within 2× of it; otherwise the nearest whole number of ticks.
    """
    if not (price > 0 and math.isfinite(price)):
        raise ValueError(f"bucket step needs a positive price, got {price!r}")
    raw = price * target_bp / 1e4
    step = nice_step(raw)
    if not tick > 0 or (step >= tick and _is_multiple(step, tick)):
        return step
    exp = math.floor(math.log10(raw))
    best, best_err = None, math.log(2.0)
    for e in range(exp - 1, exp + 3):
        for m in NICE_MANTISSAS[:-1]:
            cand = float(f"{m * 10.0**e:.12g}")
            if cand >= tick * (1 - 1e-9) and _is_multiple(cand, tick):
                err = abs(math.log(cand / raw))
                if err <= best_err:
                    best, best_err = cand, err
    if best is not None:
        return best
    return float(f"{max(1, round(raw / tick)) * tick:.12g}")


def _is_multiple(step: float, tick: float) -> bool:
    k = step / tick
    return abs(k - round(k)) < 1e-6 and round(k) >= 1


def needs_rebucket(step: float, price: float, target_bp: float = 5.0) -> bool:
    """True once price has moved so far that ``step`` is off its target by more than 2×."""
    ideal = price * target_bp / 1e4
    return step > 2 * ideal or step < ideal / 2


def index_of(price: float, step: float) -> int:
    """:func:`index` of one price, without numpy's per-call cost on a scalar (the same float arithmetic): for the
    model's and the verdict's per-event paths."""
    return math.floor(price / step + 1e-9)


def index(prices: np.ndarray | float, step: float) -> np.ndarray:
    """Bucket index of each price (floor division, robust to float error at the edges)."""
    return np.floor(np.asarray(prices, dtype=np.float64) / step + 1e-9).astype(np.int64)


def price_of(idx: np.ndarray | int, step: float) -> np.ndarray:
    """Lower edge price of each bucket index."""
    return np.asarray(idx, dtype=np.float64) * step


@functools.lru_cache(maxsize=512)  # a few steps per asset; the screener and the axes ask for every label
def decimals(step: float) -> int:
    """How many decimals a price label needs for this step (0.0002 → 4, 25 → 0, 2.5 → 1)."""
    s = f"{step:.12f}".rstrip("0").rstrip(".")
    return len(s.split(".")[1]) if "." in s else 0


SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
ZEROS_FOLDED_FROM = 3  # 0.000012340 (11 characters) → 0.0₄12340: the zeros after the point as a subscript


def label(price: float, step: float) -> str:
    """``price`` with the decimals its bucket ``step`` needs. A price below 0.001 (PEPE, SHIB, BONK) folds
    its leading zeros into a subscript count, the way DEX screens write it — ``0.0₄12340`` is 0.000012340 —
    so an axis label fits its 12 columns and two prices differ where a reader looks first."""
    d = decimals(step)
    text = f"{price:,.{d}f}"
    if 0 < abs(price) < 0.001 and text.lstrip("-").startswith("0."):
        sign = "-" if text.startswith("-") else ""
        frac = text.lstrip("-")[2:]
        zeros = len(frac) - len(frac.lstrip("0"))
        if zeros >= ZEROS_FOLDED_FROM and zeros < len(frac):
            return f"{sign}0.0{str(zeros).translate(SUBSCRIPT)}{frac[zeros:]}"
    return text
