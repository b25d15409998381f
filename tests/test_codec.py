"""Snapshot codec: round trips within the quantization step, and refusals of bad files."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from liqmap.core import codec
from liqmap.core.codec import CodecError, decode, encode
from liqmap.core.snapshot import MapGrid, Snapshot


def _grid(values, **kw) -> MapGrid:
    values = np.asarray(values, dtype=np.float32)
    cols = values.shape[1] if values.ndim == 2 else 0
    base = dict(asset="BTC", mode="hybrid", timeframe="1m", step=25.0, row0=2600, col0=29_000_000, period=60,
                values=values, trace=np.linspace(66000, 66100, cols), venues=("binance", "okx"))
    base.update(kw)
    return MapGrid(**base)


def _assert_close(decoded: np.ndarray, original: np.ndarray) -> None:
    """Equal within the quantization step: exact zeros stay zero, others within the relative step."""
    original = np.asarray(original, dtype=np.float64)
    decoded = np.asarray(decoded, dtype=np.float64)
    assert decoded.shape == original.shape
    nz = original != 0
    assert (decoded[~nz] == 0).all()
    if nz.any():
        mag = np.abs(original[nz])
        _, meta = codec.quantize(original)
        tol = codec.quant_step(meta) + 2e-7  # + float32 rounding of the decoded value
        rel = np.abs(decoded[nz] - original[nz]) / mag
        assert rel.max() <= tol, (rel.max(), tol)
        assert (np.sign(decoded[nz]) == np.sign(original[nz])).all()


def test_empty_grid_round_trip():
    g = _grid(np.zeros((120, 240)))
    out = decode(encode(g))
    assert isinstance(out, MapGrid)
    assert out.values.shape == (120, 240) and not out.values.any()
    assert (out.asset, out.mode, out.timeframe, out.step, out.row0, out.col0, out.period, out.venues) == (
        g.asset, g.mode, g.timeframe, g.step, g.row0, g.col0, g.period, g.venues)
    np.testing.assert_array_equal(out.trace, g.trace)


def test_zero_size_grid_round_trip():
    g = _grid(np.zeros((0, 0)), trace=np.zeros(0))
    out = decode(encode(g))
    assert out.values.shape == (0, 0)


def test_sparse_grid_round_trip():
    rng = np.random.default_rng(1)
    v = np.zeros((400, 240))
    idx = rng.choice(v.size, 300, replace=False)
    v.flat[idx] = rng.lognormal(10, 2, 300)
    long = v * 0.6
    g = _grid(v, long=long, short=v - long, profile_long=rng.lognormal(12, 1, 400), profile_short=np.zeros(400))
    out = decode(encode(g))
    for name in ("values", "long", "short", "profile_long", "profile_short"):
        _assert_close(getattr(out, name), getattr(g, name))
    assert out.real is None


def test_dense_grid_round_trip():
    rng = np.random.default_rng(2)
    v = rng.gamma(2.0, 1e5, (300, 240))
    out = decode(encode(_grid(v)))
    _assert_close(out.values, v)


def test_huge_value_grid_round_trip():
    v = np.zeros((50, 60))
    v[0, 0] = 1e-6
    v[10, 10] = 3.4e38  # near float32 max
    v[20, 20] = 1.0
    v[30, 30] = 5e12
    out = decode(encode(_grid(v)))
    _assert_close(out.values, v.astype(np.float32))
    assert np.isfinite(out.values).all()


def test_negative_and_nonfinite_cells():
    v = np.array([[1.0, -2.0, 0.0], [np.nan, np.inf, -1e9]])
    out = decode(encode(_grid(v, trace=np.array([1.0, np.nan, 3.0]))))
    clean = np.where(np.isfinite(v), v, 0.0)
    _assert_close(out.values, clean)
    assert np.isnan(out.trace[1]) and out.trace[2] == 3.0


def test_snapshot_round_trip_keeps_reports_health_version():
    class Rec:
        def to_dict(self):
            return {"side": "bid", "price": 65800.0, "usd": 1.2e6}

    v = np.zeros((10, 12))
    v[3, 4] = 1234.5
    snap = Snapshot(version=42, created=1.7e9, grid=_grid(v), reports={"walls": [Rec()], "asymmetry": 0.3},
                    verdict="magnet above 66,200", health={"binance": {"state": "connected", "age": 0.4}},
                    source="DEMO", last_price=66012.5)
    out = decode(encode(snap))
    assert isinstance(out, Snapshot)
    assert out.version == 42 and out.created == 1.7e9 and out.source == "DEMO" and out.last_price == 66012.5
    assert out.reports == {"walls": [{"side": "bid", "price": 65800.0, "usd": 1.2e6}], "asymmetry": 0.3}
    assert out.health["binance"]["state"] == "connected"
    assert out.verdict == "magnet above 66,200"
    _assert_close(out.grid.values, v)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(0, 30), st.integers(0, 30)),
              elements=st.one_of(st.just(0.0), st.floats(1e-9, 1e30), st.floats(-1e30, -1e-9))))
def test_round_trip_property(v):
    out = decode(encode(_grid(v, trace=np.zeros(v.shape[1]))))
    _assert_close(out.values, v.astype(np.float32).astype(np.float64))


# ---------------------------------------------------------------- refusals


def _blob() -> bytes:
    v = np.zeros((20, 20))
    v[5, 5] = 10.0
    return encode(_grid(v))


def test_foreign_file_refused():
    with pytest.raises(CodecError, match="not a liqmap snapshot"):
        decode(b"PAR1" + b"\0" * 100)
    with pytest.raises(CodecError, match="not a liqmap snapshot"):
        decode(b"")


def test_old_and_new_format_refused():
    blob = bytearray(_blob())
    struct.pack_into("<H", blob, 4, 0)
    with pytest.raises(CodecError, match="older than"):
        decode(bytes(blob))
    struct.pack_into("<H", blob, 4, codec.FORMAT_VERSION + 1)
    with pytest.raises(CodecError, match="newer than"):
        decode(bytes(blob))


@pytest.mark.parametrize("cut", [2, 7, 20, -1, -10])
def test_truncated_file_refused(cut):
    blob = _blob()
    with pytest.raises(CodecError, match="truncated|damaged|not a liqmap"):
        decode(blob[:cut])


def test_flipped_body_byte_refused():
    blob = bytearray(_blob())
    blob[-3] ^= 0xFF
    with pytest.raises(CodecError, match="checksum"):
        decode(bytes(blob))


def test_error_message_is_one_line():
    try:
        decode(_blob()[:-5])
    except CodecError as e:
        assert "\n" not in str(e)
    else:  # pragma: no cover
        raise AssertionError("truncated file decoded")


# ---------------------------------------------------------------- layers derived instead of stored


def test_disjoint_sides_store_one_layer_and_a_mask():
    rng = np.random.default_rng(3)
    long = np.zeros((60, 50))
    short = np.zeros((60, 50))
    long[:30] = rng.lognormal(10, 1, (30, 50))  # longs below price, shorts above: no shared cell
    short[30:] = rng.lognormal(10, 1, (30, 50))
    long32, short32 = long.astype(np.float32), short.astype(np.float32)
    g = _grid(long32 + short32, long=long32, short=short32)
    blob = encode(g)
    head = codec.header_only(blob)
    assert head["derive"] == {"sides": "values"} and set(head["arrays"]) == {"values", "side", "trace"}
    out = decode(blob)
    _assert_close(out.long, long32)
    _assert_close(out.short, short32)
    assert (out.long[30:] == 0).all() and (out.short[:30] == 0).all()


def test_overlapping_sides_derive_values_as_sum():
    rng = np.random.default_rng(4)
    long = rng.lognormal(10, 1, (20, 30)).astype(np.float32)
    short = rng.lognormal(9, 1, (20, 30)).astype(np.float32)
    g = _grid(long + short, long=long, short=short)
    blob = encode(g)
    assert codec.header_only(blob)["derive"] == {"values": "sum"}
    out = decode(blob)
    _assert_close(out.long, long)
    _assert_close(out.short, short)
    rel = np.abs(out.values - (long + short)) / (long + short)
    assert rel.max() <= 0.0101


def test_heatmap_values_and_source_are_derived():
    from liqmap.core.grids.layers import normalize, smooth_rows

    rng = np.random.default_rng(5)
    lo = np.zeros((80, 40))
    sh = np.zeros((80, 40))
    lo[:40] = rng.lognormal(11, 1.5, (40, 40)) * (rng.random((40, 40)) < 0.6)
    sh[40:] = rng.lognormal(11, 1.5, (40, 40)) * (rng.random((40, 40)) < 0.6)
    sm = smooth_rows(np.stack((lo, sh)), 1.5)
    vals = normalize(sm[0] + sm[1], 99.0, 3.0)
    g = _grid(vals, mode="heatmap", long=sm[0].astype(np.float32), short=sm[1].astype(np.float32))
    plain = encode(g)
    derived = encode(g, heatmap=(99.0, 3.0), heatmap_source=(lo, sh, 1.5))
    head = codec.header_only(derived)
    assert head["derive"]["values"] == "normalize" and head["derive"]["sides"] == "source"
    assert len(derived) < len(plain)
    out = decode(derived)
    _assert_close(out.long, g.long)  # smoothing with positive weights keeps the relative precision
    _assert_close(out.short, g.short)
    assert np.abs(out.values - vals).max() < 0.01  # a 0-1 display value, far below one colour level
    # A source that does not reproduce the grid is not used.
    wrong = encode(g, heatmap=(99.0, 3.0), heatmap_source=(lo * 2, sh, 1.5))
    assert codec.header_only(wrong)["derive"].get("sides") != "source"


@pytest.mark.parametrize("precision", [0.001, 0.005, 0.02])
def test_precision_is_the_relative_error_bound(precision):
    rng = np.random.default_rng(6)
    v = rng.lognormal(8, 3, (50, 50)) * (rng.random((50, 50)) < 0.5)
    out = decode(encode(_grid(v), precision=precision))
    nz = v != 0
    rel = np.abs(out.values[nz] - v[nz]) / v[nz]
    assert rel.max() <= precision * 1.0001 + 1e-7
    assert (out.values[~nz] == 0).all()
    with pytest.raises(ValueError):
        encode(_grid(v), precision=0.0)


def test_zlib_body_round_trip():
    v = np.zeros((10, 10))
    v[2, 3] = 5.0
    blob = encode(_grid(v), compressor="zlib")
    assert codec.header_only(blob)["compressor"] == "zlib"
    _assert_close(decode(blob).values, v)
