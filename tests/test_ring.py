import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liqmap.core.events import TRADE_DTYPE
from liqmap.core.ring import RingBuffer, capacity_for


def rows(start, n):
    a = np.zeros(n, dtype=TRADE_DTYPE)
    a["ts"] = np.arange(start, start + n, dtype=float)
    return a


def test_append_and_wrap_keeps_order_and_newest():
    r = RingBuffer(TRADE_DTYPE, 8)
    r.append(rows(0, 5))
    r.append(rows(5, 6))  # wraps
    assert len(r) == 8 and r.written == 11
    assert r.view()["ts"].tolist() == list(range(3, 11))
    assert r.since_count(9)["ts"].tolist() == [9, 10]
    assert r.since_count(0)["ts"].tolist() == list(range(3, 11))  # fell behind: what is still held
    assert r.last(3)["ts"].tolist() == [8, 9, 10]
    assert r.since_ts(9.5)["ts"].tolist() == [10]


def test_batch_longer_than_capacity_keeps_tail_and_stays_consistent():
    r = RingBuffer(TRADE_DTYPE, 4)
    r.append(rows(0, 3))
    r.append(rows(3, 10))
    assert r.view()["ts"].tolist() == [9, 10, 11, 12]
    r.append(rows(13, 1))
    assert r.view()["ts"].tolist() == [10, 11, 12, 13]


@settings(max_examples=200)
@given(st.integers(1, 16), st.lists(st.integers(0, 40), max_size=20))
def test_ring_matches_a_list(cap, batches):
    r = RingBuffer(TRADE_DTYPE, cap)
    ref: list[float] = []
    t = 0
    for n in batches:
        r.append(rows(t, n))
        ref.extend(range(t, t + n))
        t += n
    assert r.view()["ts"].tolist() == ref[-cap:] if ref else len(r) == 0
    assert r.written == len(ref)


def test_capacity_power_of_two():
    assert capacity_for(10, 3600) == 65536
    assert capacity_for(0.001, 10) == 1024
