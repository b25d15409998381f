"""``liqmap`` / ``liqmap --demo`` / ``liqmap --replay FILE``: the terminal map.

Start-up order matters for the 1.5 s first-frame target and for colours:

1. pin the colour system (``TEXTUAL_COLOR_SYSTEM``) from ``--color`` before Textual is imported — Textual
   reads it once at import, and over ssh ``COLORTERM`` is usually lost;
2. load the theme files (a bad file: one line naming the file and the field, exit 2);
3. check that the data path's modules exist (a missing one: "liqmap: <X> is not built yet", exit 2);
4. start the app at once with an empty map ("connecting…") and build the data source (imports, demo
   market, engine) in a worker thread, so the first frame never waits for it.

``LIQMAP_FIRST_FRAME_FILE``: when set, the app writes the wall-clock time of its first full frame there
(the ``startup`` benchmark reads it).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import time
from typing import Any


def _missing(*modules: str) -> str | None:
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return m
        except ModuleNotFoundError:
            return m
    return None


def _call(fn, /, **kwargs):
    """Call ``fn`` with the keyword arguments it accepts (the engine and feeds APIs are still settling)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in params})


def build_source(kind: str, cfg: dict[str, Any], args) -> Any:
    """The engine over the chosen market, wrapped as the UI's ``SnapshotSource``. Runs off the UI loop."""
    from ..core.market import Market
    from ..ui.source import EngineSource

    engine_mod = importlib.import_module("liqmap.core.engine")
    Engine = getattr(engine_mod, "Engine")
    market = Market(cfg["universe"]["assets"], tuple(cfg["universe"]["venues"]))
    label = {"demo": "DEMO", "replay": "REPLAY", "live": "LIVE"}[kind]
    feeder = None
    if kind == "demo":
        demo = importlib.import_module("liqmap.feeds.demo")
        make = getattr(demo, "start_demo", None) or getattr(demo, "DemoFeeder", None) or getattr(demo, "DemoMarket")
        feeder = _call(make, cfg=cfg, market=market, seed=getattr(args, "seed", None),
                       speed=getattr(args, "speed", None))
    elif kind == "replay":
        rec = importlib.import_module("liqmap.feeds.replay")
        make = getattr(rec, "ReplayFeeder", None) or getattr(rec, "start_replay")
        feeder = _call(make, cfg=cfg, market=market, path=args.replay, speed=getattr(args, "speed", None))
    else:
        col = importlib.import_module("liqmap.feeds.collector")
        make = getattr(col, "Collector", None) or getattr(col, "start_collectors")
        feeder = _call(make, cfg=cfg, market=market)
    engine = _call(Engine, cfg=cfg, market=market, feeder=feeder, source=label)

    async def run_all():
        import asyncio

        tasks = []
        for obj in (feeder, engine):
            run = getattr(obj, "run", None)
            if run is not None:
                res = run()
                if inspect.isawaitable(res):
                    tasks.append(asyncio.ensure_future(res))
        if tasks:
            await asyncio.gather(*tasks)

    async def stop_all():
        for obj in (feeder, engine):
            stop = getattr(obj, "stop", None) or getattr(obj, "close", None)
            if stop is not None:
                res = stop()
                if inspect.isawaitable(res):
                    await res

    src = EngineSource(engine, label=label, stop=stop_all)
    src.engine = _Proxy(engine, run_all)
    return src


class _Proxy:
    """The engine with ``run`` replaced by "run the feeder and the engine together"."""

    def __init__(self, engine, run_all) -> None:
        self._engine = engine
        self.run = run_all

    def __getattr__(self, name):
        return getattr(self._engine, name)


def main(args, cfg: dict[str, Any]) -> int:
    t_start = time.time()
    from ..ui.palettes import detect_color_system, textual_color_system
    from ..ui.themes import ThemeError, resolve

    system = detect_color_system()
    os.environ["TEXTUAL_COLOR_SYSTEM"] = textual_color_system(system)
    try:
        spec, themes = resolve(cfg["app"]["theme"])
    except ThemeError as e:
        print(f"liqmap: {e}", file=sys.stderr)
        return 2

    kind = "demo" if getattr(args, "demo", False) else "replay" if getattr(args, "replay", None) else "live"
    needs = {"demo": ("liqmap.core.engine", "liqmap.feeds.demo"),
             "replay": ("liqmap.core.engine", "liqmap.feeds.replay"),
             "live": ("liqmap.core.engine", "liqmap.feeds.collector")}[kind]
    missing = _missing(*needs)
    if missing:
        print(f"liqmap: {missing} is not built yet", file=sys.stderr)
        return 2
    if kind == "replay" and not os.path.isfile(args.replay):
        print(f"liqmap: {args.replay}: file not found", file=sys.stderr)
        return 2

    from ..ui.app import LiqmapApp

    probe = os.environ.get("LIQMAP_FIRST_FRAME_FILE")

    def first_frame() -> None:
        if probe:
            with open(probe, "w") as f:
                f.write(f"{time.time():.6f} {time.time() - t_start:.6f}\n")

    app = LiqmapApp(cfg, theme_spec=spec, themes=themes, color_system=system,
                    source_factory=lambda: build_source(kind, cfg, args), first_frame=first_frame)
    app.run(mouse=bool(cfg["app"]["mouse"]))
    return int(app.return_code or 0)
