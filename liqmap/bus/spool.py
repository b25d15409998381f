"""``Spool``: a collector's messages on disk while the bus is away (``<data dir>/bus-spool``).

Why disk and not memory: an outage can outlast the collector (a reboot, a crash, an operator's restart),
and what it collected meanwhile must still reach the bus. The spool lives in the collector's data dir, so
the data-dir lock that guards the history guards it too: one writer.

Layout: append-only segment files ``seg-<20-digit number>.lqb``, oldest first by number. Each starts with
``HEADER``; then records, each framed as::

    b"LQR1" | u32 body length | u32 crc32(body) | body
    body = u16 subject length | u16 id length | u32 rows | subject | message id | payload

The message id is the ``Nats-Msg-Id`` the message was first given, kept so a batch that reached the server
before its ack was lost is dropped by the stream's dedup window when it is sent again — even by the next
process, after a restart. A kill mid-write leaves a torn last record: the CRC and length catch it.

- Writing: each record is one ``os.write`` to a segment opened ``O_APPEND|O_NOFOLLOW|O_EXCL`` (never
  through a symlink, never over an existing file); a segment is fsynced when it is closed (rolled at
  ``segment_bytes``, drained, or at exit). A kill -9 loses nothing the kernel was given; a power cut may lose
  the open segment's unsynced tail.
- Bounded: past ``max_bytes`` on disk the oldest segments are deleted whole, their messages and rows counted
  in ``dropped_msgs``/``dropped_rows`` (the only way the spool loses anything, and never silently).
- Damage: a segment with a bad header or record is renamed ``*.corrupt`` with one warning line; the good
  records before the damage are still sent, the file is kept and counted in ``damaged_segments``. Never fatal.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HEADER = b"LIQMAP-SPOOL 1\n"
REC_MAGIC = b"LQR1"
_FRAME = struct.Struct("<4sII")  # magic, body length, crc32(body)
_BODY = struct.Struct("<HHI")  # subject length, id length, rows
_SEGMENT = re.compile(r"^seg-(\d{20})\.lqb$")
DIR_NAME = "bus-spool"

Record = tuple[str, bytes, str, int]  # (subject, payload, message id, rows)


class SpoolError(OSError):
    """The spool directory cannot be used (a symlink, not a directory, no permission): one line."""


def _stderr_warn(line: str) -> None:
    print(f"liqmap: {line}", file=sys.stderr, flush=True)


def encode_record(subj: str, payload: bytes, msg_id: str, rows: int) -> bytes:
    s, i = subj.encode(), msg_id.encode()
    body = _BODY.pack(len(s), len(i), rows) + s + i + payload
    return _FRAME.pack(REC_MAGIC, len(body), zlib.crc32(body)) + body


def decode_segment(data: bytes) -> tuple[list[Record], str]:
    """The whole records of a segment's bytes, and what was wrong after them ("" when nothing)."""
    if not data.startswith(HEADER):
        return [], "not a spool segment (bad header)"
    out: list[Record] = []
    pos, end = len(HEADER), len(data)
    while pos < end:
        if end - pos < _FRAME.size:
            return out, f"torn record at byte {pos}"
        magic, n, crc = _FRAME.unpack_from(data, pos)
        body = data[pos + _FRAME.size: pos + _FRAME.size + n]
        if magic != REC_MAGIC or len(body) != n or n < _BODY.size:
            return out, f"torn or foreign record at byte {pos}"
        if zlib.crc32(body) != crc:
            return out, f"checksum mismatch at byte {pos}"
        ls, li, rows = _BODY.unpack_from(body, 0)
        o = _BODY.size
        if o + ls + li > n:
            return out, f"bad record lengths at byte {pos}"
        try:
            subj = body[o:o + ls].decode()
            msg_id = body[o + ls:o + ls + li].decode()
        except UnicodeDecodeError:
            return out, f"undecodable subject or id at byte {pos}"
        out.append((subj, bytes(body[o + ls + li:]), msg_id, rows))
        pos += _FRAME.size + n
    return out, ""


