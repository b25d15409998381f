"""Back-fill the synthetic model from public history when live mode starts (docs/model.md §3 step 10).

A live start knows nothing of the positions opened before it: the Synthetic map would stay empty for its first
hours, and the dollar scale would have to credit every position it never saw. Binance, Bybit and OKX publish
enough to replay the model's steps 1–9 over the recent past: 5-minute open-interest history and 1-minute bars
(``binance.py``, ``bybit.py``, ``okx.py``; what each gives in docs/venues.md §4.1). Each venue's bars become the
trades the model needs and its OI samples OI rows (``rows.py``); the three venues' rows go to the model together,
so each venue's positions are placed with its own ladder. Deribit and Hyperliquid publish no open-interest
history (Hyperliquid's API has only the current figure): their positions are credited by the dollar scale.

The engine holds the asset while its history is fetched (live rows wait in the rings, so the model's clock never
passes history that has not arrived); the asset is released whatever happens. A failed fetch (no network, HTTP
error, a malformed body) costs that venue's history for that asset and nothing else: one line says why. A venue
that cannot be reached at all for the first asset tried is not asked again for the others.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from ...core import events as ev
from ...core.events import VENUE_ID
from . import binance, bybit, okx
from .rows import BackfillError, borrow_split, trades

LOG = logging.getLogger(__name__)
# The venues with public open-interest history, Binance first: its minutes lend their taker split to the others.
FETCHERS = {"binance": binance.fetch, "bybit": bybit.fetch, "okx": okx.fetch}
BACKFILL_VENUES = tuple(FETCHERS)

__all__ = ["backfill", "fetch_asset", "BackfillError", "BACKFILL_VENUES", "FETCHERS", "binance", "bybit", "okx"]


async def _one(fetch, *args):
    try:
        return await fetch(*args)
    except BackfillError as e:
        return e


async def fetch_asset(session, rests: dict[str, str], markets: dict, hours: float, timeout: float
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, int | BackfillError]]:
    """One asset's history from each venue in ``markets`` (venue → its ``VenueMarket``), fetched concurrently:
    (OI rows, trade rows, venue → rows fed or the error that cost its history). Bybit's and OKX's minutes take
    their taker split from Binance's minute where Binance answered."""
    venues = [v for v in FETCHERS if v in markets]
    got = await asyncio.gather(*(_one(FETCHERS[v], session, rests[v], markets[v].symbol, hours, timeout,
                                      markets[v].price_multiplier or 1.0) for v in venues))
    answers = dict(zip(venues, got, strict=True))
    ref = answers.get("binance")
    ref = ref[1] if isinstance(ref, tuple) else None
    ois, trs, per_venue = [], [], {}
    for v, a in answers.items():
        if isinstance(a, BackfillError):
            per_venue[v] = a
            continue
        oi, m = a
        tr = trades(borrow_split(m, ref) if v != "binance" else m, VENUE_ID[v])
        ois.append(oi)
        trs.append(tr)
        per_venue[v] = len(oi) + len(tr)
    oi = np.concatenate(ois) if ois else ev.make("oi", n=0)
    tr = np.concatenate(trs) if trs else ev.make("trade", n=0)
    return (oi[np.argsort(oi["ts"], kind="stable")], tr[np.argsort(tr["ts"], kind="stable")], per_venue)


def _said(per_venue: dict) -> str:
    """The result line of one asset: "ok (N rows: binance, okx; bybit: why)" or every venue's reason."""
    fed = [v for v, r in per_venue.items() if not isinstance(r, BackfillError)]
    failed = "; ".join(f"{v}: {r}" for v, r in per_venue.items() if isinstance(r, BackfillError))
    if not fed:
        return failed
    n = sum(int(per_venue[v]) for v in fed)
    return f"ok ({n} rows: {', '.join(fed)}" + (f"; {failed})" if failed else ")")


async def backfill(engine, cfg: dict, assets: list[str], venues=BACKFILL_VENUES, first: str | None = None,
                   session=None, now=None, focus=None) -> dict[str, str]:
    """Fetch each asset's history from ``venues`` (those of Binance, Bybit and OKX that list it) and feed it to
    its model, the asset on screen first; every asset with a venue to ask is held by the engine until its own
    history is in (or failed). ``focus``: a callable naming the asset on screen now — one the trader switches to
    while the back-fill runs is fetched next, not in its turn (a held asset shows nothing until its history is
    in). Returns asset → "ok (N rows: venues…)" or why it has none; the engine's status line counts the assets
    done while it runs, then says how many assets, or which venue, went without."""
    import aiohttp

    from ...core.assets import default_universe
    from ..venues.base import feeds_cfg

    f = feeds_cfg(cfg)  # the config's defaults for anything left out
    hours = float(f["backfill_hours"])
    timeout = float(f["backfill_timeout_seconds"])
    rests = {v: str(f["endpoints"][f"{v}_rest"]) for v in FETCHERS}
    uni = default_universe()
    venues = [v for v in FETCHERS if v in venues]
    markets = {a: {v: uni[a].markets[v] for v in venues if a in uni and v in uni[a].markets} for a in assets}
    order = [a for a in dict.fromkeys(([first] if first else []) + list(assets)) if markets.get(a)]
    result: dict[str, str] = {}
    if hours <= 0 or not order:
        return result
    engine.hold(order)
    skipped: dict[str, str] = {}  # venue → why it is not asked again (unreachable on its first asset)
    reached: set[str] = set()
    partial: dict[str, list[str]] = {}  # venue → assets that got history without this venue's
    own = session is None
    if own:
        session = aiohttp.ClientSession()
    pending = list(order)
    try:
        while pending:
            on_screen = str(focus() or "").upper() if focus is not None else ""
            a = on_screen if on_screen in pending else pending[0]
            pending.remove(a)
            engine.status = f"back-fill: {len(order) - len(pending)} of {len(order)} assets ({a})…"
            try:
                ask = {v: vm for v, vm in markets[a].items() if v not in skipped}
                oi, tr, per_venue = await fetch_asset(session, rests, ask, hours, timeout) if ask else (None, None, {})
                for v, r in per_venue.items():
                    if not isinstance(r, BackfillError):
                        reached.add(v)
                    elif r.unreachable and v not in reached:  # the venue answered nobody: do not wait a timeout
                        skipped[v] = f"skipped after {a}: {r}"  # per asset for the same answer
                per_venue.update({v: BackfillError(skipped[v]) for v in markets[a] if v not in ask})
                result[a] = _said(per_venue)
                for v, r in per_venue.items():
                    if isinstance(r, BackfillError):
                        if v in ask:  # a skipped venue was said once, at its first asset
                            LOG.warning("back-fill %s %s: %s", a, v, r)
                        if result[a].startswith("ok"):
                            partial.setdefault(v, []).append(a)
                if oi is not None and len(oi) + len(tr):
                    # the model's replay (tens of ms of CPU per asset) runs in a worker thread, as the grids do,
                    # so the event loop — the UI, the live feeds — keeps running between and during the 65 assets
                    await asyncio.to_thread(engine.backfill, a, oi=oi, trades=tr, now=now() if now else None)
            finally:
                engine.release(a)
    finally:
        for a in order:
            if engine.held(a):
                engine.release(a)
        if own:
            await session.close()
    failed = [a for a, r in result.items() if not r.startswith("ok")]
    parts = [f"{len(failed)} of {len(order)} assets without history ({result[failed[0]]})"] if failed else []
    parts += [f"{v} history missing for {len(x)} of {len(order)} assets" for v, x in partial.items()]
    engine.status = "back-fill: " + "; ".join(parts) if parts else ""
    return result
