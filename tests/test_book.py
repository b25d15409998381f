"""The float L2 Book: apply/replace semantics, venue level lists, lot conversion, best-first arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liqmap.core.book import ASK, BID, Book


def test_apply_replace_levels_best_first():
    b = Book()
    b.replace([(100.0, 1.0), (99.0, 2.0), (98.0, 0.0)], [(101.0, 3.0), (102.0, 4.0)], ts=5.0)
    assert b.ts == 5.0 and len(b) == 4
    p, q = b.levels(BID)
    assert list(p) == [100.0, 99.0] and list(q) == [1.0, 2.0]
    p, q = b.levels(ASK, 1)
    assert list(p) == [101.0] and list(q) == [3.0]
    v = b.version
    b.apply(BID, [(100.0, 0.0), (99.5, 7.0)], ts=6.0)
    assert b.version == v + 1 and b.best_bid() == 99.5 and b.best_ask() == 101.0 and b.mid() == 100.25
    assert list(b.levels(BID)[0]) == [99.5, 99.0]  # cache invalidated by the version bump


def test_apply_raw_strings_extra_fields_and_lots():
    b = Book()
    b.apply_raw(BID, [["61800.20", "2.909"], ["61800.10", "0.000"]], 1.0)
    assert b.bids == {61800.2: 2.909}
    b.apply_raw(ASK, [["5.158", "129", "0", "2"], ["5.16", "0", "0", "0"]])  # OKX 4-field levels
    assert b.asks == {5.158: 129.0}
    pepe = Book()  # 1000PEPE: price per 1000 coins → per coin, size in lots → coins; ctVal-style scale
    pepe.apply_raw(BID, [["0.012", "5"]], mult=1000.0, size_scale=2.0)
    assert pepe.bids == {0.012 / 1000.0: 5 * 1000.0 * 2.0}
    pepe.apply_raw(BID, [["0.012", "0"]], mult=1000.0, size_scale=2.0)
    assert pepe.bids == {}


def test_empty_book():
    b = Book()
    assert b.best_bid() is None and b.mid() is None
    p, q = b.levels(ASK)
    assert len(p) == 0 and len(q) == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([BID, ASK]),
                          st.lists(st.tuples(st.integers(1, 200), st.sampled_from([0.0, 0.5, 1.0, 2.25])),
                                   max_size=8)), max_size=40))
def test_matches_a_plain_dict_model(ops):
    b = Book()
    model = {BID: {}, ASK: {}}
    for side, levels in ops:
        lv = [[str(p / 10), str(q)] for p, q in levels]
        b.apply_raw(side, lv)
        for p, q in levels:
            if q:
                model[side][p / 10] = q
            else:
                model[side].pop(p / 10, None)
    assert b.bids == model[BID] and b.asks == model[ASK]
    prices, sizes = b.levels(BID)
    assert list(prices) == sorted(model[BID], reverse=True)
    assert np.all(np.diff(b.levels(ASK)[0]) > 0)
