"""Recordings of raw exchange frames: liqmap's own file format (writer and reader) and readers for the
file formats other collectors write, so a recording made with cryptofeed or hftbacktest replays too.

Every reader yields ``Frame(t, venue, conn, raw)`` — receipt time in float seconds, liqmap venue name,
connection id (a REST frame's ``conn`` is its request URL, so it always starts with ``http``), and the
frame exactly as it came off the wire (``str``; ``bytes`` only for binary websocket frames). The format
is detected from the content, never from the file name.

Damage is reported, never skipped: a truncated gzip stream, corrupt data, a line that is not a frame, or
a file that is no recording raises ``RecordingError`` (one line: the file and the problem) *at the point
of damage*, after every good frame before it has been yielded — so replay processes what it can, then
exits 2. See ``docs/recording.md`` for the format.
"""

from __future__ import annotations

import base64
import functools
import gzip
import heapq
import os
import queue
import re
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import orjson

from .frame import Frame, is_rest  # noqa: F401 - the one Frame type (re-exported for readers)

FORMAT_KEY = "liqmap_recording"
FORMAT_VERSION = 1
# A line kind of version 1 that readers before it skip (they skip every kind but ws/rest): the answer to a
# request we POSTed (Hyperliquid's ``clearinghouseState``), with the request and when it was sent. Being
# skipped rather than parsed as a ``rest`` frame, an older liqmap replays a newer file without counting
# these answers as venue parse errors; a newer liqmap reads older files, which simply have none.
ANSWER_KIND = "post"


class InfoAnswer(NamedTuple):
    """A recorded answer to a POSTed request (``liqmap record`` writes one per positions poll): ``t`` the
    receipt time, ``url`` where it was POSTed, ``request`` the request body as sent (``{"type":
    "clearinghouseState", "user": …}``; None when the line's is unreadable), ``sent`` when it was sent,
    ``status`` the HTTP status and ``raw`` the answer body exactly as received."""

    t: float
    venue: str
    url: str
    request: dict | None
    sent: float | None
    status: int
    raw: str

    @property
    def wallet(self) -> str | None:
        """The wallet a ``clearinghouseState`` request asked about (None for any other request)."""
        r = self.request
        if isinstance(r, dict) and r.get("type") == "clearinghouseState" and isinstance(r.get("user"), str):
            return r["user"]
        return None

GZIP_MAGIC = b"\x1f\x8b"

# cryptofeed raw-data lines (cryptofeed/raw_data_collection.py AsyncFileCallback):
#   "<url> <-> <ts>"          a websocket connect
#   "<url> <- <ts>: <data>"   a message we sent (subscribe)
#   "<url> -> <ts>: <data>"   a REST response
#   "<ts>: <data>"            a websocket frame received
#   "configuration: <json>"   the feed's configuration (header)
_CF_RECV = re.compile(r"^(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?): ")
_CF_URL = re.compile(r"^(\S+) (<->|<-|->) (\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?:: |$)")


@functools.cache
def _venue_tables() -> tuple[dict[str, str], tuple[tuple[str, str], ...], re.Pattern]:
    """cryptofeed feed ids → liqmap venue names (a cryptofeed file of any other exchange is "foreign"), the
    hosts for cryptofeed files whose name does not carry the feed id, and the file-name pattern of the ids:
    derived from the venue modules (``feeds.venues``), imported when a cryptofeed recording is first read
    (they bring cryptofeed, which ``liqmap --replay`` imports off the main thread)."""
    from .venues import CRYPTOFEED_IDS, HOST_VENUES

    name = re.compile(r"(?:^|[^A-Z])(" + "|".join(sorted(CRYPTOFEED_IDS, key=len, reverse=True)) + r")\.")
    return CRYPTOFEED_IDS, HOST_VENUES, name

_CF_ANY_NAME = re.compile(r"(?:^|[^A-Za-z0-9])([A-Z][A-Z0-9_]+)\.(?:(?:ws|http)\.\d+\.)?\d+$")
_HFT_LINE = re.compile(rb"^(\d{10,20}) ")


