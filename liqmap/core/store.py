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
import errno
import math
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
import orjson
import polars as pl

from . import codec
from .events import VENUES
from .params import CoreParams, StoreParams, core_params, default_data_dir
from .snapshot import Snapshot

TABLES: tuple[str, ...] = ("liquidations", "open_interest", "sweeps", "absorptions", "walls", "forecast_scores",
                           "alerts", "reach_scores")
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


def _flat_value(v: Any) -> Any:
    """A scalar for a flat column: lists joined by commas, deeper nesting as JSON (never Python's repr)."""
    if isinstance(v, (list, tuple, set)):
        return ",".join(map(str, v))
    if isinstance(v, dict):
        return orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def records_frame(asset: str, records: list[dict[str, Any]]) -> pl.DataFrame:
    """Report records (plain dicts) as a flat frame: a nested record's fields become ``name_field`` columns,
    lists comma-joined strings, so CSV readers get plain columns."""
    flat = []
    for r in records:
        d = {"asset": asset}
        for k, v in r.items():
            if isinstance(v, dict):  # a nested record (a sweep's cleared wall): one column per field
                for kk, vv in v.items():
                    d[f"{k}_{kk}"] = _flat_value(vv)
                continue
            d[k] = _flat_value(v)
        flat.append(d)
    return pl.DataFrame(flat, infer_schema_length=None)


def _open_new(path: Path, mode: int = 0o600) -> int:
    """Create ``path`` for writing, never through a symlink or over something already there.

    A leftover of our own (same pid, a crashed earlier run) or a planted entry (symlink, fifo) at the temp
    name is unlinked — unlinking a symlink removes the link, never its target — and the create retried.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags, mode)
    except FileExistsError:
        os.unlink(path)
        return os.open(path, flags, mode)


def atomic_write(path: Path, data: bytes | Callable[[Any], None], durable: bool = True) -> None:
    """Write ``path`` so that it is either fully there or not at all (temp + fsync + rename + dir fsync).

    ``durable=False`` skips the fsyncs: still atomic for readers and across a kill -9 (the rename is), but a
    power loss may leave an empty file — fine for caches whose reader checks them (snapshot files).
    The temp file is created with O_EXCL|O_NOFOLLOW and renamed over ``path`` (a rename replaces a symlink
    at ``path`` itself, never its target), so no write follows a symlink out of the directory.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = _open_new(tmp)
    try:
        with open(fd, "wb", closefd=True) as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
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


