"""The one frame type every source speaks: a recording row, a demo emission, a live socket read."""

from __future__ import annotations

from typing import NamedTuple


class Frame(NamedTuple):
    t: float  # receipt time, float seconds since the epoch
    venue: str  # liqmap venue name
    conn: str  # connection id or websocket address; a REST frame's is its URL
    raw: str | bytes  # the frame as received


def is_rest(conn: str) -> bool:
    """A REST response (its ``conn`` is the request URL) rather than a websocket frame."""
    return conn.startswith("http")