def contracts_of(assets: dict) -> dict[str, Any]:
    """The contract specs the parsers used, for a recording's header: replay must convert contracts to
    coins exactly as the live parsers did (OKX ctVal, inverse sizes, 1000-lots), whatever the defaults or
    the metadata cache say on the replaying machine."""
    out: dict[str, Any] = {}
    for name, a in assets.items():
        out[name] = {
            "tick": a.tick,
            "markets": {v: {"symbol": m.symbol, "inverse": m.inverse, "contract_size": m.contract_size,
                            "price_multiplier": m.price_multiplier} for v, m in a.markets.items()},
        }
    return out


def assets_from_contracts(contracts: dict[str, Any] | None, names: Iterable[str]) -> dict:
    """``{name: Asset}`` for ``names``: the header's contract specs where it has them, defaults elsewhere."""
    from dataclasses import replace

    from liqmap.core.assets import VenueMarket, universe

    base = universe(list(names))
    if not contracts:
        return base
    out = {}
    for name, a in base.items():
        spec = contracts.get(name)
        if not isinstance(spec, dict):
            out[name] = a
            continue
        try:
            markets = {v: VenueMarket(str(m["symbol"]), bool(m.get("inverse", False)),
                                      float(m.get("contract_size", 1.0)), float(m.get("price_multiplier", 1.0)))
                       for v, m in (spec.get("markets") or {}).items()}
            out[name] = replace(a, tick=float(spec.get("tick", a.tick)), markets=markets or a.markets)
        except (KeyError, TypeError, ValueError):
            out[name] = a  # a malformed entry: defaults (the parsers count what does not fit)
    return out


