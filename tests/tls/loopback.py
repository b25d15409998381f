"""Test helpers for the real network path: a self-signed certificate made at test time, and an aiohttp
TLS server on 127.0.0.1 that plays scripted websocket sessions and answers REST paths.

Nothing here ever listens on or connects to anything but 127.0.0.1.

The one set-up every loopback test shares (``from tls import loopback``; pytest puts tests/ on sys.path):
  ``server``            a pytest fixture: a started, trusted LoopbackServer (cert in ``tmp_path/"tls"``);
                        use it with ``server = loopback.server`` in the test module
  ``serving(dir, mp)``  the same as an async context manager (``trusted=False``: a certificate nobody trusts)
  ``endpoints(base, *venues)``         the venues' default endpoints (``feeds.endpoints``) moved to
                                       ``base`` ("127.0.0.1:port"), per venue, as ``Collector(endpoints=)`` takes
  ``config_endpoints(base, *venues)``  the same as flat ``feeds.endpoints`` keys (``<venue>_<name>``)
  ``until(cond, timeout, what)``       poll until ``cond()``; an AssertionError naming ``what`` if never

A websocket *session* is a list of steps run for one accepted connection, in order:
  ("send", text)      send a text frame
  ("sleep", seconds)  pause
  ("close",)          a clean close (close frame, then the TCP close)
  ("abort",)          drop the TCP connection with no close frame
  ("stall",)          go silent: neither send nor read, until the client gives up
  ("hold",)           stay open and keep reading (the client's close is answered)
Sessions for a path are consumed one per connection; when they run out the connection is held open.
A script key may carry a query filter, ``"/market/stream?aggTrade"``: it then serves only connections whose
query string contains that text (keys with a filter are tried first, in the order scripted). Paths in
``reject`` answer every request, websocket upgrades included, with HTTP 404; a ``reject`` entry may carry
the same kind of query filter (``"/public/stream?depth@100ms"``) to refuse only those connections.
A POST to a path answers from ``post(path, body) → (status, text)`` in ``posts`` (Hyperliquid's ``/info``); every
posted body is kept in ``posted[path]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import time
from collections import defaultdict
from pathlib import Path
from typing import AsyncIterator, Callable
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp import WSMsgType, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


def make_cert(directory: str | os.PathLike) -> tuple[str, str]:
    """A self-signed EC certificate for 127.0.0.1/localhost; returns (cert.pem, key.pem) paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "liqmap loopback test")])
    now = dt.datetime.now(dt.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = d / "cert.pem", d / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def trust_cert(cert_path: str, monkeypatch) -> None:
    """Make this process's TLS clients trust the test certificate.

    websockets builds a default SSL context per connection, which honours ``SSL_CERT_FILE``; aiohttp
    (cryptofeed's REST client) built its verified default context once at import, so the certificate is
    added to that context too (trust in one more self-signed 127.0.0.1 certificate, nothing removed).
    """
    monkeypatch.setenv("SSL_CERT_FILE", cert_path)
    import aiohttp.connector as ac

    ctx = getattr(ac, "_SSL_CONTEXT_VERIFIED", None)
    if isinstance(ctx, ssl.SSLContext):
        ctx.load_verify_locations(cert_path)


class LoopbackServer:
    """aiohttp TLS server on 127.0.0.1 with scripted websocket sessions and canned REST answers."""

    def __init__(self, cert: str, key: str) -> None:
        self.cert, self.key = cert, key
        self.sessions: dict[str, list[list[tuple]]] = defaultdict(list)
        self.rest: dict[str, str | Callable[[dict], str]] = {}  # path → body, or query → body (a paged venue)
        self.connections: dict[str, int] = defaultdict(int)
        self.received: dict[str, list[str]] = defaultdict(list)
        self.rest_hits: dict[str, int] = defaultdict(int)
        self.queries: dict[str, list[str]] = defaultdict(list)
        self.reject: set[str] = set()
        self.posts: dict[str, Callable[[str], tuple[int, str]]] = {}  # path → handler of the POST body
        self.posted: dict[str, list[str]] = defaultdict(list)
        self._runner: web.AppRunner | None = None
        self._open: set[web.WebSocketResponse] = set()
        self.port = 0

    def script(self, path: str, *sessions: list[tuple]) -> None:
        self.sessions[path].extend(sessions)

    @property
    def base(self) -> str:
        return f"{HOST}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._dispatch)
        app.router.add_route("POST", "/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        site = web.TCPSite(self._runner, HOST, 0, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for ws in list(self._open):
            try:
                await asyncio.wait_for(ws.close(), 0.5)
            except Exception:  # noqa: BLE001
                pass
        if self._runner is not None:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request):
        path = request.path
        if self._rejected(path, request.query_string):
            return web.Response(status=404, text="no such stream")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._ws(request, path)
        self.rest_hits[path] += 1
        self.queries[path].append(request.query_string)
        body = self.rest.get(path)
        if callable(body):
            body = body(dict(request.query))
        if body is None:
            return web.Response(status=404, text="{}")
        return web.Response(text=body, content_type="application/json")

    async def _post(self, request: web.Request):
        body = await request.text()
        self.posted[request.path].append(body)
        handler = self.posts.get(request.path)
        if handler is None or self._rejected(request.path, request.query_string):
            return web.Response(status=404, text="{}")
        status, text = handler(body)
        return web.Response(status=status, text=text, content_type="application/json")

    def _rejected(self, path: str, query: str) -> bool:
        for key in self.reject:
            kpath, sep, kq = key.partition("?")
            if kpath == path and (not sep or kq in query):
                return True
        return False

    async def _ws(self, request: web.Request, path: str):
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        self.connections[path] += 1
        self.queries[path].append(request.query_string)
        self._open.add(ws)
        steps = [("hold",)]
        query = request.query_string
        for key in [k for k in self.sessions if "?" in k] + [path]:
            kpath, _, kq = key.partition("?")
            if kpath == path and kq in query and self.sessions.get(key):
                steps = self.sessions[key].pop(0)
                break
        reader = asyncio.create_task(self._read(ws, path))
        try:
            for step in steps:
                op = step[0]
                if op == "send":
                    await ws.send_str(step[1])
                elif op == "sleep":
                    await asyncio.sleep(step[1])
                elif op == "close":
                    await ws.close()
                    return ws
                elif op == "abort":
                    reader.cancel()
                    request.transport.abort()
                    return ws
                elif op == "stall":
                    reader.cancel()  # stop answering anything, pings and closes included
                    await asyncio.sleep(3600)
                elif op == "hold":
                    await reader
                    return ws
            await reader
        except (asyncio.CancelledError, ConnectionResetError):
            pass
        finally:
            reader.cancel()
            self._open.discard(ws)
        return ws

    async def _read(self, ws: web.WebSocketResponse, path: str) -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.received[path].append(msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break


class SilentTCPServer:
    """Accepts TCP on 127.0.0.1 and never says a word (not even TLS): a connect that times out."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: list = []

    async def start(self) -> None:
        async def handle(reader, writer) -> None:
            self._writers.append(writer)
            try:
                await reader.read()  # until the client gives up
            except Exception:  # noqa: BLE001
                pass

        self._server = await asyncio.start_server(handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for w in self._writers:
            w.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(cert_dir: str | os.PathLike, monkeypatch, trusted: bool = True) -> AsyncIterator[LoopbackServer]:
    """A started LoopbackServer with a fresh certificate in ``cert_dir``, stopped on exit. ``trusted``: this
    process's TLS clients trust the certificate (``trust_cert``); False gives a server whose handshake
    fails certificate verification."""
    cert, key = make_cert(cert_dir)
    if trusted:
        trust_cert(cert, monkeypatch)
    srv = LoopbackServer(cert, key)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def server(tmp_path, monkeypatch):
    """A started loopback TLS server whose certificate (in ``tmp_path/"tls"``) this process trusts."""
    async with serving(tmp_path / "tls", monkeypatch) as srv:
        yield srv


def _default_endpoints() -> dict[str, str]:
    from liqmap.config import DEFAULTS

    return DEFAULTS["feeds"]["endpoints"]


def _moved(url: str, base: str) -> str:
    """``url`` with its host (and port) replaced by ``base``; scheme, path and query kept."""
    u = urlsplit(url)
    return urlunsplit((u.scheme, base, u.path, u.query, u.fragment))


def endpoints(base: str, *venues: str) -> dict[str, dict[str, str]]:
    """Per venue, its default endpoints moved to ``base`` ("127.0.0.1:port"): e.g. binance →
    {"market": "wss://base/market", "public": "wss://base/public", "rest": "https://base"}."""
    out: dict[str, dict[str, str]] = {}
    for key, url in _default_endpoints().items():
        venue, _, name = key.partition("_")
        if venue in venues:
            out.setdefault(venue, {})[name] = _moved(url, base)
    missing = set(venues) - set(out)
    if missing:
        raise KeyError(f"no default endpoints for {sorted(missing)}")
    return out


def config_endpoints(base: str, *venues: str) -> dict[str, str]:
    """``endpoints`` as flat ``feeds.endpoints`` keys (``binance_market``, ``bybit_ws``, ...)."""
    return {f"{v}_{name}": url for v, eps in endpoints(base, *venues).items() for name, url in eps.items()}


async def until(cond: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``cond`` every 20 ms; fail with "timed out waiting for <what>" after ``timeout`` seconds (a hang
    guard, not a speed assertion)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
