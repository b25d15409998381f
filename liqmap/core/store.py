"""History that survives restarts: parquet partitions of events and report records, and snapshot files.

Layout under the data dir::

    history/<table>/<flush_ms>-<seq>.parquet      one small file per table per flush (append-only), every asset
    history/<table>/c<yyyymmdd>-<max_ms>.parquet  a compacted UTC day (see ``compact``)
    snapshots/<asset>_<mode>_<tf>_<venues>.lqs    the latest snapshot per view (``liqmap.core.codec``)

Why one new file per flush instead of rewriting a table: a flush then costs only the new rows, and a
kill -9 can only ever lose the flush in progress. Why not one file per asset: 65 assets flushed every few
seconds would make hundreds of thousands of files a day; rows carry an ``asset`` column instead, and a
read for one asset filters with parquet's row-group statistics. Each file is written to a temp name in the same
directory, fsynced, then ``os.replace``d into place (atomic on POSIX), so a reader sees either the
whole file or none of it; leftover temp files from a killed process are removed on the next start.

Compaction merges a day's small files into one; the compacted file's name carries the newest flush it
includes, so if the process dies between writing it and deleting the small files, the leftovers are
recognized (flush_ms ≤ max_ms of that day) and skipped instead of double-counted.

A file that cannot be read (truncated, foreign, damaged) is renamed to ``*.corrupt`` with a one-line
warning and everything else loads.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import polars as pl

from . import codec
from .events import VENUES
from .snapshot import Snapshot

TABLES: tuple[str, ...] = ("liquidations", "open_interest", "sweeps", "absorptions", "walls")
EVENT_TABLES = {"liquidations": "liq", "open_interest": "oi"}  # table → event kind with a numpy dtype
SNAPSHOT_SUFFIX = ".lqs"
FUTURE_SLACK_S = 120.0  # exchange timestamps may run ahead of our clock (Market accepts up to 60 s)

_SMALL = re.compile(r"^(\d{13})-(\d+)\.parquet$")
_COMPACT = re.compile(r"^c(\d{8})-(\d{13})\.parquet$")
_VENUE_NAMES = np.array(VENUES + ("?",) * (256 - len(VENUES)), dtype=object)

Warn = Callable[[str], None]


def _stderr_warn(msg: str) -> None:
    print(f"liqmap: {msg}", file=sys.stderr, flush=True)


def _utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc).strftime("%Y%m%d")


def _day_end_s(day: str) -> float:
    d = datetime.strptime(day, "%Y%m%d").replace(tzinfo=timezone.utc)
    return d.timestamp() + 86400.0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def events_frame(kind: str, asset: str, rows: np.ndarray) -> pl.DataFrame:
    """A numpy event batch (liq or oi dtype) as a polars frame with an asset column and venue names."""
    cols: dict[str, Any] = {"ts": rows["ts"], "asset": [asset] * len(rows)}
    cols["venue"] = _VENUE_NAMES[rows["venue"]].tolist() if len(rows) else []
    for name in rows.dtype.names:
        if name not in ("ts", "venue"):
            cols[name] = rows[name]
    return pl.DataFrame(cols)


def records_frame(asset: str, records: list[dict[str, Any]]) -> pl.DataFrame:
    """Report records (plain dicts) as a frame. Lists/dicts inside become strings so schemas stay flat."""
    flat = []
    for r in records:
        d = {"asset": asset}
        for k, v in r.items():
            if isinstance(v, (list, tuple, set, dict)):
                v = ",".join(map(str, v)) if not isinstance(v, dict) else str(v)
            elif isinstance(v, np.generic):
                v = v.item()
            d[k] = v
        flat.append(d)
    return pl.DataFrame(flat, infer_schema_length=None)


def atomic_write(path: Path, data: bytes | Callable[[Any], None], durable: bool = True) -> None:
    """Write ``path`` so that it is either fully there or not at all (temp + fsync + rename + dir fsync).

    ``durable=False`` skips the fsyncs: still atomic for readers and across a kill -9 (the rename is), but a
    power loss may leave an empty file — fine for caches whose reader checks them (snapshot files).
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if not durable:
        return
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """Append in memory, flush partitions atomically, load everything back on start."""

    def __init__(self, cfg: dict, data_dir: str | Path | None = None, clock=time.time, warn: Warn = _stderr_warn):
        if data_dir is None:
            data_dir = cfg.get("_data_dir")
        if data_dir is None:
            from ..config import default_data_dir

            data_dir = default_data_dir()
        self.dir = Path(data_dir)
        self.history_dir = self.dir / "history"
        self.snapshot_dir = self.dir / "snapshots"
        scfg = cfg.get("store", {})
        self.flush_seconds = float(scfg.get("flush_seconds", 5.0))
        self.retention_days = float(scfg.get("retention_days", 7.0))
        self.compact_after = float(scfg.get("compact_after_seconds", 600.0))
        self.clock = clock
        self.warn = warn
        self._lock = threading.Lock()  # guards the pending buffers (appends come from engine workers)
        self._flush_lock = threading.Lock()  # one flush at a time
        self._pending: dict[tuple[str, str], list[pl.DataFrame]] = defaultdict(list)
        self._pending_rows = 0
        self._seq = 0
        self._last_ms = 0
        self.flushes = 0
        self.rows_written = 0
        self.set_aside: list[Path] = []

    # ------------------------------------------------------------ appending

    def append_events(self, table: str, asset: str, rows: np.ndarray) -> None:
        """Queue a batch of liquidation or open-interest rows (numpy event dtype) for the next flush."""
        if table not in EVENT_TABLES:
            raise ValueError(f"{table!r} is not an event table ({', '.join(EVENT_TABLES)})")
        if len(rows):
            self._queue(table, asset, events_frame(EVENT_TABLES[table], asset, rows))

    def append_records(self, table: str, asset: str, records: Iterable[dict[str, Any]]) -> None:
        """Queue report records (sweeps, absorptions, wall status changes) as plain dicts with a ``ts``."""
        if table not in TABLES:
            raise ValueError(f"unknown history table {table!r}")
        records = list(records)
        if records:
            self._queue(table, asset, records_frame(asset, records))

    def _queue(self, table: str, asset: str, df: pl.DataFrame) -> None:
        with self._lock:
            self._pending[(table, asset)].append(df)
            self._pending_rows += df.height

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    # ------------------------------------------------------------ flushing

    def _next_name(self) -> str:
        ms = int(self.clock() * 1000)
        if ms <= self._last_ms:  # two flushes in one ms (tests, fast loops): keep names increasing
            ms = self._last_ms
            self._seq += 1
        else:
            self._seq = 0
        self._last_ms = ms
        return f"{ms:013d}-{self._seq:04d}.parquet"

    def flush(self) -> int:
        """Write everything queued as new partition files. Returns files written. Safe from any thread."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, defaultdict(list)
                self._pending_rows = 0
            if not pending:
                return 0
            name = self._next_name()
            written = 0
            by_table: dict[str, list[tuple[str, list[pl.DataFrame]]]] = defaultdict(list)
            for (table, asset), frames in pending.items():
                by_table[table].append((asset, frames))
            for table, groups in by_table.items():
                frames = [f for _, fs in groups for f in fs]
                df = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
                d = self.history_dir / table
                d.mkdir(parents=True, exist_ok=True)
                try:
                    atomic_write(d / name, lambda f, df=df: df.write_parquet(f, compression="zstd"))
                except OSError as e:
                    # Disk full or read-only: keep the rows for the next attempt rather than lose them.
                    self.warn(f"cannot write {d / name}: {e.strerror or e}")
                    with self._lock:
                        for asset, fs in groups:
                            self._pending[(table, asset)][:0] = fs
                        self._pending_rows += df.height
                    continue
                written += 1
                self.rows_written += df.height
            self.flushes += 1
            return written

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Flush every ``store.flush_seconds`` off the event loop; compact and apply retention every
        ``compact_after`` seconds; flush on exit."""
        loop = asyncio.get_running_loop()
        last_retain = time.monotonic()
        try:
            while stop is None or not stop.is_set():
                try:
                    if stop is None:
                        await asyncio.sleep(self.flush_seconds)
                    else:
                        await asyncio.wait_for(stop.wait(), self.flush_seconds)
                except asyncio.TimeoutError:
                    pass
                await loop.run_in_executor(None, self.flush)
                if time.monotonic() - last_retain > self.compact_after:
                    last_retain = time.monotonic()
                    await loop.run_in_executor(None, self.maintain)
        finally:
            self.flush()

    def close(self) -> None:
        self.flush()

    # ------------------------------------------------------------ reading

    def _set_aside(self, path: Path, problem: str) -> None:
        target = path.with_name(path.name + ".corrupt")
        try:
            os.replace(path, target)
        except OSError:
            target = path
        self.set_aside.append(target)
        self.warn(f"set aside unreadable file {path}: {problem}")

    def _partitions(self, table: str, asset_dir: Path) -> list[Path]:
        """The files that hold a table's rows, leftovers of killed work removed."""
        small: list[tuple[int, Path]] = []
        compacted: dict[str, list[tuple[int, Path]]] = defaultdict(list)
        for p in asset_dir.iterdir():
            n = p.name
            if n.startswith(".") and ".tmp-" in n:
                _remove(p)  # a write that never reached its rename
                continue
            m = _SMALL.match(n)
            if m:
                small.append((int(m.group(1)), p))
                continue
            m = _COMPACT.match(n)
            if m:
                compacted[m.group(1)].append((int(m.group(2)), p))
        covered: dict[str, int] = {}
        out: list[Path] = []
        for day, files in compacted.items():
            files.sort()
            for _, stale in files[:-1]:
                _remove(stale)  # an older compaction of the same day that a newer one superseded
            covered[day] = files[-1][0]
            out.append(files[-1][1])
        for ms, p in sorted(small):
            day = _utc_day(ms)
            if day in covered and ms <= covered[day]:
                _remove(p)  # already inside the compacted day file
                continue
            out.append(p)
        return out

    def files(self, table: str) -> list[Path]:
        base = self.history_dir / table
        if not base.is_dir():
            return []
        return self._partitions(table, base)

    def load(self, table: str, asset: str | None = None, since: float | None = None,
             until: float | None = None, include_pending: bool = False) -> pl.DataFrame:
        """Every stored row of ``table`` (optionally one asset, ``since <= ts < until``), sorted by time."""
        if table not in TABLES:
            raise ValueError(f"unknown history table {table!r}")
        frames: list[pl.DataFrame] = []
        for p in self.files(table):
            m = _SMALL.match(p.name)
            if m and since is not None and int(m.group(1)) / 1000.0 < since - FUTURE_SLACK_S:
                continue  # every row in a file is older than its flush (give or take clock drift)
            try:
                lf = pl.scan_parquet(p)
                if asset is not None:
                    lf = lf.filter(pl.col("asset") == asset)
                frames.append(lf.collect())
            except Exception as e:  # noqa: BLE001 - polars raises several types for bad files
                self._set_aside(p, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}")
        if include_pending:
            with self._lock:
                for (t, a), fs in self._pending.items():
                    if t == table and (asset is None or a == asset):
                        frames.extend(fs)
        if not frames:
            return pl.DataFrame()
        df = pl.concat(frames, how="diagonal_relaxed")
        if "ts" in df.columns:
            if since is not None:
                df = df.filter(pl.col("ts") >= since)
            if until is not None:
                df = df.filter(pl.col("ts") < until)
            df = df.sort("ts", maintain_order=True)
        return df

    def load_events(self, table: str, asset: str, since: float | None = None) -> np.ndarray:
        """Stored liquidations / OI samples of one asset as the numpy event dtype, ready for ``Market.add``."""
        return _events_array(EVENT_TABLES[table], self.load(table, asset, since=since))

    def load_events_by_asset(self, table: str, since: float | None = None) -> dict[str, np.ndarray]:
        """Every asset's stored events in one pass over the files (what a start-up restore wants)."""
        df = self.load(table, since=since)
        if df.height == 0 or "asset" not in df.columns:
            return {}
        kind = EVENT_TABLES[table]
        return {str(key[0]): _events_array(kind, part)
                for key, part in df.partition_by("asset", as_dict=True, maintain_order=True).items()}

    # ------------------------------------------------------------ snapshots

    @staticmethod
    def snapshot_name(asset: str, mode: str, tf: str, venues: Iterable[str]) -> str:
        return _safe(f"{asset}_{mode}_{tf}_{'+'.join(venues) or 'all'}") + SNAPSHOT_SUFFIX

    def save_snapshot(self, snap: Snapshot, **codec_kw) -> Path:
        """Write the view's snapshot file (``codec_kw`` go to ``codec.encode``: heatmap parameters)."""
        g = snap.grid
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.snapshot_dir / self.snapshot_name(g.asset, g.mode, g.timeframe, g.venues)
        # Snapshots are a start-up cache rebuilt within seconds, and decode refuses a damaged one, so they
        # skip the fsyncs (hundreds of views saved at exit would otherwise take seconds).
        atomic_write(path, codec.encode(snap, **codec_kw), durable=False)
        return path

    def save_snapshot_bytes(self, asset: str, mode: str, tf: str, venues: Iterable[str], blob: bytes) -> Path:
        """Write an already encoded snapshot (the engine keeps background views encoded)."""
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.snapshot_dir / self.snapshot_name(asset, mode, tf, venues)
        atomic_write(path, blob, durable=False)
        return path

    def load_snapshots(self) -> list[Snapshot]:
        """Every readable snapshot file; unreadable ones are set aside with a warning."""
        out: list[Snapshot] = []
        if not self.snapshot_dir.is_dir():
            return out
        for p in sorted(self.snapshot_dir.iterdir()):
            if p.name.startswith(".") and ".tmp-" in p.name:
                _remove(p)
                continue
            if p.suffix != SNAPSHOT_SUFFIX:
                continue
            try:
                snap = codec.decode(p.read_bytes())
            except codec.CodecError as e:
                self._set_aside(p, str(e))
                continue
            except OSError as e:
                self.warn(f"cannot read {p}: {e.strerror or e}")
                continue
            if isinstance(snap, Snapshot):
                out.append(snap)
        return out

    # ------------------------------------------------------------ retention, compaction

    def retain(self, now: float | None = None) -> int:
        """Delete partitions whose rows are all older than ``retention_days``. Returns files deleted."""
        now = self.clock() if now is None else now
        cutoff = now - self.retention_days * 86400.0
        deleted = 0
        if not self.history_dir.is_dir():
            return 0
        for table_dir in (x for x in self.history_dir.iterdir() if x.is_dir()):
            for p in table_dir.iterdir():
                m = _SMALL.match(p.name)
                # A small file's rows are no newer than its flush time; a day file's than the day's end.
                if m and int(m.group(1)) / 1000.0 < cutoff:
                    deleted += _remove(p)
                m = _COMPACT.match(p.name)
                if m and _day_end_s(m.group(1)) < cutoff:
                    deleted += _remove(p)
        return deleted

    def compact(self, now: float | None = None) -> int:
        """Merge each UTC day's small files older than ``compact_after`` into one file. Returns merged."""
        now = self.clock() if now is None else now
        limit_ms = int((now - self.compact_after) * 1000)
        merged = 0
        if not self.history_dir.is_dir():
            return 0
        with self._flush_lock:
            for table_dir in (x for x in self.history_dir.iterdir() if x.is_dir()):
                parts = self._partitions(table_dir.name, table_dir)
                by_day: dict[str, list[Path]] = defaultdict(list)
                current: dict[str, Path] = {}
                for p in parts:
                    m = _SMALL.match(p.name)
                    if m and int(m.group(1)) <= limit_ms:
                        by_day[_utc_day(int(m.group(1)))].append(p)
                    m = _COMPACT.match(p.name)
                    if m:
                        current[m.group(1)] = p
                for day, smalls in by_day.items():
                    if len(smalls) < 2 and day not in current:
                        continue
                    srcs = ([current[day]] if day in current else []) + smalls
                    frames = []
                    for p in srcs:
                        try:
                            frames.append(pl.read_parquet(p))
                        except Exception as e:  # noqa: BLE001
                            self._set_aside(p, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                    if not frames:
                        continue
                    df = pl.concat(frames, how="diagonal_relaxed")
                    if "asset" in df.columns and "ts" in df.columns:
                        df = df.sort(["asset", "ts"])  # row groups per asset: one-asset reads skip the rest
                    max_ms = max(int(_SMALL.match(p.name).group(1)) for p in smalls)
                    target = table_dir / f"c{day}-{max_ms:013d}.parquet"
                    atomic_write(target, lambda f, df=df: df.write_parquet(f, compression="zstd",
                                                                           row_group_size=65536))
                    for p in srcs:
                        if p != target:
                            _remove(p)
                    merged += len(smalls)
        return merged

    def maintain(self) -> None:
        self.retain()
        self.compact()

    def disk_bytes(self) -> int:
        if not self.dir.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file())


def _remove(p: Path) -> int:
    try:
        p.unlink()
        return 1
    except FileNotFoundError:
        return 0


def _events_array(kind: str, df: pl.DataFrame) -> np.ndarray:
    from .events import KINDS, VENUE_ID

    dtype = KINDS[kind]
    out = np.zeros(df.height, dtype=dtype)
    if df.height == 0:
        return out
    for name in dtype.names:
        if name == "venue":
            codes = {v: VENUE_ID.get(v, 255) for v in df["venue"].unique().to_list()}
            out["venue"] = df["venue"].replace_strict(codes, return_dtype=pl.UInt8).to_numpy()
        elif name in df.columns:
            out[name] = df[name].to_numpy()
    return out
