"""Snapshot files: quantized, compressed grids behind a small orjson header.

Why quantize: a map cell is read as a colour on a log ramp (3 decades over a few hundred levels, so one
level is ~2.7 % of value) or as a rounded "$1.2M", while the model behind it is uncertain by tens of
percent. Storing each cell to within ``precision`` (default 1 % relative, i.e. below one colour level) on a
log scale costs a fraction of the bits of float32, and the exact history lives in parquet anyway. Log scale
(not linear) because cells span many orders of magnitude: a linear scale tuned to a $50M cascade would round
every $20k liquidation to zero.

File layout (all integers little-endian)::

    b"LQMS"            magic, 4 bytes: refuses foreign files at once
    u16  format        FORMAT_VERSION; older or newer formats are refused with a clear message
    u32  header_len
    header             orjson: what the grid is (asset, mode, timeframe, axes, version, ...) and how
                       each array is encoded (shape, scale, predictor, byte offset, length) + crc32 of the body
    u32  body_len
    body               lzma (or zlib, per header) compressed concatenation of the encoded arrays

Encodings per array:
- ``logq``: code 0 means exactly 0; code q ≥ 1 means |v| = lo · e^((q−1)·step), ``step`` ≤ ln(1 + 2·precision),
  so the relative error is at most ``e^(step/2) − 1`` ≤ precision (wider steps only when the value range would
  not fit 16 bits — recorded in the header). Negative cells keep their sign in a packed bit plane. Before
  compression the codes go through a predictor chosen per array (whichever compresses best): ``none``,
  ``time`` (difference to the previous column where both are non-zero: a model level decays and is trimmed
  a little per column) or ``rows`` (difference to the row below: the heatmap is smooth in price), with a
  packed non-zero mask; then a byte shuffle (high bytes, then low bytes).
- ``f64``: raw float64 (the price trace: a few hundred values where full precision matters).
- Layers that are functions of others are not stored twice: when ``values == long + short`` (Raw, Synthetic,
  Hybrid) only ``long`` and ``short`` are stored; when the two sides never share a cell (the usual case:
  longs sit below price, shorts above) one layer and a one-bit side mask replace them; the heatmap's 0–1
  values are recomputed from its layers when the encoder is told the normalization and it reproduces them.

``decode`` of a foreign, old, truncated or damaged file raises ``CodecError`` with one line naming the
problem; callers (the store) add the file name.
"""

from __future__ import annotations

import lzma
import math
import struct
import zlib
from dataclasses import fields
from typing import Any

import numpy as np
import orjson

from .snapshot import MapGrid, Snapshot

MAGIC = b"LQMS"
FORMAT_VERSION = 2
_PRE = struct.Struct("<4sHI")  # magic, format, header_len
_U32 = struct.Struct("<I")
Q_MAX = 65535
DEFAULT_PRECISION = 0.01  # max relative error per cell

# Optional 2-D / 1-D float layers of a MapGrid, in file order.
_LAYERS_2D = ("values", "long", "short", "real", "real_long", "resting")
_LAYERS_1D = ("profile_long", "profile_short", "forecast")


class CodecError(ValueError):
    """A snapshot file that cannot be read; the message is one line saying why."""


# ---------------------------------------------------------------- quantization


def _shuffle(q: np.ndarray) -> bytes:
    planes = np.ascontiguousarray(q, dtype="<u2").ravel().view(np.uint8).reshape(-1, 2)
    return planes[:, 1].tobytes() + planes[:, 0].tobytes()


def _unshuffle(buf: memoryview, n: int) -> np.ndarray:
    if len(buf) < 2 * n:
        raise CodecError("array data shorter than its shape says")
    hi = np.frombuffer(buf, dtype=np.uint8, count=n, offset=0)
    lo = np.frombuffer(buf, dtype=np.uint8, count=n, offset=n)
    return (hi.astype(np.uint16) << 8) | lo


_M = Q_MAX  # residual arithmetic is modulo 65535 on 0-based codes, so every residual fits 1..65535


