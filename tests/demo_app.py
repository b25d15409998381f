"""The app on the real engine over the demo market, as ``liqmap --demo`` builds it, for Pilot tests and benchmarks.

``demo_app(...)`` returns ``(app, source)``: ``source`` is the ``EngineSource`` of ``commands.run.build_source``
(``source.runner`` the ``Runtime``: its ``DemoFeed`` with the pre-roll, the ingest path, the engine). A small universe and a
short pre-roll keep start-up quick; everything else is the shipped configuration.

``Gate`` makes the engine slow deterministically: builds of views it does not let through wait on an event,
so a test sees every state the screen passes through between a key and the new view's first snapshot,
whatever the machine's speed.
"""

from __future__ import annotations

import copy
import threading
import types

from liqmap.commands.run import build_source
from liqmap.config import DEFAULTS
from conftest import build_app

ASSETS = ("BTC", "ETH", "SOL", "XRP")


def demo_cfg(assets=ASSETS, preroll_minutes: float = 5.0, **app) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["assets"] = list(assets)
    cfg["universe"]["focus_extra"] = [a for a in assets[1:3]]
    cfg["demo"]["preroll_minutes"] = preroll_minutes
    cfg["demo"]["preroll_fill_window"] = False  # the short pre-roll asked for, not the terminal's width of it
    cfg["app"].update(app)
    return cfg


def demo_app(cfg: dict, seed: int = 3, color_system: str = "truecolor") -> tuple[LiqmapApp, object]:
    src = build_source("demo", cfg, types.SimpleNamespace(seed=seed, speed=None))
    app = build_app(src, cfg, color_system=color_system, source_label="DEMO")
    return app, src


class Gate:
    """Holds the engine's builds of every view ``allow`` refuses until ``open()``.

    Installed on one engine instance (``engine.build`` wrapped); the wait happens in the engine's worker
    threads, never on the UI loop, exactly where a slow build would spend its time.
    """

    def __init__(self, engine, allow=lambda view: False) -> None:
        self.engine = engine
        self.allow = allow
        self.event = threading.Event()
        self.waiting: set[tuple] = set()
        self._build = engine.build

        def build(view, now, force=False):
            if not self.event.is_set() and not self.allow(view):
                self.waiting.add(view.key)
                self.event.wait(10.0)
            return self._build(view, now, force)

        engine.build = build

    def open(self) -> None:
        self.event.set()

    def close(self) -> None:
        self.event.clear()
        self.waiting.clear()
