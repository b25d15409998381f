"""``liqmap doctor [--seconds S]``: is each venue and channel delivering, and if not, why.

First a DNS probe of every endpoint host (``doctor.dns_timeout_seconds``, in daemon threads so a hung
resolver cannot hold the exit): if no host resolves, there is no network — say so in one line and exit 1
at once instead of waiting for connections that cannot happen. Then one feed per venue × channel
(liquidations, trades, open interest, book, and the light depth the app subscribes for assets out of focus
— the same feed classes and collector as the app, endpoints from ``feeds.endpoints``, wire channel names from
``feeds.channels``) runs for ``--seconds``, and a table says per row: the endpoint, whether the channel
delivered normalized data, its message rate, its lag (receipt − exchange time) and, when it failed, why:

    DNS        the host name does not resolve
    TLS        the TLS handshake failed (certificate, protocol)
    refused    nothing listens on that port
    timeout    no answer in time (connect or TLS or upgrade)
    HTTP       the server answered the websocket upgrade / REST call with an HTTP error
    closed     the connection dropped
    subscribed-but-silent   connected and subscribed, but no data arrived (acks only, or nothing)

Hyperliquid has no liquidation channel (so no liquidations row) and one REST row: ``POST /info
{"type":"meta"}`` at ``feeds.endpoints.hyperliquid_info`` (the universe and margin tables the adapter's
symbols and tiers come from; weight 20 of the 1200 a minute per IP).

Light depth rows (``light depth <channel>``, the channel from ``feeds.channels.<venue>_light_depth``)
appear for the venues whose adapter parses the ``depth`` kind, unless ``feeds.light_depth`` is off (then
the app never subscribes them, so there is nothing to check).

Exit 0 when every channel delivered, 1 otherwise (no network included).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from ..core.events import VENUES

CHANNELS = ("liq", "trade", "oi", "book", "depth", "backfill", "info")
FEED_KINDS = ("liq", "trade", "oi", "book", "depth")  # what a collector feed delivers (backfill is REST only)
CHANNEL_NAMES = {"liq": "liquidations", "trade": "trades", "oi": "open interest", "book": "book",
                 "depth": "light depth", "backfill": "back-fill history", "info": "info meta"}
DELIVERED_BY = {"liq": "liq", "trade": "trade", "oi": "oi", "book": "book_update", "depth": "book_update"}
BOOKISH = ("book", "depth")  # feeds limited to the one asset checked (as the app limits them to its focus)


def venue_endpoints(cfg: dict, venue: str) -> dict[str, str]:
    """The venue's endpoints as its adapter connects to them (declared on the venue class, the config's
    ``feeds.endpoints`` over them); from the config alone for a venue without an adapter."""
    from ..feeds.venues import VENUE_CLASSES

    cls = VENUE_CLASSES.get(venue)
    if cls is not None:
        return cls.configured("endpoints", cfg)
    pre = f"{venue}_"
    eps = ((cfg.get("feeds") or {}).get("endpoints") or {})
    return {k[len(pre):]: v for k, v in eps.items() if k.startswith(pre)}


def venue_channels(cfg: dict, venue: str, channels: tuple[str, ...]) -> list[str]:
    """The channels to check for ``venue``: light depth only where the app would subscribe it (the
    adapter parses the ``depth`` kind and ``feeds.light_depth`` is on)."""
    from ..feeds.collector import feeds_setting, light_depth_supported

    from ..feeds.venues import VENUE_CLASSES

    light = bool(feeds_setting(cfg, "light_depth", True)) and light_depth_supported(venue)
    # the live start's back-fill (feeds/backfill) fetches Binance's, Bybit's and OKX's history, when it is on
    from ..feeds.backfill import BACKFILL_VENUES

    backfill = venue in BACKFILL_VENUES and float(feeds_setting(cfg, "backfill_hours", 6.0) or 0.0) > 0
    cls = VENUE_CLASSES.get(venue)
    kinds = getattr(cls, "SUPPORTED_KINDS", FEED_KINDS)  # Hyperliquid: no liquidation channel
    info = "info" in venue_endpoints(cfg, venue)  # a venue with a REST info endpoint (Hyperliquid)
    return [k for k in channels if (k not in FEED_KINDS or k in kinds) and (k != "depth" or light)
            and (k != "backfill" or backfill) and (k != "info" or info)]


def channel_label(cfg: dict, venue: str, kind: str, asset: str) -> str:
    """The table's channel cell; light depth names its wire channel from ``feeds.channels`` (read through
    the same defaults the adapters use), with ``{}`` filled by the venue symbol as the adapter does."""
    if kind != "depth":
        return CHANNEL_NAMES[kind]
    from ..feeds.venues import VENUE_CLASSES, symbol_for

    cls = VENUE_CLASSES.get(venue)
    wire = str(cls.configured("channels", cfg).get("light_depth", "")) if cls is not None else ""
    if "{}" in wire:
        wire = wire.format(symbol_for(venue, asset) or "{}")
    return f"{CHANNEL_NAMES[kind]} {wire}".rstrip()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


async def resolve(host: str, port: int, timeout: float) -> str | None:
    """None when ``host`` resolves within ``timeout``, else the reason. The lookup runs in a daemon
    thread: a resolver that hangs is abandoned, never waited for at exit."""
    if _is_ip(host):
        return None
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def work() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            res: str | None = None
        except OSError as e:
            res = f"{type(e).__name__}: {e}"
        try:
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(res))
        except RuntimeError:  # loop closed: nobody is waiting any more
            pass

    threading.Thread(target=work, name=f"dns-{host}", daemon=True).start()
    try:
        return await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        return f"no answer in {timeout:g} s"


def _host_port(url: str) -> tuple[str, int]:
    u = urlsplit(url)
    port = u.port or (443 if u.scheme in ("wss", "https") else 80)
    return u.hostname or "", port


def _short(addr: str) -> str:
    return addr.split("?", 1)[0]


def verdict(d: dict[str, Any], kind: str, seconds: float) -> tuple[bool, str]:
    """(delivered?, what to say) for one venue × channel."""
    delivered = d.get("events", {}).get(DELIVERED_BY[kind], 0) > 0
    if d.get("build_error"):
        return False, f"error: {d['build_error']}"
    if delivered:
        note = f"ok ({d['parse_errors']} bad frames dropped)" if d.get("parse_errors") else "ok"
        return True, note
    last = d.get("last_error") or ""
    if d.get("connects", 0) == 0:
        if d.get("failed_connects") and last:
            return False, last
        return False, f"timeout: no connection within {seconds:g} s"
    if d.get("failed_connects") and last and not last.startswith(("closed", "watchdog")):
        return False, last  # a REST poll failing beside an open websocket
    if d.get("frames", 0) == 0:
        return False, f"subscribed-but-silent: connected, no frames in {seconds:g} s"
    if d.get("parse_errors"):
        kinds = ", ".join(sorted(d.get("errors_by_kind", {})))
        return False, f"frames not understood: {d['parse_errors']} dropped ({kinds})"
    hint = " (liquidations are sporadic: try --seconds 60)" if kind == "liq" else ""
    return False, f"subscribed-but-silent: {d['frames']} frames (acks/control), no data in {seconds:g} s{hint}"


def table(rows: list[list[str]]) -> str:
    head = ["venue", "channel", "endpoint", "delivered", "msgs/s", "lag", "result"]
    allrows = [head] + rows
    widths = [max(len(r[i]) for r in allrows) for i in range(len(head) - 1)]
    out = []
    for r in allrows:
        out.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1])
    out.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(out)


async def diagnose(cfg: dict[str, Any], seconds: float, out=None, err=None,
                   asset: str | None = None, channels: tuple[str, ...] = CHANNELS) -> int:
    from ..feeds.venues import VENUE_CLASSES

    out = out or sys.stdout
    err = err or sys.stderr
    doc = cfg.get("doctor") or {}
    dns_timeout = float(doc.get("dns_timeout_seconds", 2.0))
    connect_timeout = float(doc.get("connect_timeout_seconds", 5.0))
    venues = [v for v in cfg["universe"]["venues"] if v in VENUES]
    asset = (asset or (cfg.get("app") or {}).get("asset") or "BTC").upper()

    # 1. DNS, all hosts at once
    hosts: dict[str, list[tuple[str, int]]] = {}
    for v in venues:
        for url in venue_endpoints(cfg, v).values():
            hp = _host_port(url)
            if hp[0] and hp not in hosts.setdefault(v, []):
                hosts[v].append(hp)
    unique = sorted({hp for hps in hosts.values() for hp in hps})
    t0 = time.monotonic()
    answers = await asyncio.gather(*(resolve(h, p, dns_timeout) for h, p in unique))
    dns = dict(zip(unique, answers))
    looked_up = [hp for hp in unique if not _is_ip(hp[0])]
    if looked_up and all(dns[hp] for hp in looked_up):
        h = looked_up[0][0]
        print(f"liqmap: doctor: no network: DNS lookup of {h} failed ({dns[looked_up[0]]}); "
              f"{len(looked_up)} venue hosts checked in {time.monotonic() - t0:.1f} s", file=err)
        return 1

    # 2. one feed per venue × channel, all at once
    rows: list[list[str]] = []
    plan = []
    dns_failed: dict[str, str] = {}
    chans = {v: venue_channels(cfg, v, channels) for v in venues}
    for v in venues:
        bad = [(h, dns[(h, p)]) for h, p in hosts.get(v, []) if dns.get((h, p))]
        if v not in VENUE_CLASSES:
            for k in channels:
                if k in FEED_KINDS and k != "depth":
                    rows.append([v, CHANNEL_NAMES[k], "", "no", "", "", "error: venue adapter not built"])
            continue
        if bad:
            dns_failed[v] = f"DNS: {bad[0][0]}: {bad[0][1]}"
            continue
        for k in chans[v]:
            if k in FEED_KINDS:
                plan.append((v, k, (k,), [asset] if k in BOOKISH else None))
    slots: dict = {}
    if plan:
        from ..feeds.sources import LiveSource
        from ..runtime import Runtime

        # The runtime with one live feed per venue x channel for the one asset checked; no engine.
        dcfg = {**cfg, "universe": {**cfg["universe"], "assets": [asset], "venues": list(venues)}}
        source = LiveSource(dcfg, [asset], [v for v in venues if v in VENUE_CLASSES], plan=plan,
                            open_timeout=connect_timeout, focus=[asset], backfill=False)
        rt = Runtime(dcfg, source, engine=False)
        col = source.collector
        print(f"liqmap: doctor: listening to {len(plan)} venue channels for {seconds:g} s ...", file=err, flush=True)
        started = time.monotonic()
        await col.start()
        history = {v: asyncio.ensure_future(_backfill_probe(cfg, v, asset, connect_timeout))
                   for v in venues if "backfill" in chans.get(v, ()) and v not in dns_failed}
        infos = {v: asyncio.ensure_future(_info_probe(cfg, v, asset, connect_timeout))
                 for v in venues if "info" in chans.get(v, ()) and v not in dns_failed}
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
        rt.ingest.flush()
        slots = col.slot_health()
        await rt.stop()
        for v, probe in history.items():
            slots[(v, "backfill")] = await probe
        for v, probe in infos.items():
            slots[(v, "info")] = await probe
    for v in venues:
        if v not in VENUE_CLASSES:
            continue
        for k in chans[v]:
            label = channel_label(cfg, v, k, asset)
            if v in dns_failed:
                url = next(iter(venue_endpoints(cfg, v).values()), "")
                rows.append([v, label, _short(url), "no", "", "", dns_failed[v]])
                continue
            d = slots.get((v, k))
            if d is None:
                rows.append([v, label, "", "no", "", "", "error: feed did not start"])
                continue
            if k in ("backfill", "info"):  # a REST fetch, not a feed: (address, delivered?, what)
                rows.append([v, label, d[0], "yes" if d[1] else "no", "", "", d[2]])
                continue
            ok, what = verdict(d, k, seconds)
            addrs = [a for a in d.get("addresses", []) if isinstance(a, str)]
            rest = any(not isinstance(a, str) for a in d.get("addresses", []))
            ep = _short(addrs[0]) if addrs else ""
            if len(addrs) > 1:
                ep += f" (+{len(addrs) - 1})"
            if rest:
                ep += " +REST"
            rate = d["frames"] / seconds if seconds > 0 else 0.0
            lag = d.get("lag_ewma")
            rows.append([v, label, ep, "yes" if ok else "no", f"{rate:.1f}",
                         "" if lag is None else f"{lag * 1000:.0f} ms", what])
    print(table(rows), file=out)
    good = sum(1 for r in rows if r[3] == "yes")
    print(f"{good}/{len(rows)} venue channels delivered data in {seconds:g} s", file=out)
    return 0 if rows and good == len(rows) else 1


async def _backfill_probe(cfg: dict[str, Any], venue: str, asset: str, timeout: float) -> tuple[str, bool, str]:
    """One hour of the live start's back-fill for ``asset`` from ``venue`` (its 1-minute bars and OI history), as
    the app fetches it: (REST address, delivered?, what to say)."""
    import aiohttp

    from ..feeds.backfill import FETCHERS, BackfillError
    from ..feeds.venues import default_universe

    rest = str(venue_endpoints(cfg, venue).get("rest", ""))
    vm = (a.markets.get(venue) if (a := default_universe().get(asset.upper())) else None)
    if vm is None:
        return rest, False, f"error: {asset} is not listed on {venue}"
    try:
        async with aiohttp.ClientSession() as session:
            oi, minutes = await FETCHERS[venue](session, rest, vm.symbol, 1.0, timeout, vm.price_multiplier or 1.0)
    except BackfillError as e:
        return rest, False, f"error: {e}"
    return rest, True, f"ok: {len(oi)} open-interest samples, {len(minutes)} one-minute bars"

async def _info_probe(cfg: dict[str, Any], venue: str, asset: str, timeout: float) -> tuple[str, bool, str]:
    """``POST /info {"type":"meta"}`` (Hyperliquid): (address, delivered?, what to say). Delivered when the
    answer is a ``meta`` with a universe; the asset checked must be in it (by its coin name)."""
    import aiohttp

    from ..feeds.venues import symbol_for

    url = str(venue_endpoints(cfg, venue).get("info", ""))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json={"type": "meta"}, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                if r.status != 200:
                    return url, False, f"HTTP: {r.status} {r.reason or ''}".rstrip()
                meta = await r.json(content_type=None)
    except aiohttp.ClientConnectorCertificateError as e:
        return url, False, f"TLS: {e}"
    except aiohttp.ClientConnectorError as e:
        return url, False, f"refused: {e}"
    except asyncio.TimeoutError:
        return url, False, f"timeout: no answer in {timeout:g} s"
    except (aiohttp.ClientError, ValueError) as e:
        return url, False, f"error: {type(e).__name__}: {e}"
    universe = meta.get("universe") if isinstance(meta, dict) else None
    if not isinstance(universe, list):
        return url, False, "error: the answer has no universe"
    coin = symbol_for(venue, asset)
    listed = {u.get("name"): u for u in universe if isinstance(u, dict)}
    if coin not in listed:
        return url, False, f"error: {coin or asset} is not in the universe ({len(listed)} coins)"
    lev = listed[coin].get("maxLeverage")
    tables = len(meta.get("marginTables") or ())
    return url, True, f"ok: {len(listed)} coins, {coin} max {lev}x, {tables} margin tables"


def main(args, cfg: dict[str, Any]) -> int:
    seconds = float(getattr(args, "seconds", 10.0) or 10.0)
    if not seconds > 0:
        print("liqmap: doctor: --seconds must be positive", file=sys.stderr)
        return 2
    return asyncio.run(diagnose(cfg, seconds, asset=getattr(args, "asset", None)))