class RecordingError(Exception):
    """A recording that cannot be read (further). ``str(e)`` is one line: ``FILE: problem``."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# ---------------------------------------------------------------------------------------------- writer


class RecordingWriter:
    """Writes liqmap's own format: gzip JSON lines, one header then one line per frame.

    ``frame`` runs inside the collectors' raw tap, on the event loop, so it only serializes the line
    (orjson, ~1 µs) and appends it to a buffer; compression and disk writes happen on a writer thread in
    chunks (zlib releases the GIL, so they overlap with parsing). ``maybe_flush`` (every
    ``flush_seconds``) pushes a gzip sync point to disk, so a killed recorder loses at most that interval and
    the file up to the last sync point stays readable (its reader then reports the missing end as a
    truncation, after replaying everything flushed). A write error (disk full) is kept in ``error``; the
    writer then drops frames rather than raise into the socket reader.
    """

    CHUNK_BYTES = 256 * 1024
    QUEUE_CHUNKS = 256  # back-pressure: at most this many chunks (64 MB) wait for the writer thread

    def __init__(
        self,
        path: str | os.PathLike,
        venues: Iterable[str],
        assets: Iterable[str],
        flush_seconds: float = 2.0,
        clock=time.time,
        meta: dict[str, Any] | None = None,
        compresslevel: int = 5,
        contracts: dict[str, Any] | None = None,
    ) -> None:
        self.path = str(path)
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.frames = 0
        self.rest_frames = 0
        self.answers = 0
        self.closed = False
        self.error: str | None = None
        self._raw_fh = open(self.path, "wb")  # noqa: SIM115 — closed in close()
        self._gz = gzip.GzipFile(fileobj=self._raw_fh, mode="wb", compresslevel=compresslevel, mtime=0)
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self._q: queue.Queue = queue.Queue(maxsize=self.QUEUE_CHUNKS)
        self._thread = threading.Thread(target=self._run, name=f"recording-writer:{os.path.basename(self.path)}",
                                        daemon=True)
        self._thread.start()
        header: dict[str, Any] = {
            FORMAT_KEY: FORMAT_VERSION,
            "created": clock(),
            "venues": list(venues),
            "assets": list(assets),
        }
        if meta:
            header["meta"] = meta
        if contracts:
            header["contracts"] = contracts
        self._emit(orjson.dumps(header) + b"\n")
        self._last_flush = clock()
        self.flush()

    # -- the writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                chunk, sync = item
                if self.error is None:
                    try:
                        if chunk:
                            self._gz.write(chunk)
                        if sync:
                            self._gz.flush()  # Z_SYNC_FLUSH: everything so far is decodable
                            self._raw_fh.flush()
                    except OSError as e:
                        self.error = f"{self.path}: cannot write: {e.strerror or e}"
            finally:
                self._q.task_done()

    def _emit(self, line: bytes) -> None:
        self._buf.append(line)
        self._buf_bytes += len(line)
        if self._buf_bytes >= self.CHUNK_BYTES:
            self._handoff(False)

    def _handoff(self, sync: bool) -> None:
        chunk = b"".join(self._buf)
        self._buf.clear()
        self._buf_bytes = 0
        if chunk or sync:
            self._q.put((chunk, sync))

    # -- the API -----------------------------------------------------------------------------------
    def frame(self, t: float, venue: str, conn: str, raw: str | bytes, kind: str | None = None) -> None:
        """One received frame. ``kind`` is ``ws`` or ``rest`` (default: ``rest`` when conn is a URL)."""
        if self.closed:
            return
        if kind is None:
            kind = "rest" if is_rest(conn) else "ws"
        line: dict[str, Any] = {"t": t, "v": venue, "c": conn, "k": kind}
        _put_payload(line, raw)
        self._emit(orjson.dumps(line) + b"\n")
        self.frames += 1
        if kind == "rest":
            self.rest_frames += 1

    def answer(self, t: float, venue: str, url: str, request: dict, sent: float, status: int,
               raw: str | bytes) -> None:
        """One answer to a POSTed request (``ANSWER_KIND`` line): the request body (``q``), when it was sent
        (``s``), the HTTP status (``h``) and the body exactly as received (``d``; undecodable bytes as
        base64, as for frames)."""
        if self.closed:
            return
        line: dict[str, Any] = {"t": t, "v": venue, "c": url, "k": ANSWER_KIND, "q": request, "s": sent,
                                "h": int(status)}
        _put_payload(line, raw)
        self._emit(orjson.dumps(line) + b"\n")
        self.answers += 1

    def connection(self, t: float, venue: str, conn: str, address: str) -> None:
        """A (re)connect of ``conn`` to ``address``: lets a reader map connection ids to endpoints."""
        if self.closed:
            return
        self._emit(orjson.dumps({"t": t, "v": venue, "c": conn, "k": "open", "d": address}) + b"\n")

    def maybe_flush(self, now: float | None = None) -> bool:
        """A sync point every ``flush_seconds`` (handed to the writer thread; does not wait for it)."""
        now = self.clock() if now is None else now
        if now - self._last_flush >= self.flush_seconds:
            self.flush(wait=False)
            return True
        return False

    def flush(self, wait: bool = True) -> None:
        """Everything written so far to disk as a gzip sync point; ``wait`` until it is there."""
        if self.closed:
            return
        self._handoff(True)
        self._last_flush = self.clock()
        if wait:
            self._q.join()

    def close(self) -> None:
        if self.closed:
            return
        self._handoff(False)
        self._q.put(None)
        self._thread.join()
        self.closed = True
        try:
            self._gz.close()
            self._raw_fh.close()
        except OSError as e:
            self.error = self.error or f"{self.path}: cannot write: {e.strerror or e}"

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------- readers


# Bounds on what a recording may make us hold or do (a 2 MB gzip bomb once took 4.3 GB of RAM): one line
# (frame) at most MAX_LINE_BYTES — the largest real frames, 1000-level depth snapshots, are ~100 kB — and the
# whole file at most MAX_EXPANSION × its size on disk (JSON frames gzip 10-30×) plus MAX_EXPANSION_SLACK.
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_EXPANSION = 250
MAX_EXPANSION_SLACK = 256 * 1024 * 1024
# Receipt times must be times: [0, MAX_TIME] seconds (a frame with "t": 1e300 once made replay spin forever).
MAX_TIME = 4.1e9


class ReadMeter:
    """How far through its files a recording's reader is, in bytes on disk (compressed): the TUI replay's
    progress. Updated every few hundred lines, so reading it costs nothing."""

    def __init__(self, size: int = 0) -> None:
        self.size = int(size)
        self.done = 0
        self._base = 0  # bytes of the files read before the current one
        self.parts: list[ReadMeter] = []  # files read side by side (a cryptofeed set): their meters

    @property
    def share(self) -> float:
        done = sum(p.done for p in self.parts) if self.parts else self.done
        return min(done / self.size, 1.0) if self.size > 0 else 0.0


def _open_lines(path: str, first_only: bool = False, meter: ReadMeter | None = None) -> Iterator[bytes]:
    """Lines of a file, gunzipped when it is gzip; decompression damage, an over-long line or an
    expansion beyond the bounds above → RecordingError (after every good line before it)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    size = os.path.getsize(path)
    budget = size * MAX_EXPANSION + MAX_EXPANSION_SLACK
    if magic == GZIP_MAGIC:
        fh = gzip.open(path, "rb")
        raw = fh.fileobj
    else:
        fh = open(path, "rb")  # noqa: SIM115
        raw = fh
    total = 0
    n = 0
    with fh:
        try:
            while True:
                line = fh.readline(MAX_LINE_BYTES + 1)
                if not line:
                    if meter is not None:
                        meter._base += size
                        meter.done = meter._base
                    return
                n += 1
                if meter is not None and n % 256 == 0:
                    meter.done = meter._base + raw.tell()
                if len(line) > MAX_LINE_BYTES:
                    raise RecordingError(path, f"line {n} is longer than {MAX_LINE_BYTES // (1024 * 1024)} MB: "
                                               "not a recording frame")
                total += len(line)
                if total > budget:
                    raise RecordingError(path, f"decompresses to more than {budget // (1024 * 1024):,} MB "
                                               f"({MAX_EXPANSION}× its size): not a recording (a gzip bomb?)")
                yield line
        except EOFError:
            raise RecordingError(path, "truncated: the gzip stream ends early (file cut off)") from None
        except (gzip.BadGzipFile, zlib.error) as e:
            raise RecordingError(path, f"corrupt gzip data ({e})") from None
        except OSError as e:
            raise RecordingError(path, f"cannot read ({e})") from None