def _predict(q: np.ndarray, pred: str) -> np.ndarray:
    """Residuals of codes ``q`` (int64, 0 = empty cell) under a predictor, as uint16.

    0 stays "empty"; the first non-zero cell of a run along the axis keeps its code; every later one stores
    ``zigzag(wrapped difference to its predecessor) + 1`` — small changes give small numbers (high byte 0),
    and the decoder tells empty cells apart without a separate mask.
    """
    if pred == "none" or q.ndim != 2:
        return q.astype(np.uint16)
    a = q if pred == "time" else q.T
    out = a.copy()
    both = (a[:, 1:] > 0) & (a[:, :-1] > 0)
    d = np.mod(a[:, 1:] - a[:, :-1] + 32767, _M) - 32767  # in [-32767, 32767]
    zz = np.where(d >= 0, 2 * d, -2 * d - 1) + 1  # 1 .. 65535
    out[:, 1:] = np.where(both, zz, a[:, 1:])
    out = out if pred == "time" else out.T
    return out.astype(np.uint16)


def _unpredict(r: np.ndarray, pred: str) -> np.ndarray:
    """Inverse of ``_predict``: within each run of non-zero cells, a cumulative sum modulo 65535.

    Every step is first made non-negative (adding 65535 changes nothing modulo 65535), so the running sum is
    non-decreasing and "the sum just before this run began" is a plain running maximum — no index gathers.
    """
    if pred == "none" or r.ndim != 2:
        return r.astype(np.int64)
    a = (r if pred == "time" else r.T).astype(np.int32)
    m = a > 0
    start = m.copy()
    start[:, 1:] &= ~m[:, :-1]  # first cell of each run: an absolute code
    z = a - 1
    d = (z >> 1) ^ -(z & 1)  # zigzag back to a signed difference
    d += (d < 0) * np.int32(_M)
    step = np.where(start, z, d)
    step[~m] = 0
    cs = np.cumsum(step, axis=1, dtype=np.int32)  # ≤ 240 × 65534: fits
    base = np.maximum.accumulate(np.where(start, cs - step, 0), axis=1)
    q = (cs - base) % _M + 1
    q[~m] = 0
    return q if pred == "time" else q.T


def quantize(a: np.ndarray, precision: float = DEFAULT_PRECISION, preds=("none", "time", "rows")
             ) -> tuple[bytes, dict[str, Any]]:
    """Encode a float array as log-scaled codes (+ mask and sign planes as needed). Returns bytes, meta."""
    a = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        # NaN/inf have no place in a map cell; they are stored as 0 rather than poisoning the scale.
        a = np.where(finite, a, 0.0)
    mag = np.abs(a)
    nz = mag > 0
    meta: dict[str, Any] = {"enc": "logq", "shape": list(a.shape)}
    if not nz.any():
        return b"", meta | {"empty": True}
    lo = float(mag[nz].min())
    hi = float(mag.max())
    span = math.log(hi / lo) if hi > lo else 0.0
    step = max(math.log1p(2 * precision), span / (Q_MAX - 1))
    q = np.zeros(a.shape, dtype=np.int64)
    q[nz] = np.clip(np.rint(np.log(mag[nz] / lo) / step), 0, Q_MAX - 1).astype(np.int64) + 1
    best = None
    for pred in preds if a.ndim == 2 else ("none",):
        body = _shuffle(_predict(q, pred))
        size = len(zlib.compress(body, 1))  # a quick proxy for what the final compressor will make of it
        if best is None or size < best[0]:
            best = (size, pred, body)
    _, pred, out = best
    signed = bool((a < 0).any())
    if signed:
        out += np.packbits((a < 0).ravel()).tobytes()
    meta.update(lo=lo, step=step, pred=pred, signed=signed)
    return out, meta


def dequantize(buf: memoryview, meta: dict[str, Any]) -> np.ndarray:
    shape = tuple(meta["shape"])
    n = int(np.prod(shape)) if shape else 1
    if meta.get("empty"):
        return np.zeros(shape, dtype=np.float32)
    d = _unshuffle(buf, n).reshape(shape)
    pos = 2 * n
    nbits = (n + 7) // 8
    q = _unpredict(d, meta.get("pred", "none"))
    lo, step = float(meta["lo"]), float(meta["step"])
    # A lookup table turns the codes into values once, then one gather: faster than exp per cell.
    top = int(q.max()) if q.size else 0
    table = np.zeros(top + 1, dtype=np.float64)
    if top:
        table[1:] = lo * np.exp(np.arange(top, dtype=np.float64) * step)
    out = table.astype(np.float32)[q]
    if meta.get("signed"):
        if len(buf) < pos + nbits:
            raise CodecError("sign plane shorter than its shape says")
        bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8, count=nbits, offset=pos), count=n)
        out = np.where(bits.astype(bool).reshape(shape), -out, out)
    return out.reshape(shape)


