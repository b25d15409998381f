"""The collector's health report: per venue (the state, ages, lag, frames, errors, reconnects, and which feeds
run) and per feed, from the ``Health`` records the hooks fill plus the adapters' own error and plausibility
counters.

Separate from :mod:`.collector` because it only reads: the status bar and ``liqmap doctor`` ask it between frames,
and nothing in it starts or stops a feed. A mixin of :class:`~liqmap.feeds.collector.Collector`.
"""

from __future__ import annotations

from cryptofeed.connection import WSAsyncConn

from .feed_plan import Slot, light_depth_supported
from .health import Health, HealthFan


class CollectorHealth:
    """``health()``, ``slot_health()`` and ``venue_health()`` of the running collector."""

    # --------------------------------------------------------------------------------------- health
    def health(self) -> dict[str, dict]:
        """Per venue: state (connected/stale/down), last message age, lag, frames, errors, reconnects."""
        now = self.clock()
        out = {}
        for venue, h in self._health.items():
            slots = [s for (v, _), s in self._slots.items() if v == venue]
            ws_open = 0
            errors_by_kind = dict(h.errors_by_kind)
            adapter_errors = 0
            implausible: dict[str, int] = {}
            for s in slots:
                for c in s.connections():
                    if isinstance(c, WSAsyncConn) and c.is_open:
                        ws_open += 1
                if s.feed is not None:
                    for key, n in getattr(s.feed, "errors", {}).items():
                        name = ":".join(key) if isinstance(key, tuple) else str(key)
                        errors_by_kind[name] = errors_by_kind.get(name, 0) + n
                        adapter_errors += n
                    plaus = getattr(s.feed, "plausible", None)
                    for (kind, reason), n in (plaus.rejected.items() if plaus is not None else ()):
                        implausible[f"{kind}:{reason}"] = implausible.get(f"{kind}:{reason}", 0) + n
            h.open_connections = ws_open
            d = h.as_dict(now)
            d["parse_errors"] = h.parse_errors + adapter_errors
            d["errors_by_kind"] = errors_by_kind
            d["implausible"] = implausible  # values refused at the parser boundary (feeds/plausible.py)
            d["feeds"] = {
                s.group: {
                    "kinds": list(s.kinds),
                    "assets": list(s.book_assets) if s.book_assets is not None else "all",
                    "connections": len(s.handlers),
                    "open": sum(1 for c in s.connections() if c.is_open and isinstance(c, WSAsyncConn)),
                    "error": s.build_error,
                }
                for s in slots
            }
            d["focus"] = list(self.focus)
            if self.metadata is not None and getattr(self.metadata, "errors", {}).get(venue):
                d["metadata_error"] = self.metadata.errors[venue]
            d["light_depth"] = ("on" if (venue, "depth") in self._slots else
                                "off" if not self.light_depth else
                                "on" if light_depth_supported(venue, self.factory_kinds) else
                                "unsupported by the venue adapter")
            out[venue] = d
        return out

    def _fan(self, slot: Slot) -> HealthFan:
        return HealthFan(self._health[slot.venue], slot.health)

    def slot_health(self) -> dict[tuple[str, str], dict]:
        """Per feed ((venue, group) → the same record as ``health()``), e.g. one row per channel in
        ``liqmap doctor``."""
        now = self.clock()
        out = {}
        for key, s in self._slots.items():
            h = s.health
            if h is None:
                continue
            h.open_connections = sum(1 for c in s.connections() if isinstance(c, WSAsyncConn) and c.is_open)
            d = h.as_dict(now)
            errs = dict(h.errors_by_kind)
            for k, n in (getattr(s.feed, "errors", None) or {}).items():
                name = ":".join(k) if isinstance(k, tuple) else str(k)
                errs[name] = errs.get(name, 0) + n
            d["parse_errors"] = sum(errs.values())
            d["errors_by_kind"] = errs
            d["kinds"] = list(s.kinds)
            d["addresses"] = [getattr(c, "address", "") for c in s.connections()]
            d["build_error"] = s.build_error
            out[key] = d
        return out

    def venue_health(self, venue: str) -> Health:
        return self._health[venue]