def _check_time(path: str, n: int, t: float) -> float:
    if not (0.0 <= t <= MAX_TIME):  # NaN fails too
        raise RecordingError(path, f"line {n}: receipt time {t!r} is not a time")
    return t


def _first_line(path: str) -> bytes:
    """The first line, for format detection (empty bytes for an empty file)."""
    lines = _open_lines(path)
    try:
        return next(lines, b"")
    finally:
        lines.close()


def detect(path: str | os.PathLike) -> str:
    """``liqmap``, ``cryptofeed`` or ``hftbacktest``; anything else raises RecordingError."""
    p = str(path)
    if os.path.isdir(p):
        if _cryptofeed_files_in(p):
            return "cryptofeed"
        raise RecordingError(p, "a directory with no cryptofeed raw-data files in it")
    if not os.path.exists(p):
        raise RecordingError(p, "no such file")
    try:
        first = _first_line(p)
    except RecordingError:
        raise
    except OSError as e:
        raise RecordingError(p, f"cannot read ({e.strerror or e})") from None
    if not first.strip():
        raise RecordingError(p, "empty file: not a recording")
    if first.lstrip().startswith(b"{"):
        try:
            head = orjson.loads(first)
        except orjson.JSONDecodeError:
            head = None
        if isinstance(head, dict) and FORMAT_KEY in head:
            return "liqmap"
        raise RecordingError(p, "not a recording: JSON without a liqmap_recording header")
    if _HFT_LINE.match(first):
        return "hftbacktest"
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordingError(p, "not a recording: binary data") from None
    if text.startswith("configuration: ") or _CF_URL.match(text) or _CF_RECV.match(text):
        return "cryptofeed"
    raise RecordingError(p, "not a recording: the first line is neither liqmap, cryptofeed nor hftbacktest")