def quant_step(meta: dict[str, Any]) -> float:
    """Largest relative error of a ``logq`` array (half a code step); 0 for exact encodings."""
    if meta.get("enc") != "logq" or meta.get("empty"):
        return 0.0
    return math.exp(meta["step"] / 2) - 1


# ---------------------------------------------------------------- encode / decode


def _json_default(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} in a snapshot header")


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _layers_to_store(grid: MapGrid, heatmap: tuple[float, float] | None, source=None
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any], np.ndarray | None]:
    """Which layers go in the file, and how the others are derived on decode.

    Returns (arrays to store, derivation, side mask). Derivation keys: ``values`` = ``"sum"`` (long + short)
    or ``"normalize"`` (the heatmap's 0–1 scaling of long + short, with ``clip_pct``/``decades``); ``sides`` =
    ``"values"`` or ``"sides"``: long/short are that layer on either side of a one-bit mask (long where set).
    """
    layers = {n: getattr(grid, n) for n in _LAYERS_2D + _LAYERS_1D if getattr(grid, n) is not None}
    lo, sh, v = layers.get("long"), layers.get("short"), layers.get("values")
    derive: dict[str, Any] = {}
    if lo is None or sh is None or v is None or lo.shape != v.shape or sh.shape != v.shape:
        return layers, derive, None
    lo32, sh32, v32 = (np.asarray(x, dtype=np.float32) for x in (lo, sh, v))
    disjoint = bool((lo32 >= 0).all() and (sh32 >= 0).all() and not ((lo32 > 0) & (sh32 > 0)).any())
    total = lo32 + sh32
    if np.array_equal(v32, total):
        if disjoint:
            del layers["long"], layers["short"]
            derive["sides"] = "values"
            return layers, derive, lo32 > 0
        del layers["values"]
        derive["values"] = "sum"
        return layers, derive, None
    side = None
    if source is not None and grid.mode == "heatmap":
        # The heatmap's layers are the model's layers smoothed along price: store those (they compress like
        # the Synthetic grid) and smooth again on decode, when they reproduce the grid.
        from .grids.layers import smooth_rows

        slo, ssh, sigma = np.asarray(source[0], np.float64), np.asarray(source[1], np.float64), float(source[2])
        if slo.shape == lo32.shape and ssh.shape == lo32.shape and (slo >= 0).all() and (ssh >= 0).all() \
                and not ((slo > 0) & (ssh > 0)).any():
            sm = smooth_rows(np.stack((slo, ssh)), sigma)
            if np.allclose(sm[0], lo32, rtol=1e-5, atol=1e-3) and np.allclose(sm[1], sh32, rtol=1e-5, atol=1e-3):
                del layers["long"], layers["short"]
                layers["source"] = slo + ssh
                derive["sides"] = "source"
                derive["sigma"] = sigma
                side = slo > 0
                disjoint = False
    if disjoint:
        del layers["long"], layers["short"]
        layers["sides"] = total
        derive["sides"] = "sides"
        side = lo32 > 0
    if heatmap is not None and grid.mode == "heatmap":
        from .grids.layers import normalize

        clip_pct, decades = float(heatmap[0]), float(heatmap[1])
        if np.allclose(normalize(total, clip_pct, decades), v32, rtol=0, atol=1e-6):
            del layers["values"]
            derive["values"] = "normalize"
            derive["clip_pct"], derive["decades"] = clip_pct, decades
    return layers, derive, side


