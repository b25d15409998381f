"""One GET of a venue's REST history, its failures as ``BackfillError`` (one line, and whether the venue could be
reached at all)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..health import classify_error
from .rows import BackfillError


async def get_json(session, url: str, params: dict, timeout: float) -> Any:
    import aiohttp

    try:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                raise BackfillError(f"HTTP {resp.status} from {url}")
            return await resp.json(content_type=None)
    except BackfillError:
        raise
    except asyncio.TimeoutError:
        raise BackfillError(f"timeout: no answer in {timeout:g} s ({url})", unreachable=True) from None
    except (aiohttp.ClientConnectionError, OSError) as e:
        kind, text = classify_error(e)  # the feeds' words for a failed connection (DNS, TLS, refused, …)
        raise BackfillError(f"{kind}: {text} ({url})", unreachable=True) from None
    except (aiohttp.ClientError, ValueError) as e:
        raise BackfillError(f"{type(e).__name__}: {e} ({url})") from None
