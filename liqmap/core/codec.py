"""Snapshot files: quantized, compressed grids behind a small orjson header.

Why quantize: a map cell is read as a colour on a ramp of at most a few hundred levels, so 16 bits per
cell on a log scale is far below what the eye (or a report) can tell apart, and uint16 planes compress
much better than float32. Log scale (not linear) because cells span many orders of magnitude: a linear
scale tuned to a $50M cascade would round every $20k liquidation to zero.

File layout (all integers little-endian)::

    b"LQMS"            magic, 4 bytes: refuses foreign files at once
    u16  format        FORMAT_VERSION; older or newer formats are refused with a clear message
    u32  header_len
    header             orjson: what the grid is (asset, mode, timeframe, axes, version, ...) and how
                       each array is encoded (shape, scale, byte offset, length) + crc32 of the body
    u32  body_len
    body               zlib-compressed concatenation of the encoded arrays

Encodings per array:
- ``log16``: 0 means exactly 0; q in 1..65535 means |v| = lo · (hi/lo)^((q-1)/65534). The relative error is
  at most half a step, ``(hi/lo)^(1/65534) − 1`` ≈ 4e-4 even for a 1e12 dynamic range. Negative cells keep
  their sign in a packed bit plane (absent when none are negative). Planes are byte-shuffled (all high bytes,
  then all low bytes) because the high bytes are long runs that zlib folds away.
- ``f64``: raw float64 (the price trace: a few hundred values where full precision matters).

``decode`` of a foreign, old, truncated or damaged file raises ``CodecError`` with one line naming the
problem; callers (the store) add the file name.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import fields
from typing import Any

import numpy as np
import orjson

from .snapshot import MapGrid, Snapshot

MAGIC = b"LQMS"
FORMAT_VERSION = 1
_PRE = struct.Struct("<4sHI")  # magic, format, header_len
_U32 = struct.Struct("<I")
Q_MAX = 65535
Q_STEPS = Q_MAX - 1  # codes 1..65535 span [lo, hi]; 0 is exact zero

# Optional 2-D / 1-D float layers of a MapGrid, in file order.
_LAYERS_2D = ("values", "long", "short", "real")
_LAYERS_1D = ("profile_long", "profile_short")


class CodecError(ValueError):
    """A snapshot file that cannot be read; the message is one line saying why."""


# ---------------------------------------------------------------- quantization


def quantize_log16(a: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """Encode a float array as log-scaled uint16 codes (+ a sign plane if needed). Returns bytes, meta."""
    a = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        # NaN/inf have no place in a map cell; they are stored as 0 rather than poisoning the scale.
        a = np.where(finite, a, 0.0)
    mag = np.abs(a)
    nz = mag > 0
    meta: dict[str, Any] = {"enc": "log16", "shape": list(a.shape)}
    if not nz.any():
        meta.update(lo=0.0, hi=0.0, signed=False)
        return np.zeros(0, dtype=np.uint8).tobytes(), meta | {"empty": True}
    lo = float(mag[nz].min())
    hi = float(mag.max())
    q = np.zeros(a.shape, dtype=np.uint16)
    if hi > lo:
        span = math.log(hi / lo)
        codes = np.rint(np.log(mag[nz] / lo) * (Q_STEPS / span)) + 1
        q[nz] = np.clip(codes, 1, Q_MAX).astype(np.uint16)
    else:
        q[nz] = 1
    signed = bool((a < 0).any())
    raw = q.ravel()
    # Byte shuffle: high-byte plane then low-byte plane.
    planes = raw.view(np.uint8).reshape(-1, 2)
    out = [planes[:, 1].tobytes(), planes[:, 0].tobytes()]
    if signed:
        out.append(np.packbits((a < 0).ravel()).tobytes())
    meta.update(lo=lo, hi=hi, signed=signed)
    return b"".join(out), meta


def dequantize_log16(buf: memoryview, meta: dict[str, Any]) -> np.ndarray:
    shape = tuple(meta["shape"])
    n = int(np.prod(shape)) if shape else 1
    if meta.get("empty"):
        return np.zeros(shape, dtype=np.float32)
    if len(buf) < 2 * n:
        raise CodecError("array data shorter than its shape says")
    hi_b = np.frombuffer(buf, dtype=np.uint8, count=n, offset=0)
    lo_b = np.frombuffer(buf, dtype=np.uint8, count=n, offset=n)
    q = (hi_b.astype(np.uint16) << 8) | lo_b
    lo, hi = float(meta["lo"]), float(meta["hi"])
    # A lookup table turns 65536 possible codes into values once, then one gather: faster than exp per cell.
    if hi > lo:
        table = lo * np.exp(np.arange(-1, Q_MAX, dtype=np.float64) * (math.log(hi / lo) / Q_STEPS))
    else:
        table = np.full(Q_MAX + 1, lo, dtype=np.float64)
    table[0] = 0.0
    out = table.astype(np.float32)[q]
    if meta.get("signed"):
        nbytes = (n + 7) // 8
        if len(buf) < 2 * n + nbytes:
            raise CodecError("sign plane shorter than its shape says")
        bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=2 * n), count=n)
        out = np.where(bits.astype(bool), -out, out)
    return out.reshape(shape)


def quant_step(meta: dict[str, Any]) -> float:
    """Largest relative error of a ``log16`` array (half a code step); 0 for exact encodings."""
    if meta.get("enc") != "log16" or meta.get("empty") or not meta["hi"] > meta["lo"]:
        return 0.0
    return math.exp(math.log(meta["hi"] / meta["lo"]) / Q_STEPS / 2) - 1


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


def encode(obj: Snapshot | MapGrid, level: int = 6) -> bytes:
    """Serialize a Snapshot (grid + reports + health + version) or a bare MapGrid."""
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
        col0=grid.col0, period=grid.period, venues=list(grid.venues),
    )
    parts: list[bytes] = []
    arrays: dict[str, dict[str, Any]] = {}
    offset = 0
    for name in _LAYERS_2D + _LAYERS_1D:
        a = getattr(grid, name)
        if a is None:
            continue
        data, meta = quantize_log16(a)
        meta.update(offset=offset, length=len(data))
        arrays[name] = meta
        parts.append(data)
        offset += len(data)
    trace = np.ascontiguousarray(grid.trace, dtype="<f8")
    arrays["trace"] = {"enc": "f64", "shape": list(trace.shape), "offset": offset, "length": trace.nbytes}
    parts.append(trace.tobytes())
    raw = b"".join(parts)
    body = zlib.compress(raw, level)
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
        raw = memoryview(zlib.decompress(body))
    except zlib.error as e:
        raise CodecError(f"damaged snapshot body ({e})") from None
    if len(raw) != head.get("raw_len"):
        raise CodecError("damaged snapshot body (wrong decompressed size)")
    try:
        layers: dict[str, np.ndarray | None] = {}
        for name, meta in head["arrays"].items():
            chunk = raw[meta["offset"] : meta["offset"] + meta["length"]]
            if meta["enc"] == "log16":
                layers[name] = dequantize_log16(chunk, meta)
            elif meta["enc"] == "f64":
                layers[name] = np.frombuffer(chunk, dtype="<f8").reshape(meta["shape"]).copy()
            else:
                raise CodecError(f"unknown array encoding {meta['enc']!r}")
        known = {f.name for f in fields(MapGrid)}
        grid = MapGrid(
            asset=head["asset"], mode=head["mode"], timeframe=head["timeframe"], step=float(head["step"]),
            row0=int(head["row0"]), col0=int(head["col0"]), period=int(head["period"]),
            venues=tuple(head.get("venues", ())),
            **{k: v for k, v in layers.items() if k in known},
        )
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError) as e:
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
