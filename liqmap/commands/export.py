"""``liqmap export OUT``: history and grids as parquet, CSV or NDJSON.

``--what liquidations|open_interest|sweeps|absorptions|walls`` reads the parquet history under the data dir
(every asset unless ``--asset`` is given); ``--what grid`` reads the latest snapshot of ``--asset``,
``--mode`` and ``--timeframe`` and writes one row per non-empty cell (column time, bucket price, values,
long/short/real layers) — a long table that any dataframe tool can pivot back into a grid.
``--since``/``--until`` take ISO 8601 (``2024-08-08T23:55:00Z``) or epoch seconds.

The output is written to a temp file beside OUT and renamed, so an interrupted export never leaves half a
file under the name asked for. Nothing to export is an error (exit 1) with one line saying what was missing.
"""

from __future__ import annotations

import os
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from ..core.events import ASK, BID, BUY, LONG, PRICE_KIND_NAMES, SELL, SHORT
from ..core.snapshot import MapGrid, Snapshot
from ..core.store import Store, _open_new

HISTORY = ("liquidations", "open_interest", "sweeps", "absorptions", "walls", "forecast_scores", "alerts",
           "reach_scores")


class ExportError(Exception):
    """A one-line reason the export cannot be done."""


def parse_time(text: str | None, what: str) -> float | None:
    """ISO 8601 (naive means UTC) or epoch seconds (milliseconds accepted when clearly ms)."""
    if text is None or text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        pass
    else:
        return v / 1000.0 if v > 1e11 else v
    try:
        d = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExportError(f"--{what}: {text!r} is neither ISO 8601 nor epoch seconds") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp()


def grid_frame(snap: Snapshot | MapGrid) -> pl.DataFrame:
    """A grid as a long table: one row per cell that holds anything, plus the trace price of its column."""
    g = snap.grid if isinstance(snap, Snapshot) else snap
    nrows, ncols = g.values.shape
    layers = {"value": g.values}
    for name in ("long", "short", "real"):
        a = getattr(g, name)
        if a is not None:
            layers[name] = a
    any_nz = np.zeros((nrows, ncols), dtype=bool)
    for a in layers.values():
        any_nz |= np.asarray(a) != 0
    r, c = np.nonzero(any_nz)
    cols: dict[str, object] = {
        "ts": (g.col0 + c).astype(np.float64) * g.period,
        "price": (g.row0 + r).astype(np.float64) * g.step,
        "bucket": (g.row0 + r).astype(np.int64),
    }
    for name, a in layers.items():
        cols[name] = np.asarray(a, dtype=np.float64)[r, c]
    cols["trace"] = np.asarray(g.trace, dtype=np.float64)[c] if len(g.trace) == ncols else np.full(len(r), np.nan)
    df = pl.DataFrame(cols)
    return df.with_columns(pl.lit(g.asset).alias("asset"), pl.lit(g.mode).alias("mode"),
                           pl.lit(g.timeframe).alias("timeframe"), pl.lit(g.step).alias("step"),
                           pl.lit(",".join(g.venues)).alias("venues")).sort(["ts", "price"])


def _find_snapshot(store: Store, asset: str, mode: str, tf: str) -> Snapshot:
    snaps = [s for s in store.load_snapshots()
             if s.grid.asset == asset and s.grid.mode == mode and s.grid.timeframe == tf]
    if not snaps:
        raise ExportError(f"no {mode} {tf} snapshot for {asset} in {store.snapshot_dir} "
                          "(run `liqmap collect` or the app first)")
    # Prefer the all-venue view, then the newest.
    snaps.sort(key=lambda s: (len(s.grid.venues), s.created), reverse=True)
    return snaps[0]


def collect_frame(store: Store, what: str, asset: str | None, mode: str, tf: str,
                  since: float | None, until: float | None) -> pl.DataFrame:
    if what == "grid":
        if asset is None:
            raise ExportError("--what grid needs --asset")
        df = grid_frame(_find_snapshot(store, asset, mode, tf))
        if since is not None:
            df = df.filter(pl.col("ts") >= since)
        if until is not None:
            df = df.filter(pl.col("ts") < until)
        return df
    if what not in HISTORY:
        raise ExportError(f"--what {what!r} is not one of {', '.join(HISTORY + ('grid',))}")
    df = store.load(what, asset, since=since, until=until)
    if df.height == 0:
        scope = asset or "any asset"
        raise ExportError(f"no {what} stored for {scope} in {store.history_dir}"
                          + (" in that time range" if since is not None or until is not None else ""))
    return with_text_codes(what, df)