def encode(obj: Snapshot | MapGrid, precision: float = DEFAULT_PRECISION, compressor: str = "lzma",
           heatmap: tuple[float, float] | None = None, heatmap_source=None) -> bytes:
    """Serialize a Snapshot (grid + reports + health + version) or a bare MapGrid.

    ``precision``: the largest relative error of any stored cell (default 1 %). ``compressor``: ``lzma``
    (smaller) or ``zlib`` (faster to write). ``heatmap``: the (clip_pct, decades) the Synthetic Heatmap was
    normalized with (``GridParams``); when given and they reproduce the grid's values, the values layer is
    recomputed on decode instead of stored (its error then stays far below one colour level).
    ``heatmap_source``: (long, short, sigma) — the model layers a heatmap grid was smoothed from; stored
    instead of the smoothed layers when smoothing them reproduces the grid (smoothing with positive weights
    keeps every cell within the same relative precision).
    """
    if not 0 < precision < 0.5:
        raise ValueError(f"precision must be in (0, 0.5), got {precision!r}")
    if isinstance(obj, Snapshot):
        grid = obj.grid
        head: dict[str, Any] = {
            "kind": "snapshot",
            "version": obj.version,
            "created": obj.created,
            "reports": obj.reports,
            "verdict": obj.verdict,
            "health": obj.health,
            "source": obj.source,
            "last_price": obj.last_price,
        }
    elif isinstance(obj, MapGrid):
        grid = obj
        head = {"kind": "grid"}
    else:
        raise TypeError(f"encode takes a Snapshot or a MapGrid, not {type(obj).__name__}")
    head.update(
        asset=grid.asset, mode=grid.mode, timeframe=grid.timeframe, step=grid.step, row0=grid.row0,
        col0=grid.col0, period=grid.period, venues=list(grid.venues), precision=precision,
    )
    parts: list[bytes] = []
    arrays: dict[str, dict[str, Any]] = {}
    offset = 0
    layers, derive, side = _layers_to_store(grid, heatmap, heatmap_source)
    for name, a in layers.items():
        data, meta = quantize(a, precision)
        meta.update(offset=offset, length=len(data))
        arrays[name] = meta
        parts.append(data)
        offset += len(data)
    if side is not None:
        bits = np.packbits(side.ravel()).tobytes()
        arrays["side"] = {"enc": "bits", "shape": list(side.shape), "offset": offset, "length": len(bits)}
        parts.append(bits)
        offset += len(bits)
    trace = np.ascontiguousarray(grid.trace, dtype="<f8")
    arrays["trace"] = {"enc": "f64", "shape": list(trace.shape), "offset": offset, "length": trace.nbytes}
    parts.append(trace.tobytes())
    raw = b"".join(parts)
    if compressor == "lzma":
        body = lzma.compress(raw, format=lzma.FORMAT_XZ, preset=6)
    elif compressor == "zlib":
        body = zlib.compress(raw, 6)
    else:
        raise ValueError(f"compressor must be lzma or zlib, got {compressor!r}")
    head["derive"] = derive
    head["compressor"] = compressor
    head["arrays"] = arrays
    head["raw_len"] = len(raw)
    head["crc32"] = zlib.crc32(body)
    hbytes = _dumps(head)
    return b"".join((_PRE.pack(MAGIC, FORMAT_VERSION, len(hbytes)), hbytes, _U32.pack(len(body)), body))


def read_header(data: bytes | memoryview) -> tuple[dict[str, Any], memoryview]:
    """Check magic/format/lengths and parse the header; returns (header, compressed body)."""
    mv = memoryview(data)
    if len(mv) < _PRE.size:
        if bytes(mv[:4]) == MAGIC[: len(mv)] and len(mv) > 0:
            raise CodecError("truncated snapshot (file ends inside the preamble)")
        raise CodecError("not a liqmap snapshot (file too short)")
    magic, fmt, hlen = _PRE.unpack_from(mv, 0)
    if magic != MAGIC:
        raise CodecError("not a liqmap snapshot (bad magic number)")
    if fmt != FORMAT_VERSION:
        age = "older" if fmt < FORMAT_VERSION else "newer"
        raise CodecError(f"snapshot format {fmt} is {age} than this liqmap's format {FORMAT_VERSION}; rebuild it")
    pos = _PRE.size
    if len(mv) < pos + hlen + _U32.size:
        raise CodecError("truncated snapshot (file ends inside the header)")
    try:
        head = orjson.loads(mv[pos : pos + hlen])
    except orjson.JSONDecodeError as e:
        raise CodecError(f"damaged snapshot header ({e})") from None
    if not isinstance(head, dict) or "arrays" not in head:
        raise CodecError("damaged snapshot header (no array table)")
    pos += hlen
    (blen,) = _U32.unpack_from(mv, pos)
    pos += _U32.size
    body = mv[pos:]
    if len(body) < blen:
        raise CodecError(f"truncated snapshot (body has {len(body)} of {blen} bytes)")
    body = body[:blen]
    if zlib.crc32(body) != head.get("crc32"):
        raise CodecError("damaged snapshot (checksum mismatch)")
    return head, body