def _inside(path: Path, root: Path) -> bool:
    """``path`` (a directory we are about to write into) resolves inside ``root``: a symlinked table or
    snapshot directory pointing elsewhere is refused rather than written through."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


class Store:
    """Append in memory, flush partitions atomically, load everything back on start.

    A flush that fails (disk full, read-only dir, dir removed) loses nothing: the rows go back in front of
    the queue, ``failure`` says why (the collect status line and the app's status bar show it), and
    ``run`` retries with backoff (1, 2, 4 … ``MAX_BACKOFF_S`` s) until the disk has room again. Memory
    stays bounded: past ``store.max_pending_rows`` the oldest queued rows are dropped and counted in
    ``dropped_rows`` (said in ``failure`` too) — the only way rows are ever lost, and never silently.
    """

    MAX_BACKOFF_S = 30.0

    def __init__(self, cfg: "CoreParams | dict", data_dir: str | Path | None = None, clock=time.time,
                 warn: Warn = _stderr_warn):
        params = core_params(cfg)
        if data_dir is None:
            data_dir = params.data_dir or default_data_dir()
        self.dir = Path(data_dir)
        self.history_dir = self.dir / "history"
        self.snapshot_dir = self.dir / "snapshots"
        sp, dp = params.store, StoreParams()
        self.flush_seconds = _positive(sp.flush_seconds, dp.flush_seconds)
        self.retention_days = float(sp.retention_days)
        self.compact_after = float(sp.compact_after_seconds)
        self.max_pending_rows = int(_positive(sp.max_pending_rows, dp.max_pending_rows))
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
        self.failure: str | None = None  # why the last flush failed; None once a flush succeeds again
        self.failed_flushes = 0
        self.dropped_rows = 0  # rows dropped past max_pending_rows while the disk refused them
        self._backoff = 0.0
        self._snapshot_warned = False

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
            if self._pending_rows > self.max_pending_rows:
                self._drop_oldest_locked()

    def _drop_oldest_locked(self) -> None:
        """Over the memory bound (the disk has refused rows for a long time): drop the oldest batches."""
        while self._pending_rows > self.max_pending_rows:
            key = min((k for k, fs in self._pending.items() if fs), default=None,
                      key=lambda k: _first_ts(self._pending[k][0]))
            if key is None:
                break
            df = self._pending[key].pop(0)
            self._pending_rows -= df.height
            self.dropped_rows += df.height

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def status(self) -> str:
        """'' while flushes succeed; else one short phrase for a status line (why, what waits, what was lost)."""
        if self.failure is None and not self.dropped_rows:
            return ""
        parts = []
        if self.failure is not None:
            parts.append(f"history not saved ({self.failure}), {self._pending_rows:,} rows waiting, retrying")
        if self.dropped_rows:
            parts.append(f"{self.dropped_rows:,} rows dropped (memory bound)")
        return "; ".join(parts)

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

    def _table_dir(self, table: str) -> Path:
        d = self.history_dir / table
        if not d.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # history is the user's own business
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        if d.is_symlink() or not _inside(d, self.dir):
            raise OSError(errno.ELOOP, f"{d} leads out of the data dir (symlink); not writing through it")
        return d

    def flush(self) -> int:
        """Write everything queued as new partition files. Returns files written. Safe from any thread.

        Never raises: a table whose write fails keeps its rows queued (in front, so order is kept) and
        ``failure`` says why."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, defaultdict(list)
                self._pending_rows = 0
            if not pending:
                return 0
            name = self._next_name()
            written = 0
            failed: str | None = None
            by_table: dict[str, list[tuple[str, list[pl.DataFrame]]]] = defaultdict(list)
            for (table, asset), frames in pending.items():
                by_table[table].append((asset, frames))
            for table, groups in by_table.items():
                frames = [f for _, fs in groups for f in fs]
                rows = sum(f.height for f in frames)
                try:
                    df = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
                    d = self._table_dir(table)
                    atomic_write(d / name, lambda f, df=df: df.write_parquet(f, compression="zstd"))
                except Exception as e:  # noqa: BLE001 - disk full, read-only, removed dir, odd schema
                    failed = _why(e)
                    with self._lock:
                        for asset, fs in groups:
                            self._pending[(table, asset)][:0] = fs
                        self._pending_rows += rows
                        if self._pending_rows > self.max_pending_rows:
                            self._drop_oldest_locked()
                    continue
                written += 1
                self.rows_written += rows
            if failed is not None:
                if self.failure is None or self.failure != failed:
                    self.warn(f"cannot save history under {self.history_dir}: {failed}; "
                              f"{self._pending_rows:,} rows kept in memory, retrying")
                self.failure = failed
                self.failed_flushes += 1
            else:
                if self.failure is not None:
                    self.warn(f"history saved again under {self.history_dir} (the disk has room)")
                self.failure = None
                self.flushes += 1
            return written

    def next_wait(self) -> float:
        """Seconds until the next flush attempt: the flush interval, or the backoff while failing."""
        if self.failure is None:
            self._backoff = 0.0
            return self.flush_seconds
        self._backoff = min(self.MAX_BACKOFF_S, max(1.0, self._backoff * 2))
        return self._backoff

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Flush every ``store.flush_seconds`` until ``stop``; flush on exit.

        The flushes run on their own thread on a fixed schedule, not on the event loop: a loop busy with a
        flood of frames (or a slow engine step) once stretched the interval and a kill -9 lost up to 10.7 s
        of events against the documented 5 s. Failures are retried with backoff (``next_wait``); retention
        and compaction run every ``compact_after`` seconds on the same thread."""
        done = threading.Event()
        th = threading.Thread(target=self._flush_loop, args=(done,), name="liqmap-store-flush", daemon=True)
        th.start()
        try:
            if stop is None:
                await asyncio.Event().wait()  # until cancelled
            else:
                await stop.wait()
        finally:
            done.set()
            th.join(timeout=30.0)  # at most the flush in progress
            self.flush()

    def _flush_loop(self, done: threading.Event) -> None:
        last_maintain = time.monotonic()
        due = time.monotonic() + self.flush_seconds
        while not done.wait(max(0.0, due - time.monotonic())):
            try:
                self.flush()
            except Exception as e:  # noqa: BLE001 - flush never raises; this only guards the thread
                self.warn(f"history flush failed: {_why(e)}")
            wait = self.next_wait()
            # Fixed deadlines while healthy (the time a flush takes does not stretch the interval); from
            # now while backing off.
            due = max(due + wait, time.monotonic()) if self.failure is None else time.monotonic() + wait
            if time.monotonic() - last_maintain > self.compact_after:
                last_maintain = time.monotonic()
                try:
                    self.maintain()
                except Exception as e:  # noqa: BLE001 - maintenance must never stop the flushes
                    self.warn(f"history maintenance failed: {_why(e)}")

    def close(self) -> None:
        self.flush()

    # ------------------------------------------------------------ reading

    def _set_aside(self, path: Path, problem: str) -> None:
        """Rename a damaged file to ``*.corrupt`` (never deleted: a human may want it) with one line."""
        target = path.with_name(path.name + ".corrupt")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}.corrupt{n}")
            n += 1
        try:
            os.replace(path, target)
        except OSError:
            target = path
        self.set_aside.append(target)
        self.warn(f"set aside unreadable file {path} as {target.name}: {problem}")

    def _scan(self, table_dir: Path) -> tuple[list[Path], list[Path]]:
        """(files that hold a table's rows, leftovers a readable compacted file already covers).

        Nothing is deleted here: a small file is only known to be redundant once its compacted day file
        has been read successfully (``compact`` deletes leftovers then); if that file turns out damaged, it
        is set aside and the small files it claimed to cover are read again (``load``)."""
        small: list[tuple[int, Path]] = []
        compacted: dict[str, list[tuple[int, Path]]] = defaultdict(list)
        for p in table_dir.iterdir():
            n = p.name
            if n.startswith(".") and ".tmp-" in n:
                if p.is_symlink() or p.is_file():
                    _remove(p)  # a write that never reached its rename (or a planted link: the link goes)
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
        redundant: list[Path] = []
        for day, files in compacted.items():
            files.sort()
            redundant.extend(p for _, p in files[:-1])  # older compactions a newer one superseded
            covered[day] = files[-1][0]
            out.append(files[-1][1])
        for ms, p in sorted(small):
            day = _utc_day(ms)
            if day in covered and ms <= covered[day]:
                redundant.append(p)  # already inside the compacted day file
                continue
            out.append(p)
        return out, redundant

    def _partitions(self, table: str, asset_dir: Path) -> list[Path]:
        return self._scan(asset_dir)[0]

    def files(self, table: str) -> list[Path]:
        base = self.history_dir / table
        if not base.is_dir():
            return []
        return self._partitions(table, base)

    def _read(self, p: Path, table: str, asset: str | None) -> pl.DataFrame | None:
        """One partition, checked: a file polars cannot read, or whose ``ts`` is not a number (a foreign
        or damaged file), is set aside and None returned."""
        try:
            lf = pl.scan_parquet(p)
            schema = lf.collect_schema()
            if "ts" not in schema or not schema["ts"].is_numeric():
                raise ValueError(f"column ts is {schema.get('ts', 'missing')}, not a number")
            if table in EVENT_TABLES and ("asset" not in schema or "venue" not in schema):
                raise ValueError("no asset/venue column")
            if asset is not None:
                lf = lf.filter(pl.col("asset") == asset)
            return lf.collect()
        except Exception as e:  # noqa: BLE001 - polars raises several types for bad files
            self._set_aside(p, _why(e))
            return None

    def load(self, table: str, asset: str | None = None, since: float | None = None,
             until: float | None = None, include_pending: bool = False) -> pl.DataFrame:
        """Every stored row of ``table`` (optionally one asset, ``since <= ts < until``), sorted by time."""
        if table not in TABLES:
            raise ValueError(f"unknown history table {table!r}")
        frames: list[pl.DataFrame] = []
        done: set[Path] = set()
        for _ in range(3):  # again after a damaged compacted file was set aside: its small files count again
            again = False
            for p in self.files(table):
                if p in done:
                    continue
                done.add(p)
                m = _SMALL.match(p.name)
                if m and since is not None and int(m.group(1)) / 1000.0 < since - FUTURE_SLACK_S:
                    continue  # every row in a file is older than its flush (give or take clock drift)
                df = self._read(p, table, asset)
                if df is None:
                    again = again or bool(_COMPACT.match(p.name))
                    continue
                frames.append(df)
            if not again:
                break
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

    def save_snapshot(self, snap: Snapshot, **codec_kw) -> Path | None:
        """Write the view's snapshot file (``codec_kw`` go to ``codec.encode``: heatmap parameters)."""
        g = snap.grid
        # Snapshots are a start-up cache rebuilt within seconds, and decode refuses a damaged one, so they
        # skip the fsyncs (hundreds of views saved at exit would otherwise take seconds).
        return self._write_snapshot(self.snapshot_name(g.asset, g.mode, g.timeframe, g.venues),
                                    lambda: codec.encode(snap, **codec_kw))

    def save_snapshot_bytes(self, asset: str, mode: str, tf: str, venues: Iterable[str], blob: bytes) -> Path | None:
        """Write an already encoded snapshot (the engine keeps background views encoded)."""
        return self._write_snapshot(self.snapshot_name(asset, mode, tf, venues), lambda: blob)

    def _write_snapshot(self, name: str, blob: Callable[[], bytes]) -> Path | None:
        """A snapshot is a cache: a full or read-only disk costs it (one warning per run), never the exit."""
        path = self.snapshot_dir / name
        try:
            if not self.snapshot_dir.is_dir():
                self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                self.snapshot_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.snapshot_dir.is_symlink() or not _inside(self.snapshot_dir, self.dir):
                raise OSError(errno.ELOOP, f"{self.snapshot_dir} leads out of the data dir (symlink)")
            atomic_write(path, blob(), durable=False)
        except OSError as e:
            if not self._snapshot_warned:
                self._snapshot_warned = True
                self.warn(f"cannot save snapshots under {self.snapshot_dir}: {_why(e)}")
            return None
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
            except OSError as e:
                self.warn(f"cannot read {p}: {e.strerror or e}")
                continue
            except Exception as e:  # noqa: BLE001 - CodecError, and whatever a damaged header provokes
                self._set_aside(p, str(e) if isinstance(e, codec.CodecError) else _why(e))
                continue
            if isinstance(snap, Snapshot):
                out.append(snap)
        return out

    # ------------------------------------------------------------ retention, compaction

    def retain(self, now: float | None = None) -> int:
        """Delete partitions whose rows are all older than ``retention_days``. Returns files deleted."""
        now = self.clock() if now is None else now
        days = self.retention_days
        if not (math.isfinite(days) and days > 0) or not (math.isfinite(now) and now > 0):
            # Config validation refuses such values; a Store built by hand must not delete history on them.
            self.warn(f"retention skipped: retention_days={days!r} is not a positive number of days")
            return 0
        cutoff = now - days * 86400.0
        deleted = 0
        if not self.history_dir.is_dir():
            return 0
        for table_dir in (x for x in self.history_dir.iterdir() if x.is_dir() and not x.is_symlink()):
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
        """Merge each UTC day's small files older than ``compact_after`` into one file. Returns merged.

        Files are deleted only after everything they hold is inside a compacted file that was written and
        read back; a damaged source is set aside (renamed), never deleted."""
        now = self.clock() if now is None else now
        limit_ms = int((now - self.compact_after) * 1000)
        merged = 0
        if not self.history_dir.is_dir():
            return 0
        with self._flush_lock:
            for table_dir in (x for x in self.history_dir.iterdir() if x.is_dir() and not x.is_symlink()):
                parts, redundant = self._scan(table_dir)
                # Day files first: a damaged one is set aside, and the small files it claimed to cover
                # become ordinary partitions again (rescan) instead of being deleted as leftovers.
                cache: dict[Path, pl.DataFrame] = {}
                bad = False
                for p in parts:
                    if _COMPACT.match(p.name):
                        df = self._read(p, table_dir.name, None)
                        if df is None:
                            bad = True
                        else:
                            cache[p] = df
                if bad:
                    parts, redundant = self._scan(table_dir)
                by_day: dict[str, list[Path]] = defaultdict(list)
                current: dict[str, Path] = {}
                for p in parts:
                    m = _SMALL.match(p.name)
                    if m and int(m.group(1)) <= limit_ms:
                        by_day[_utc_day(int(m.group(1)))].append(p)
                    m = _COMPACT.match(p.name)
                    if m:
                        current[m.group(1)] = p
                # Leftovers of an interrupted compaction: deleted now that their day file read back whole.
                for p in redundant:
                    day = _day_of(p)
                    if day in current and current[day] in cache:
                        _remove(p)
                for day, smalls in by_day.items():
                    if len(smalls) < 2 and day not in current:
                        continue
                    srcs = ([current[day]] if day in current else []) + smalls
                    frames, read_ok = [], []
                    for p in srcs:
                        df = cache[p] if p in cache else self._read(p, table_dir.name, None)
                        if df is not None:
                            frames.append(df)
                            read_ok.append(p)
                    if not frames or not any(_SMALL.match(p.name) for p in read_ok):
                        continue
                    df = pl.concat(frames, how="diagonal_relaxed")
                    if "asset" in df.columns and "ts" in df.columns:
                        df = df.sort(["asset", "ts"])  # row groups per asset: one-asset reads skip the rest
                    max_ms = max(int(_SMALL.match(p.name).group(1)) for p in read_ok if _SMALL.match(p.name))
                    target = table_dir / f"c{day}-{max_ms:013d}.parquet"
                    try:
                        atomic_write(target, lambda f, df=df: df.write_parquet(f, compression="zstd",
                                                                               row_group_size=65536))
                        back = pl.scan_parquet(target).select(pl.len()).collect().item()
                    except Exception as e:  # noqa: BLE001 - disk full: keep the sources, try next time
                        self.warn(f"cannot compact {table_dir.name} {day}: {_why(e)}")
                        continue
                    if back != df.height:
                        self.warn(f"compacted {target} reads back {back} rows, not {df.height}; sources kept")
                        continue
                    for p in read_ok:
                        if p != target:
                            _remove(p)
                    merged += sum(1 for p in read_ok if _SMALL.match(p.name))
        return merged

    def maintain(self) -> None:
        self.retain()
        self.compact()

    def disk_bytes(self) -> int:
        if not self.dir.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file())


def _positive(v: Any, default: float) -> float:
    """A positive finite number or ``default`` (config validation refuses others; this guards direct use)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) and f > 0 else default


def _first_ts(df: pl.DataFrame) -> float:
    try:
        return float(df["ts"][0]) if "ts" in df.columns and df.height else 0.0
    except (TypeError, ValueError):
        return 0.0


def _why(e: BaseException) -> str:
    if isinstance(e, OSError):
        return e.strerror or str(e)
    text = str(e).splitlines()[0] if str(e) else ""
    m = re.search(r"os error (\d+)", text)  # polars wraps the OS error in its own: say the OS error
    if m:
        return os.strerror(int(m.group(1)))
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _day_of(p: Path) -> str | None:
    m = _SMALL.match(p.name)
    if m:
        return _utc_day(int(m.group(1)))
    m = _COMPACT.match(p.name)
    return m.group(1) if m else None


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