class Recording:
    """One recording file (or cryptofeed file set), its format and header, iterable as ``Frame``s."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self.format = detect(self.path)
        self.header: dict[str, Any] = {}
        self.files: list[str] = [self.path]
        if self.format == "liqmap":
            self.header = _liqmap_header(self.path)
        elif self.format == "cryptofeed":
            self.files = cryptofeed_file_set(self.path)
            self.header = {"venues": sorted({_cryptofeed_venue(f) for f in self.files} - {None})}
        else:
            self.header = {"venues": ["binance"]}
        self.frames_read = 0
        self.meter = ReadMeter(sum(os.path.getsize(f) for f in self.files if os.path.exists(f)))
        # connection id → websocket address, from the "open" lines seen so far (liqmap format)
        self.addresses: dict[str, str] = {}

    @property
    def venues(self) -> list[str]:
        return list(self.header.get("venues") or [])

    @property
    def assets(self) -> list[str]:
        return list(self.header.get("assets") or [])

    def __iter__(self) -> Iterator[Frame]:
        return self.read()

    def read(self, answers: bool = False) -> Iterator[Frame | InfoAnswer]:
        """The frames in receipt order; with ``answers`` the recorded ``InfoAnswer``s too, in file order
        between them (a replay that feeds a positions book wants them; every other reader only frames)."""
        if self.format == "liqmap":
            it = _read_liqmap(self.path, self.addresses, self.meter, answers)
        elif self.format == "hftbacktest":
            it = _read_hftbacktest(self.path, self.meter)
        else:
            it = _read_cryptofeed_set(self.files, self.meter)
        for fr in it:
            self.frames_read += 1
            yield fr


def open_recording(path: str | os.PathLike) -> Recording:
    return Recording(path)


def read_frames(path: str | os.PathLike) -> Iterator[Frame]:
    """Every frame of a recording of any supported format, in receipt order."""
    return iter(Recording(path))


# liqmap ------------------------------------------------------------------------------------------------


def _liqmap_header(path: str) -> dict[str, Any]:
    head = orjson.loads(_first_line(path))
    version = head.get(FORMAT_KEY)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordingError(path, f"bad header: {FORMAT_KEY} is {version!r}, expected a format version")
    if version > FORMAT_VERSION:
        raise RecordingError(path, f"recording format {version} is newer than this liqmap reads ({FORMAT_VERSION})")
    for key in ("venues", "assets"):
        v = head.get(key)
        if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise RecordingError(path, f"bad header: {key} is not a list of names")
    if head.get("contracts") is not None and not isinstance(head["contracts"], dict):
        raise RecordingError(path, "bad header: contracts is not a table")
    return head


def _answer(path: str, n: int, rec: dict) -> InfoAnswer:
    """An ``ANSWER_KIND`` line. Its time, venue, URL and body must be there as for any frame (else the line is
    damage); an unreadable request, send time or status leaves None/0, so the answer reaches its consumer,
    which counts it as malformed and drops it (nothing else in the file is lost)."""
    t = float(rec["t"])
    venue, url, raw = rec["v"], rec.get("c", ""), rec["d"]
    if not (isinstance(venue, str) and isinstance(url, str) and isinstance(raw, str)):
        raise TypeError("answer")
    if rec.get("e") == "b64":
        raw = base64.b64decode(raw).decode("utf-8", "replace")
    req = rec.get("q")
    sent = rec.get("s")
    status = rec.get("h", 200)
    return InfoAnswer(_check_time(path, n, t), venue, url, req if isinstance(req, dict) else None,
                      float(sent) if isinstance(sent, (int, float)) and not isinstance(sent, bool) else None,
                      int(status) if isinstance(status, int) and not isinstance(status, bool) else 0, raw)


def _read_liqmap(path: str, addresses: dict[str, str] | None = None,
                 meter: ReadMeter | None = None, answers: bool = False) -> Iterator[Frame | InfoAnswer]:
    lines = _open_lines(path, meter=meter)
    next(lines, None)  # header
    n = 1
    for line in lines:
        n += 1
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
            kind = rec.get("k", "ws")
            if kind == ANSWER_KIND:
                answer = _answer(path, n, rec) if answers else None
            elif kind not in ("ws", "rest"):
                if kind == "open" and addresses is not None:
                    addresses[rec["c"]] = rec["d"]
                continue  # "open" markers and future line kinds
            t = float(rec["t"])
            venue = rec["v"]
            conn = rec.get("c", "")
            raw = rec["d"]
            if not isinstance(conn, str):
                raise TypeError("conn")
            if rec.get("e") == "b64":
                raw = base64.b64decode(raw)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            if not line.endswith(b"\n"):
                raise RecordingError(path, f"truncated: line {n} is cut off") from None
            raise RecordingError(path, f"line {n}: not a recording frame") from None
        if kind == ANSWER_KIND:  # (validated above as any frame line; yielded only to who asked)
            if answer is not None:
                yield answer
            continue
        if not isinstance(raw, (str, bytes)) or not isinstance(venue, str):
            raise RecordingError(path, f"line {n}: not a recording frame")
        if kind == "rest" and not is_rest(conn):
            conn = f"http:{conn}"  # keep the "REST conn starts with http" invariant
        yield Frame(_check_time(path, n, t), venue, conn, raw)


# hftbacktest -------------------------------------------------------------------------------------------

_STREAM_SYMBOL = re.compile(rb'^\{"stream":"([a-z0-9_]+)@')
_FILE_SYMBOL = re.compile(r"([a-z0-9]+usdt|[a-z0-9]+usdc|[a-z0-9]+busd)", re.I)


def _read_hftbacktest(path: str, meter: ReadMeter | None = None) -> Iterator[Frame]:
    """``<receipt_ns> <raw json>`` lines (hftbacktest's Binance collector). A REST depth snapshot line
    (``{"lastUpdateId":...}``, no envelope) becomes a REST frame whose conn is the snapshot URL of the
    symbol of the surrounding stream frames (or the file name's symbol)."""
    m = _FILE_SYMBOL.search(os.path.basename(path))
    symbol = m.group(1).upper() if m else ""
    n = 0
    for line in _open_lines(path, meter=meter):
        n += 1
        sp = line.find(b" ")
        if sp < 10 or sp > 20 or not line[:sp].isdigit():
            if not line.strip():
                continue
            raise RecordingError(path, f"line {n}: not a '<receipt_ns> <json>' line")
        raw_b = line[sp + 1:].rstrip(b"\r\n")
        if not line.endswith(b"\n"):
            try:
                orjson.loads(raw_b)
            except orjson.JSONDecodeError:
                raise RecordingError(path, f"truncated: line {n} is cut off") from None
        t = _check_time(path, n, int(line[:sp]) / 1e9)
        try:
            raw = raw_b.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordingError(path, f"line {n}: not UTF-8 text") from None
        head = raw[:10]
        if head == '{"stream":':
            if not symbol or not raw.startswith(symbol.lower() + "@", 11):
                s = _STREAM_SYMBOL.match(raw_b)
                if s:
                    symbol = s.group(1).decode().upper()
            yield Frame(t, "binance", "hftbacktest.ws", raw)
        elif head.startswith('{"topic"'):
            yield Frame(t, "bybit", "hftbacktest.ws", raw)
        elif '"lastUpdateId"' in raw[:40]:
            url = f"https://fapi.binance.com/fapi/v1/depth?symbol={symbol}&limit=1000"
            yield Frame(t, "binance", url, raw)
        else:
            yield Frame(t, "binance", "hftbacktest.ws", raw)


# cryptofeed --------------------------------------------------------------------------------------------


def _cryptofeed_venue(path: str) -> str | None:
    ids, _, pattern = _venue_tables()
    m = pattern.search(os.path.basename(path))
    return ids[m.group(1)] if m else None


def _cryptofeed_files_in(directory: str) -> list[str]:
    out = []
    for name in sorted(os.listdir(directory)):
        if _CF_ANY_NAME.search(name) and os.path.isfile(os.path.join(directory, name)):
            out.append(os.path.join(directory, name))
    return out


def cryptofeed_file_set(path: str | os.PathLike) -> list[str]:
    """The files of a cryptofeed raw-data set. cryptofeed writes one file per connection id and
    rotation (``BITMEX.ws.1.0``, ``BITMEX.ws.1.1``, ``BITMEX.http.2.0``) plus ``BITMEX.0`` for symbol
    look-ups and the configuration; given any one of them (or the directory), all siblings with the same
    name prefix and feed id are read together, merged by receipt time."""
    p = str(path)
    if os.path.isdir(p):
        files = _cryptofeed_files_in(p)
        for f in files:
            _check_cryptofeed_name(f)
        return files
    name = os.path.basename(p)
    m = _venue_tables()[2].search(name)
    if not m:
        other = _CF_ANY_NAME.search(name)
        if other:
            raise RecordingError(p, f"foreign venue: cryptofeed feed {other.group(1)} is not one of liqmap's venues")
        return [p]  # venue from the URLs inside
    prefix, fid = name[: m.start(1)], m.group(1)
    pat = re.compile(re.escape(prefix) + re.escape(fid) + r"\.(?:(?:ws|http)\.\d+\.)?\d+$")
    directory = os.path.dirname(p) or "."
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory) if pat.match(f))
    return files or [p]


