"""Connecting to the bus, and the stream and bucket both sides expect (created by whoever comes first,
with the same settings, so a viewer started before any collector works too)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

from .settings import BusSettings, redact_text
from .wire import PREFIX, ROW_KINDS


def _tls_context(s: BusSettings) -> ssl.SSLContext | None:
    if not s.tls:
        return None
    ctx = ssl.create_default_context(cafile=s.tls_ca or None)
    if s.tls_cert:
        ctx.load_cert_chain(s.tls_cert, s.tls_key or None)
    return ctx


async def connect(s: BusSettings, on_disconnect: Callable[[], Awaitable[None]] | None = None,
                  on_reconnect: Callable[[], Awaitable[None]] | None = None,
                  on_error: Callable[[str], None] | None = None, first_attempts: int = 1):
    """A NATS connection that reconnects for ever (the bus coming back is the normal case, not an error).

    ``on_error`` gets each client error as one redacted line. Raises (``OSError``/nats errors, message
    redacted) when no server answers the first ``first_attempts`` tries."""
    import nats

    async def _err(e: Exception) -> None:
        if on_error is not None:
            on_error(redact_text(f"{type(e).__name__}: {e}"))

    async def _noop() -> None:
        return None

    kw: dict = dict(servers=list(s.servers), connect_timeout=s.connect_timeout, allow_reconnect=True,
                    max_reconnect_attempts=-1, reconnect_time_wait=s.reconnect_wait, error_cb=_err,
                    disconnected_cb=on_disconnect or _noop, reconnected_cb=on_reconnect or _noop,
                    name="liqmap", verbose=False)
    if s.user:
        kw.update(user=s.user, password=s.password)
    if s.token:
        kw["token"] = s.token
    if s.nkey_seed_file:
        kw["nkeys_seed"] = s.nkey_seed_file
    if s.creds_file:
        kw["user_credentials"] = s.creds_file
    ctx = _tls_context(s)
    if ctx is not None:
        kw["tls"] = ctx
    last: Exception | None = None
    for _ in range(max(1, first_attempts)):
        try:
            return await nats.connect(**kw)
        except Exception as e:  # noqa: BLE001 - re-raised below with the credentials taken out
            last = e
    raise ConnectionError(redact_text(f"cannot reach the bus at {s.shown}: {type(last).__name__}: {last}"))


async def ensure_stream(js, s: BusSettings) -> None:
    """The rows stream (``retention`` window, dedup window for message ids) and the books stream (the
    newest message per subject); created if missing, their limits updated if the settings changed."""
    from nats.js.api import DiscardPolicy, StorageType, StreamConfig
    from nats.js.errors import BadRequestError, NotFoundError

    rows = StreamConfig(name=s.stream, subjects=[f"{PREFIX}.{k}.>" for k in ROW_KINDS],
                        max_age=s.retention_seconds, max_bytes=s.max_bytes, storage=StorageType.FILE,
                        num_replicas=s.replicas, duplicate_window=s.dedup_seconds, discard=DiscardPolicy.OLD)
    books = StreamConfig(name=s.books_stream, subjects=[f"{PREFIX}.book.>"], max_msgs_per_subject=1,
                         max_bytes=max(s.max_bytes // 8, 1 << 20), storage=StorageType.FILE,
                         num_replicas=s.replicas, duplicate_window=min(s.dedup_seconds, 60.0),
                         discard=DiscardPolicy.OLD)
    for cfg in (rows, books):
        try:
            await js.stream_info(cfg.name)
        except NotFoundError:
            try:
                await js.add_stream(cfg)
            except BadRequestError:  # another process created it meanwhile
                pass


async def ensure_bucket(js, s: BusSettings):
    """The snapshot bucket (one value per key: the newest)."""
    from nats.js.errors import BucketNotFoundError, NotFoundError

    try:
        return await js.key_value(s.kv_bucket)
    except (BucketNotFoundError, NotFoundError):
        return await js.create_key_value(bucket=s.kv_bucket, history=1, replicas=s.replicas,
                                         max_value_size=8 << 20)


async def connect_until(stop, s: BusSettings, on_disconnect=None, on_reconnect=None, on_error=None,
                        on_fail: Callable[[str], None] | None = None):
    """``connect`` retried until it succeeds or ``stop`` is set (then None). Each try is raced against
    ``stop``: a server that refuses the login can keep the client's own connect looping."""
    import asyncio

    while not stop.is_set():
        attempt = asyncio.ensure_future(connect(s, on_disconnect, on_reconnect, on_error))
        halt = asyncio.ensure_future(stop.wait())
        await asyncio.wait({attempt, halt}, timeout=max(5.0, 3 * s.connect_timeout),
                           return_when=asyncio.FIRST_COMPLETED)
        halt.cancel()
        if attempt.done() and attempt.exception() is None:
            return attempt.result()
        if not attempt.done():
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
            why = f"cannot reach the bus at {s.shown}: no answer"
        else:
            why = str(attempt.exception())
        if on_fail is not None:
            on_fail(redact_text(why))
        await pause(stop, s.reconnect_wait * 2)
    return None


async def pause(stop, seconds: float) -> None:
    """Wait ``seconds``, or less when ``stop`` (an ``asyncio.Event``) is set meanwhile: every retry and batch
    loop of the bus (publisher, reader, ``connect_until``) waits this way, so a stop is never kept waiting."""
    import asyncio

    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