def decode(data: bytes | memoryview) -> Snapshot | MapGrid:
    """Inverse of ``encode``: a Snapshot if one was encoded, else a MapGrid. Raises ``CodecError``."""
    head, body = read_header(data)
    try:
        if head.get("compressor", "zlib") == "lzma":
            raw = memoryview(lzma.decompress(body))
        else:
            raw = memoryview(zlib.decompress(body))
    except (zlib.error, lzma.LZMAError) as e:
        raise CodecError(f"damaged snapshot body ({e})") from None
    if len(raw) != head.get("raw_len"):
        raise CodecError("damaged snapshot body (wrong decompressed size)")
    try:
        layers: dict[str, np.ndarray] = {}
        side = None
        for name, meta in head["arrays"].items():
            chunk = raw[meta["offset"] : meta["offset"] + meta["length"]]
            if meta["enc"] == "logq":
                layers[name] = dequantize(chunk, meta)
            elif meta["enc"] == "f64":
                layers[name] = np.frombuffer(chunk, dtype="<f8").reshape(meta["shape"]).copy()
            elif meta["enc"] == "bits":
                n = int(np.prod(meta["shape"]))
                side = np.unpackbits(np.frombuffer(chunk, dtype=np.uint8), count=n).astype(bool)
                side = side.reshape(meta["shape"])
            else:
                raise CodecError(f"unknown array encoding {meta['enc']!r}")
        derive = head.get("derive") or {}
        if not isinstance(derive, dict):
            raise CodecError(f"unknown layer derivation {derive!r}")
        src = derive.get("sides")
        if src is not None:
            base = layers.pop(src) if src in ("sides", "source") else layers[src]
            zero = np.zeros((), dtype=np.float32)
            layers["long"] = np.where(side, base, zero)
            layers["short"] = np.where(side, zero, base)
            if src == "source":
                from .grids.layers import smooth_rows

                sm = smooth_rows(np.stack((layers["long"], layers["short"])), float(derive["sigma"]))
                layers["long"], layers["short"] = sm[0].astype(np.float32), sm[1].astype(np.float32)
        how = derive.get("values")
        if how == "sum":
            layers["values"] = layers["long"] + layers["short"]
        elif how == "normalize":
            from .grids.layers import normalize

            layers["values"] = normalize(layers["long"] + layers["short"], float(derive["clip_pct"]),
                                         float(derive["decades"]))
        elif how is not None:
            raise CodecError(f"unknown layer derivation {how!r}")
        known = {f.name for f in fields(MapGrid)}
        grid = MapGrid(
            asset=head["asset"], mode=head["mode"], timeframe=head["timeframe"], step=float(head["step"]),
            row0=int(head["row0"]), col0=int(head["col0"]), period=int(head["period"]),
            venues=tuple(head.get("venues", ())),
            **{k: v for k, v in layers.items() if k in known},
        )
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise CodecError(f"damaged snapshot header ({type(e).__name__}: {e})") from None
    if head.get("kind") != "snapshot":
        return grid
    return Snapshot(
        version=int(head["version"]), created=float(head["created"]), grid=grid,
        reports=head.get("reports") or {}, verdict=head.get("verdict") or "",
        health=head.get("health") or {}, source=head.get("source") or "LIVE", last_price=head.get("last_price"),
    )


def header_only(data: bytes) -> dict[str, Any]:
    """The header without decoding the arrays (for listings and export)."""
    head, _ = read_header(data)
    return head
