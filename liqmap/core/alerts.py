"""Alerts: rules from the config evaluated for every asset the engine ingests, not only the one on screen.

A rule names a *kind* of event, the assets it watches (one, a list, or all), a cooldown and a severity, plus
the kind's own thresholds. The engine calls :meth:`AlertEvaluator.evaluate` after each ingest of an asset with
the same typed reports the map and the panel show (``ReportRecords``), the new liquidations and the venues'
health. An alert fires once per *event* (a wall, a sweep, a cluster, a burst window: its ``key``), never again
for the same event — the keys of fired alerts are stored with the history and restored after a restart — and
not more often than the rule's cooldown per asset.

Kinds (``docs/alerts.md``): ``near_cluster``, ``wall_gone``, ``asymmetry``, ``sweep``, ``absorption``,
``convergence``, ``liq_burst``, ``venue_down``.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from .reports._common import fmt_usd as _usd  # the verdict's and status line's way of writing USD

KINDS = ("near_cluster", "wall_gone", "asymmetry", "sweep", "absorption", "convergence", "liq_burst",
         "venue_down")
SEVERITIES = ("info", "warning", "critical")
# Each kind's own settings: name → (default, low, high). None default = required.
KIND_KEYS: dict[str, dict[str, tuple[Any, float, float]]] = {
    # min_oi_pct: the cluster must also hold this share (%) of the asset's open interest (0 = off): $1M is big on
    # PENDLE ($41M of OI), routine on SOL ($4bn), where it fired on every cluster near price
    "near_cluster": {"within_pct": (0.5, 0.0, 50.0), "min_usd": (1e6, 0.0, 1e13), "min_oi_pct": (0.0, 0.0, 100.0)},
    "wall_gone": {"min_usd": (5e6, 0.0, 1e13)},
    "asymmetry": {"threshold": (0.3, 0.0, 1.0)},
    "sweep": {"min_usd": (1e6, 0.0, 1e13), "min_x_threshold": (1.0, 0.0, 1e6)},
    "absorption": {"min_usd": (5e5, 0.0, 1e13)},
    "convergence": {},
    "liq_burst": {"min_usd": (1e6, 0.0, 1e13), "window_s": (60.0, 1.0, 86400.0)},
    "venue_down": {},
}
KIND_CHOICES = {"wall_gone": {"status": ("any", "pulled", "consumed")},
                "absorption": {"outcome": ("any", "held", "broke")},
                "liq_burst": {"side": ("any", "long", "short")}}
COMMON_KEYS = {"name", "kind", "assets", "cooldown_s", "severity"}


class RuleError(ValueError):
    """A bad alert rule: the message names the rule and the problem."""


@dataclass(frozen=True)
class AlertRule:
    name: str
    kind: str
    assets: tuple[str, ...] | None  # None = every asset
    cooldown_s: float
    severity: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def watches(self, asset: str) -> bool:
        return self.assets is None or asset in self.assets

    def p(self, key: str) -> Any:
        return self.params[key]


@dataclass(frozen=True)
class Alert:
    """One fired alert: what a toast, the log, a hook and a webhook receive."""

    ts: float
    rule: str
    kind: str
    severity: str
    asset: str
    message: str
    key: str  # the event's identity: an alert never fires twice for one key
    price: float | None = None  # where to look on the map (the log's Enter jumps here)
    # Fired on history the engine caught up on (the demo's pre-roll, a bus viewer's back-log), not on what is
    # happening now: the log keeps it, but nobody is woken for it (no toast, bell, hook or webhook).
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = {"ts": self.ts, "rule": self.rule, "kind": self.kind, "severity": self.severity,
             "asset": self.asset, "message": self.message, "key": self.key, "price": self.price}
        if self.replayed:
            d["replayed"] = True
        return d


def _num(rule: str, key: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RuleError(f"alert {rule!r}: {key} must be a number, not {v!r}")
    x = float(v)
    if not math.isfinite(x) or not lo <= x <= hi:
        raise RuleError(f"alert {rule!r}: {key} = {v!r} is out of range ({lo:g} to {hi:g})")
    return x


def parse_rules(raw: Any, known_assets: Iterable[str] | None = None) -> tuple[AlertRule, ...]:
    """The ``[[alerts]]`` tables as rules; the first problem raises ``RuleError`` naming the rule."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RuleError("alerts must be a list of tables ([[alerts]])")
    known = {a.upper() for a in known_assets} if known_assets is not None else None
    out: list[AlertRule] = []
    seen: set[str] = set()
    for i, r in enumerate(raw):
        label = f"#{i + 1}"
        if not isinstance(r, Mapping):
            raise RuleError(f"alert {label}: must be a table")
        name = str(r.get("name") or label)
        if name in seen:
            raise RuleError(f"alert {name!r}: two rules with this name")
        seen.add(name)
        kind = r.get("kind")
        if kind not in KINDS:
            raise RuleError(f"alert {name!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
        unknown = set(r) - COMMON_KEYS - set(KIND_KEYS[kind]) - set(KIND_CHOICES.get(kind, {}))
        if unknown:
            raise RuleError(f"alert {name!r}: unknown key(s) {', '.join(sorted(unknown))} for kind {kind}")
        assets = r.get("assets", "all")
        if assets == "all":
            scope = None
        else:
            lst = [assets] if isinstance(assets, str) else assets
            if not isinstance(lst, list) or not lst or not all(isinstance(a, str) for a in lst):
                raise RuleError(f"alert {name!r}: assets must be \"all\", an asset or a list of assets")
            scope = tuple(a.upper() for a in lst)
            if known is not None and (bad := [a for a in scope if a not in known]):
                raise RuleError(f"alert {name!r}: asset {bad[0]} is not in the universe")
        cooldown = _num(name, "cooldown_s", r.get("cooldown_s", 300.0), 0.0, 30 * 86400.0)
        severity = r.get("severity", "warning")
        if severity not in SEVERITIES:
            raise RuleError(f"alert {name!r}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        params: dict[str, Any] = {}
        for key, (default, lo, hi) in KIND_KEYS[kind].items():
            params[key] = _num(name, key, r.get(key, default), lo, hi)
        for key, choices in KIND_CHOICES.get(kind, {}).items():
            v = r.get(key, choices[0])
            if v not in choices:
                raise RuleError(f"alert {name!r}: {key} {v!r} is not one of {', '.join(choices)}")
            params[key] = v
        out.append(AlertRule(name, kind, scope, cooldown, severity, params))
    return tuple(out)


class AlertEvaluator:
    """Evaluates the rules; keeps cooldowns, per-asset state (asymmetry side, liquidation windows) and the
    keys already fired (``restore`` them from the history so a restart never repeats an alert)."""

    def __init__(self, rules: Iterable[AlertRule], fired_keys: Iterable[str] = ()) -> None:
        self.rules = tuple(rules)
        self.fired_keys: set[str] = set(fired_keys)
        self._last: dict[tuple[str, str], float] = {}  # (rule, asset) → last fire time
        self._asym: dict[tuple[str, str], int] = {}  # (rule, asset) → side beyond the threshold (0 = none)
        self._oi_usd: dict[str, float | None] = {}  # asset → open interest (USD) at its last evaluation
        self._liqs: dict[str, deque] = defaultdict(deque)  # asset → (ts, usd, side)
        self._down: dict[tuple[str, str], bool] = {}  # (rule, venue) → was down

    def restore(self, keys: Iterable[str]) -> None:
        self.fired_keys.update(keys)

    def _fire(self, out: list[Alert], rule: AlertRule, asset: str, now: float, key: str, message: str,
              price: float | None = None) -> None:
        key = f"{rule.name}|{asset}|{key}"
        if key in self.fired_keys:
            return  # this event was alerted already (maybe before a restart)
        last = self._last.get((rule.name, asset))
        if last is not None and now - last < rule.cooldown_s:
            return  # cooling down: the event is not marked, a later check may still fire it
        self.fired_keys.add(key)
        self._last[(rule.name, asset)] = now
        out.append(Alert(now, rule.name, rule.kind, rule.severity, asset, message, key, price))

    def evaluate(self, asset: str, now: float, records: Any = None, last_price: float | None = None,
                 liqs: np.ndarray | None = None, oi_usd: float | None = None) -> list[Alert]:
        """Alerts for ``asset`` after an ingest (``records``: its ``ReportRecords``; ``oi_usd``: its open interest
        over the venues, USD, for thresholds relative to it — unknown: only the absolute ones apply)."""
        out: list[Alert] = []
        self._oi_usd[asset] = oi_usd
        if liqs is not None and len(liqs):
            q = self._liqs[asset]
            q.extend(zip(liqs["ts"].tolist(), liqs["usd"].tolist(), liqs["side"].tolist()))
        horizon = max((r.p("window_s") for r in self.rules if r.kind == "liq_burst"), default=0.0)
        q = self._liqs.get(asset)
        while q and q[0][0] < now - horizon:
            q.popleft()
        for rule in self.rules:
            if rule.kind == "venue_down" or not rule.watches(asset):
                continue
            getattr(self, "_" + rule.kind)(out, rule, asset, now, records, last_price)
        return out

    # ------------------------------------------------------------------------------------------- kinds
    def _near_cluster(self, out, rule, asset, now, rec, price) -> None:
        fc = getattr(rec, "forecast", None)
        floor = rule.p("min_usd")
        oi = self._oi_usd.get(asset)
        if rule.p("min_oi_pct") > 0 and oi is not None and math.isfinite(oi) and oi > 0:
            floor = max(floor, rule.p("min_oi_pct") / 100.0 * oi)
        for c in getattr(fc, "clusters", ()) or ():
            if c.at_risk_usd >= floor and abs(c.distance_pct) <= rule.p("within_pct"):
                side = "longs below" if c.side == "long" else "shorts above"
                self._fire(out, rule, asset, now, f"{c.side}:{c.price_lo:.10g}",
                           f"{asset} {abs(c.distance_pct):.2f}% from {_usd(c.at_risk_usd)} of {side} at "
                           f"{c.price_lo:,.10g}–{c.price_hi:,.10g}", c.price)

    def _wall_gone(self, out, rule, asset, now, rec, price) -> None:
        want = rule.p("status")
        for w in getattr(rec, "walls", ()) or ():
            if w.status == "active" or (want != "any" and w.status != want) or w.peak_usd < rule.p("min_usd"):
                continue
            self._fire(out, rule, asset, now, f"{w.side}:{w.bucket}:{w.first_seen:.3f}",
                       f"{asset} {w.side} wall {_usd(w.peak_usd)} at {w.price:,.10g} {w.status}", w.price)

    def _asymmetry(self, out, rule, asset, now, rec, price) -> None:
        a = getattr(rec, "asymmetry", None)
        if a is None:
            return
        x = float(a.weighted)
        side = 1 if x >= rule.p("threshold") else -1 if x <= -rule.p("threshold") else 0
        prev = self._asym.get((rule.name, asset), 0)
        self._asym[(rule.name, asset)] = side
        if side and side != prev:  # crossing into a side, not staying there
            name = "bids" if side > 0 else "asks"
            self._fire(out, rule, asset, now, f"{name}:{now:.0f}",
                       f"{asset} book {name} {a.bid_share * 100 if side > 0 else (1 - a.bid_share) * 100:.0f}% "
                       f"(asymmetry {x:+.2f})", price)

    def _sweep(self, out, rule, asset, now, rec, price) -> None:
        for s in getattr(rec, "sweeps", ()) or ():
            if s.total_usd < rule.p("min_usd"):
                continue
            self._fire(out, rule, asset, now, f"{s.side}:{s.ts:.3f}",
                       f"{asset} {s.side} sweep {_usd(s.total_usd)} through {s.price_lo:,.10g}–{s.price_hi:,.10g}"
                       f" ({s.count} venue{'s' if s.count != 1 else ''})", (s.price_lo + s.price_hi) / 2)

    def _absorption(self, out, rule, asset, now, rec, price) -> None:
        want = rule.p("outcome")
        for a in getattr(rec, "absorptions", ()) or ():
            if a.outcome == "pending" or (want != "any" and a.outcome != want) or a.usd < rule.p("min_usd"):
                continue
            self._fire(out, rule, asset, now, f"{a.bucket}:{a.start:.3f}",
                       f"{asset} absorption {a.outcome} at {a.price:,.10g}: {_usd(a.usd)} absorbed", a.price)

    def _convergence(self, out, rule, asset, now, rec, price) -> None:
        for c in getattr(rec, "convergence", ()) or ():
            self._fire(out, rule, asset, now, f"{c.bucket}:{c.since:.3f}",
                       f"{asset} convergence at {c.price:,.10g}: {', '.join(c.components)}", c.price)

    def _liq_burst(self, out, rule, asset, now, rec, price) -> None:
        q = self._liqs.get(asset)
        if not q:
            return
        win = rule.p("window_s")
        want = rule.p("side")
        for side, name in ((1, "long"), (-1, "short")):
            if want != "any" and want != name:
                continue
            usd = sum(u for t, u, s in q if s == side and t >= now - win)
            if usd >= rule.p("min_usd"):
                self._fire(out, rule, asset, now, f"{name}:{math.floor(now / win)}",
                           f"{asset} {_usd(usd)} of {name}s liquidated in {win:.0f}s", price)

    def evaluate_venues(self, now: float, health: Mapping[str, Mapping[str, Any]]) -> list[Alert]:
        """``venue_down`` rules over the venues' health (once per engine tick, not per asset)."""
        out: list[Alert] = []
        for rule in self.rules:
            if rule.kind != "venue_down":
                continue
            for venue, h in (health or {}).items():
                state = str(h.get("state", "")) if isinstance(h, Mapping) else str(h)
                down = state in ("down", "stale")
                was = self._down.get((rule.name, venue), False)
                self._down[(rule.name, venue)] = down
                if down and not was:
                    err = h.get("last_error") if isinstance(h, Mapping) else ""
                    self._fire(out, rule, venue, now, f"{state}:{now:.0f}",
                               f"{venue} {state}" + (f": {err}" if err else ""))
        return out