# The store keeps sides and price kinds as small integer codes (liqmap.core.events); a file leaves as words.
SIDE_WORDS = {"liquidations": {LONG: "long", SHORT: "short"}, "walls": {BID: "bid", ASK: "ask"},
              "absorptions": {BID: "bid", ASK: "ask"}, "sweeps": {BUY: "buy", SELL: "sell"}}


def with_text_codes(what: str, df: pl.DataFrame) -> pl.DataFrame:
    """Integer ``side`` and ``price_kind`` columns as the words they stand for."""
    out = []
    words = SIDE_WORDS.get(what)
    if words and "side" in df.columns and df.schema["side"].is_integer():
        out.append(pl.col("side").replace_strict(words, default=None, return_dtype=pl.String).alias("side"))
    if "price_kind" in df.columns and df.schema["price_kind"].is_integer():
        names = dict(enumerate(PRICE_KIND_NAMES))
        out.append(pl.col("price_kind").replace_strict(names, default=None, return_dtype=pl.String)
                   .alias("price_kind"))
    return df.with_columns(out) if out else df


def _flat_for_text(df: pl.DataFrame) -> pl.DataFrame:
    """CSV has no nested types: lists become comma-joined strings."""
    out = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, (pl.List, pl.Array)):
            out.append(pl.col(name).cast(pl.List(pl.String)).list.join(",").alias(name))
        elif isinstance(dtype, pl.Struct):
            out.append(pl.col(name).struct.json_encode().alias(name))
    return df.with_columns(out) if out else df


class OutputRefused(ExportError):
    """OUT names something export must not replace (exit 2)."""


def check_target(out: Path) -> None:
    """Only a regular file (or nothing) is replaced: run as root, ``export /dev/full`` once replaced the
    device node with a regular file; a symlink at OUT is refused rather than written through or replaced."""
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise OutputRefused(f"{out} is a symlink; refusing to replace it (give the real path)")
    if not stat.S_ISREG(st.st_mode):
        what = ("a directory" if stat.S_ISDIR(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a pipe" if stat.S_ISFIFO(st.st_mode) else "not a regular file")
        raise OutputRefused(f"{out} is {what}; only a regular file is replaced")


def write(df: pl.DataFrame, out: Path, fmt: str) -> None:
    """Temp file beside OUT (created O_EXCL|O_NOFOLLOW, so never through a planted link), then renamed."""
    if fmt not in ("parquet", "csv", "ndjson"):
        raise ExportError(f"--format {fmt!r} is not parquet, csv or ndjson")
    check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    fd = _open_new(tmp, 0o666)  # an export is for sharing: the umask decides, as for any new file
    try:
        with open(fd, "wb", closefd=True) as f:
            if fmt == "parquet":
                df.write_parquet(f)
            elif fmt == "csv":
                _flat_for_text(df).write_csv(f)
            else:
                df.write_ndjson(f)
        check_target(out)  # nothing swapped in meanwhile
        os.replace(tmp, out)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()


def main(args, cfg) -> int:
    store = Store(cfg)
    asset = getattr(args, "asset", None)
    asset = asset.upper() if asset else None
    what = getattr(args, "what", "liquidations")
    if what == "grid" and asset is None:
        asset = cfg["app"]["asset"]
    mode = getattr(args, "mode", None) or cfg["app"]["mode"]
    tf = getattr(args, "timeframe", None) or cfg["app"]["timeframe"]
    fmt = getattr(args, "format", "parquet")
    out = Path(args.out)
    try:
        check_target(out)  # before any reading: a refused OUT costs nothing
        since = parse_time(getattr(args, "since", None), "since")
        until = parse_time(getattr(args, "until", None), "until")
        df = collect_frame(store, what, asset, mode, tf, since, until)
        write(df, out, fmt)
    except OutputRefused as e:
        print(f"liqmap: export: {e}", file=sys.stderr)
        return 2
    except ExportError as e:
        print(f"liqmap: export: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"liqmap: export: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"liqmap: wrote {df.height} {what} rows to {out} ({fmt})", file=sys.stderr)
    return 0
