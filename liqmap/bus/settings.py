"""Where the bus is and how to log in: the ``[bus]`` config section, overridden by the URL given on the
command line (``nats://user:pass@host:port``, ``tls://host:port``, ``nats://token@host:port``).

Credentials never reach a log or status line: every place that shows a server shows ``redact(url)``
(``nats://user:***@host:4222``), and ``BusSettings.__repr__`` hides them too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("nats", "tls")


class BusConfigError(ValueError):
    """A bus URL or setting that cannot be used; the message is one line and holds no secret."""


def redact(url: str) -> str:
    """``url`` with any password or token replaced by ``***`` (user names are kept: they say who, not how)."""
    try:
        p = urlsplit(url)
    except ValueError:
        return "<unparsable bus url>"
    if not p.netloc or "@" not in p.netloc:
        return url
    creds, host = p.netloc.rsplit("@", 1)
    user = creds.split(":", 1)[0] if ":" in creds else ""
    shown = f"{user}:***" if user else "***"
    return urlunsplit((p.scheme, f"{shown}@{host}", p.path, p.query, p.fragment))


_SECRET_IN_TEXT = re.compile(r"((?:nats|tls|ws|wss)://)([^@\s/]+)@")


def redact_text(text: str) -> str:
    """Any bus URL inside ``text`` (an exception's message, say) redacted."""
    return _SECRET_IN_TEXT.sub(lambda m: m.group(1) + ("***" if ":" not in m.group(2)
                                                       else m.group(2).split(":", 1)[0] + ":***") + "@", text)


@dataclass(frozen=True)
class BusSettings:
    servers: tuple[str, ...]  # without credentials
    user: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    nkey_seed_file: str = ""
    creds_file: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    stream: str = "LIQMAP"
    books_stream: str = "LIQMAP_BOOKS"
    kv_bucket: str = "liqmap-snapshots"
    retention_seconds: float = 0.0
    catchup_seconds: float = 0.0
    max_bytes: int = 1 << 30
    replicas: int = 1
    batch_seconds: float = 0.25
    book_seconds: float = 1.0
    book_levels: int = 400
    snapshot_seconds: float = 5.0
    spool_bytes: int = 1024 << 20
    dedup_seconds: float = 120.0
    connect_timeout: float = 2.0
    reconnect_wait: float = 0.5

    @property
    def shown(self) -> str:
        """What a status line may say about where the bus is (never a credential)."""
        return ",".join(self.servers)

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert) or any(s.startswith("tls://") for s in self.servers)

    def __repr__(self) -> str:  # dataclass repr=False fields are left out; say that they were set
        secret = "set" if (self.password or self.token) else "none"
        return f"BusSettings(servers={self.servers!r}, user={self.user!r}, credentials={secret}, stream={self.stream!r})"


def _split(url: str) -> tuple[str, str, str, str]:
    """(server url without credentials, user, password, token) of one URL."""
    p = urlsplit(url.strip())
    if p.scheme not in SCHEMES:
        raise BusConfigError(f"bus url {redact(url)!r}: the scheme must be nats:// or tls://")
    if not p.hostname:
        raise BusConfigError(f"bus url {redact(url)!r}: no host")
    try:
        port = p.port or 4222
    except ValueError:
        raise BusConfigError(f"bus url {redact(url)!r}: bad port") from None
    host = f"[{p.hostname}]" if ":" in p.hostname else p.hostname
    user = password = token = ""
    if p.username is not None:
        if p.password is not None:
            user, password = p.username, p.password
        else:
            token = p.username  # nats://TOKEN@host: a lone credential is a token
    return f"{p.scheme}://{host}:{port}", user, password, token


def retention_default(cfg: dict[str, Any]) -> float:
    """The longest timeframe's window: the map's columns × the 4 h period (what a full 4h map shows)."""
    from liqmap.core.timeframes import TIMEFRAMES

    cols = int((cfg.get("engine") or {}).get("columns", 120))
    return cols * max(TIMEFRAMES.values())


def settings(cfg: dict[str, Any], url: str | None = None) -> BusSettings:
    """The bus settings: ``cfg["bus"]`` with ``url`` (a flag) over ``bus.url``; a comma separates servers
    (a cluster). Credentials in the URL win over the config's."""
    b = dict(cfg.get("bus") or {})
    raw = (url or b.get("url") or "").strip()
    if not raw:
        raise BusConfigError("no bus url: give --bus nats://HOST:PORT or set bus.url")
    servers, user, password, token = [], b.get("user", ""), b.get("password", ""), b.get("token", "")
    for one in raw.split(","):
        s, u, pw, tok = _split(one)
        servers.append(s)
        if u:
            user, password = u, pw
        if tok:
            token = tok
    retention = float(b.get("retention_hours", 0.0)) * 3600.0 or retention_default(cfg)
    catchup = float(b.get("catchup_hours", 0.0)) * 3600.0 or retention
    s = BusSettings(servers=tuple(servers), user=user, password=password, token=token,
                    nkey_seed_file=b.get("nkey_seed_file", ""), creds_file=b.get("creds_file", ""),
                    tls_ca=b.get("tls_ca", ""), tls_cert=b.get("tls_cert", ""), tls_key=b.get("tls_key", ""),
                    stream=b.get("stream", "LIQMAP"), books_stream=b.get("stream", "LIQMAP") + "_BOOKS",
                    kv_bucket=b.get("kv_bucket", "liqmap-snapshots"), retention_seconds=retention,
                    catchup_seconds=min(catchup, retention), max_bytes=int(b.get("max_mb", 1024)) << 20,
                    replicas=int(b.get("replicas", 1)), batch_seconds=float(b.get("batch_ms", 250)) / 1000.0,
                    book_seconds=float(b.get("book_seconds", 1.0)), book_levels=int(b.get("book_levels", 400)),
                    snapshot_seconds=float(b.get("snapshot_seconds", 5.0)),
                    spool_bytes=int(b.get("spool_mb", 1024)) << 20, dedup_seconds=float(b.get("dedup_seconds", 120.0)))
    if not (math.isfinite(s.retention_seconds) and s.retention_seconds > 0):
        raise BusConfigError("bus.retention_hours must be > 0")
    return s


def with_servers(s: BusSettings, servers: list[str]) -> BusSettings:
    return replace(s, servers=tuple(servers))
