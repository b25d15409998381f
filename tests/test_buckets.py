import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from liqmap.core import buckets
from liqmap.core.timeframes import column, next_tf, window


def test_canonical_steps_from_design():
    # docs/architecture.md §3: BTC at 66,000 → 25 or 50; ETH at 3,000 → 1 or 2; an altcoin at 0.41 → 0.0002.
    assert buckets.bucket_step(66000, 0.1) in (25.0, 50.0)
    assert buckets.bucket_step(3000, 0.01) in (1.0, 2.0)
    assert buckets.bucket_step(0.41, 0.0001) == 0.0002


def test_step_never_finer_than_tick():
    # 5 bp of 0.12 is 0.00006 but the tick is 0.001: the step becomes the tick.
    assert buckets.bucket_step(0.12, 0.001) == 0.001
    # A tick that is not itself "nice" still yields a whole number of ticks.
    s = buckets.bucket_step(10.0, 0.003)
    assert s >= 0.003 and abs(s / 0.003 - round(s / 0.003)) < 1e-9


@given(st.floats(min_value=1e-8, max_value=1e7, allow_nan=False, allow_infinity=False))
def test_step_is_nice_and_near_target(price):
    step = buckets.bucket_step(price, 0.0)
    mant = step / 10 ** math.floor(math.log10(step) + 1e-12)
    assert any(abs(mant - m) < 1e-6 for m in (1, 2, 2.5, 5, 10))
    ratio = step / (price * 5e-4)
    assert 1 / 1.6 <= ratio <= 1.6  # nearest nice number is within the 2/2.5/5 gaps


def test_rebucket_only_past_2x():
    step = buckets.bucket_step(66000, 0.1)
    assert not buckets.needs_rebucket(step, 70000)
    assert buckets.needs_rebucket(step, 66000 * 3)
    assert buckets.needs_rebucket(step, 66000 / 3)


def test_index_and_labels():
    idx = buckets.index(np.array([65800.0, 65824.99, 65825.0]), 25.0)
    assert idx.tolist() == [2632, 2632, 2633]
    assert buckets.label(65800.0, 25.0) == "65,800"
    assert buckets.label(0.4102, 0.0002) == "0.4102"
    assert buckets.label(3001.0, 2.5) == "3,001.0"


def test_timeframe_columns_line_up():
    assert column(119.9, "1m") == 1
    assert column(3600 * 5 + 1, "1h") == 5
    lo, hi = window(600.0, "1m", 10)
    assert (lo, hi) == (1, 11)
    assert next_tf("4h") == "1m" and next_tf("1m", -1) == "4h"


def test_tiny_prices_fold_their_leading_zeros_so_labels_fit_the_axis():
    assert buckets.label(0.00001234, 5e-9) == "0.0₄12340"  # PEPE: was 0.000012340 (11 characters)
    assert buckets.label(5e-9, 5e-9) == "0.0₈5"  # the zoom's price per row, was 5e-09
    assert buckets.label(0.0234, 1e-5) == "0.02340"  # two zeros stay as they are
    assert len(buckets.label(0.00001234, 5e-9)) + 1 <= 12  # + the axis tick fits the 12-column axis


def test_index_of_one_price_is_index():
    """The scalar index the model's per-event paths use is the array one, edge cases included."""
    import numpy as np
    from liqmap.core.buckets import index, index_of

    for step in (25.0, 0.5, 1e-4, 3e-7):
        px = np.array([step * k for k in (1, 2, 3, 1000, 123457)] + [step * 7 - 1e-12, 0.3 * step * 10])
        assert [index_of(float(p), step) for p in px] == index(px, step).tolist()