def _check_cryptofeed_name(path: str) -> None:
    if _cryptofeed_venue(path) is None:
        other = _CF_ANY_NAME.search(os.path.basename(path))
        if other:
            raise RecordingError(path, f"foreign venue: cryptofeed feed {other.group(1)} is not one of liqmap's venues")


def _venue_from_url(url: str) -> str | None:
    for host, venue in _venue_tables()[1]:
        if host in url:
            return venue
    return None


def _conn_id(path: str) -> str:
    """``BITMEX.ws.1`` from ``…BITMEX.ws.1.0`` (the rotation counter dropped)."""
    name = os.path.basename(path)
    m = _venue_tables()[2].search(name)
    base = name[m.start(1):] if m else name
    return base.rsplit(".", 1)[0] if re.search(r"\.\d+$", base) else base


def _read_cryptofeed_file(path: str, meter: ReadMeter | None = None) -> Iterator[Frame]:
    venue = _cryptofeed_venue(path)
    conn = _conn_id(path)
    n = 0
    for line_b in _open_lines(path, meter=meter):
        n += 1
        complete = line_b.endswith(b"\n")
        try:
            line = line_b.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise RecordingError(path, f"line {n}: not UTF-8 text") from None
        if not line.strip() or line.startswith("configuration: "):
            continue
        m = _CF_RECV.match(line)
        if m:
            data = line[m.end():]
            kind_conn = conn
        else:
            u = _CF_URL.match(line)
            if not u:
                raise RecordingError(path, f"line {n}: not a cryptofeed raw-data line")
            url, arrow, ts = u.groups()
            if venue is None:
                venue = _venue_from_url(url)
                if venue is None:
                    raise RecordingError(path, f"foreign venue: {url} is not one of liqmap's venues")
            if arrow != "->":
                continue  # connects and our own subscribe messages
            data = line[u.end():]
            if " header: {" in data:
                body, _, hdr = data.rpartition(" header: ")
                try:
                    orjson.loads(hdr)
                    data = body
                except orjson.JSONDecodeError:
                    pass
            m = u
            kind_conn = url
        if venue is None:
            raise RecordingError(path, "cannot tell the venue: no feed id in the file name and no URL yet")
        if not complete:
            try:
                orjson.loads(data)
            except orjson.JSONDecodeError:
                raise RecordingError(path, f"truncated: line {n} is cut off") from None
        t = _check_time(path, n, float(m.group(3) if kind_conn != conn else m.group(1)))
        yield Frame(t, venue, kind_conn, data)


def _read_cryptofeed_set(files: list[str], meter: ReadMeter | None = None) -> Iterator[Frame]:
    if len(files) == 1:
        yield from _read_cryptofeed_file(files[0], meter)
        return
    parts = [ReadMeter(os.path.getsize(f)) for f in files]  # read side by side: one meter each, summed
    if meter is not None:
        meter.parts = parts
    yield from heapq.merge(*(_read_cryptofeed_file(f, m) for f, m in zip(files, parts)), key=lambda fr: fr.t)


__all__ = [
    "ANSWER_KIND",
    "FORMAT_KEY",
    "InfoAnswer",
    "FORMAT_VERSION",
    "Frame",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "assets_from_contracts",
    "contracts_of",
    "cryptofeed_file_set",
    "detect",
    "is_rest",
    "open_recording",
    "read_frames",
]


def _put_payload(line: dict[str, Any], raw) -> None:
    """A frame's or an answer's body into ``line``: text as it is (``d``); bytes decoded as UTF-8, or — binary
    websocket frames (compressed payloads) — as base64 with ``"e": "b64"``."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw)
        try:
            line["d"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            line["d"] = base64.b64encode(raw).decode("ascii")
            line["e"] = "b64"
    else:
        line["d"] = raw