@dataclass
class Segment:
    number: int
    path: Path
    bytes: int = 0
    msgs: int = 0
    rows: int = 0
    damaged: bool = False  # set aside as *.corrupt: its good records are sent, the file is kept for a human


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int, warn: Callable[[str], None] | None = None,
                 segment_bytes: int | None = None) -> None:
        self.dir = Path(directory)
        self.max_bytes = int(max_bytes)
        # small enough that dropping the oldest segment drops little, large enough to keep files few
        self.segment_bytes = segment_bytes or max(64 << 10, min(4 << 20, self.max_bytes // 16))
        self.warn = warn or _stderr_warn
        self.segments: list[Segment] = []  # oldest first; the last may be open for appending
        self._fd: int | None = None  # the open (tail) segment
        self._next = 1
        self.opened = False
        # counters
        self.dropped_msgs = 0
        self.dropped_rows = 0
        self.damaged_segments = 0  # set aside as *.corrupt (the records after each damage point are lost)
        self.written_msgs = 0
        self.set_aside: list[Path] = []
        self._last_error = ""

    # ------------------------------------------------------------------ state
    @property
    def msgs(self) -> int:
        return sum(s.msgs for s in self.segments)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.segments)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.segments)

    def __len__(self) -> int:
        return self.msgs

    # ------------------------------------------------------------------ opening
    def open(self) -> "Spool":
        """Make (or check) the directory and index the segments a previous run left."""
        if self.opened:
            return self
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.lstat(self.dir)
        except OSError as e:
            raise SpoolError(f"bus spool {self.dir}: {e.strerror or e}") from None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise SpoolError(f"bus spool {self.dir}: not a plain directory (a symlink is refused)")
        found = []
        for p in self.dir.iterdir():
            m = _SEGMENT.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
        for number, p in sorted(found):
            self._next = max(self._next, number + 1)
            seg = Segment(number, p)
            records = self._read(seg)
            if records is None:
                continue
            seg.msgs, seg.rows = len(records), sum(r[3] for r in records)
            if seg.msgs or seg.damaged:
                self.segments.append(seg)
            else:
                _unlink(seg.path)  # an empty segment (killed right after creating it)
        self.opened = True
        return self

    def _read(self, seg: Segment) -> list[Record] | None:
        """A segment's good records; damage sets it aside (once) with one line. None: unreadable."""
        try:
            fd = os.open(seg.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            self.warn(f"bus spool: skipped {seg.path.name}: {e.strerror or e}")
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.warn(f"bus spool: skipped {seg.path.name}: not a regular file")
                return None
            with open(fd, "rb", closefd=False) as f:
                data = f.read()
        finally:
            os.close(fd)
        seg.bytes = len(data)
        records, problem = decode_segment(data)
        if problem and not seg.damaged:
            target = _free_name(seg.path.with_name(seg.path.name + ".corrupt"))
            try:
                os.replace(seg.path, target)
                seg.path = target
            except OSError:
                pass
            seg.damaged = True
            self.damaged_segments += 1
            self.set_aside.append(seg.path)
            self.warn(f"bus spool: set aside damaged segment as {seg.path.name} ({problem}); "
                      f"{len(records)} good messages before it are kept")
        return records

    # ------------------------------------------------------------------ writing
    def append(self, records: list[Record]) -> None:
        """``records`` at the spool's end, in order; then the oldest segments dropped past ``max_bytes``."""
        if not records:
            return
        self.open()
        for i, (subj, payload, msg_id, rows) in enumerate(records):
            blob = encode_record(subj, payload, msg_id, rows)
            try:
                if self._fd is None:
                    self._new_segment()
                _write_all(self._fd, blob)
            except OSError as e:  # disk full, dir removed: what cannot be written is counted, never fatal
                self._write_failed(records[i:], e)
                break
            seg = self.segments[-1]
            seg.bytes += len(blob)
            seg.msgs += 1
            seg.rows += rows
            self.written_msgs += 1
            if seg.bytes >= self.segment_bytes:
                self._close_tail()
        self._bound()

    def _write_failed(self, lost: list[Record], e: OSError) -> None:
        self.dropped_msgs += len(lost)
        self.dropped_rows += sum(r[3] for r in lost)
        why = f"bus spool {self.dir}: cannot write: {e.strerror or e}"
        if why != self._last_error:  # one line per distinct problem, not one per batch
            self._last_error = why
            self.warn(f"{why}; {len(lost)} messages dropped (counted)")
        if self._fd is not None:  # a half-written record: the next start sets that segment aside
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def _new_segment(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        for _ in range(1000):
            path = self.dir / f"seg-{self._next:020d}.lqb"
            self._next += 1
            try:
                fd = os.open(path, flags, 0o600)
                break
            except FileExistsError:  # something planted at that name (a symlink?): never written through
                continue
        else:
            raise OSError(f"no free segment name in {self.dir}")
        try:
            _write_all(fd, HEADER)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self.segments.append(Segment(self._next - 1, path, bytes=len(HEADER)))

    def _close_tail(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _bound(self) -> None:
        while self.bytes > self.max_bytes and len(self.segments) > 1:
            seg = self.segments.pop(0)
            self.dropped_msgs += seg.msgs
            self.dropped_rows += seg.rows
            if not seg.damaged:
                _unlink(seg.path)

    # ------------------------------------------------------------------ draining
    def oldest(self) -> tuple[Segment, list[Record]] | None:
        """The oldest segment and its records, to be sent (the open tail is closed first). None: empty."""
        self.open()
        while self.segments:
            seg = self.segments[0]
            if len(self.segments) == 1:
                self._close_tail()
            records = self._read(seg)
            if records is None or not records:
                self.segments.pop(0)
                if records is not None and not seg.damaged:
                    _unlink(seg.path)
                continue
            return seg, records
        return None

    def done(self, seg: Segment) -> None:
        """``seg`` was sent whole (every message acked): it goes."""
        if self.segments and self.segments[0] is seg:
            self.segments.pop(0)
        if not seg.damaged:
            _unlink(seg.path)

    def close(self) -> None:
        self._close_tail()

    def records(self) -> Iterator[Record]:
        """Every record on disk, oldest first (tests, and ``liqmap`` tools that inspect a spool)."""
        self.open()
        self._close_tail()
        for seg in list(self.segments):
            yield from self._read(seg) or []


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _unlink(p: Path) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def _free_name(target: Path) -> Path:
    n = 1
    base = target
    while target.exists():
        target = base.with_name(f"{base.name}{n}")
        n += 1
    return target
