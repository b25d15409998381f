"""``liqmap`` / ``liqmap --demo`` / ``liqmap --replay FILE``: the terminal map.

Start-up order matters for the 1.0 s first-frame target and for colours:

1. pin the colour system (``TEXTUAL_COLOR_SYSTEM``) from ``--color`` before Textual is imported — Textual
   reads it once at import, and over ssh ``COLORTERM`` is usually lost;
2. load the theme files (a bad file: one line naming the file and the field, exit 2);
3. check that the data path's modules exist (a missing one: "liqmap: <X> is not built yet", exit 2);
4. start building the data source (the demo market, engine; live: the collector and cryptofeed, which the
   demo and replays never import: their parsers run over ``feeds/venues/_bases.OfflineFeed``) in its own thread before
   Textual is even imported, and start the app at once with an empty map ("connecting…"); the app's source
   worker collects the source when it is ready, so neither waits for the other;
5. demo: the market starts with ``demo.preroll_minutes`` of history (``feeds/demo/preroll.py``): the first
   chunk of the screen asset's history gives the first full frame, the rest fills in behind it.

``LIQMAP_FIRST_FRAME_FILE``: when set, the app writes the wall-clock time of its first full frame there, the
seconds since ``main`` started and the process's CPU seconds, and on a second line which of the heavy
libraries (``HEAVY_AT_START``) were loaded by then (the ``startup`` benchmark and ``tests/test_startup_imports.py``
read it). ``LIQMAPUI_NAIVE=1``: the full-refresh baseline renderer (one
segment per cell, every row repainted on every update, no separate live column) that the ``ssh_bytes``
benchmark compares against in the same run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Any

# Libraries the first frame should not wait for (docs/architecture.md, start-up): the venues' connection
# stack (cryptofeed and what it pulls in), contract metadata (ccxt) and the export/table library (polars).
HEAVY_AT_START = ("cryptofeed", "aiohttp", "requests", "websockets", "ccxt", "polars", "pandas", "pyarrow")


def _missing(*modules: str) -> str | None:
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return m
        except ModuleNotFoundError:
            return m
    return None


def make_source(kind: str, cfg: dict[str, Any], args):
    """The frame source for ``kind`` (demo, replay, live)."""
    if kind == "demo":
        from ..runtime import demo_preroll_seconds
        from ..ui.app import map_columns

        from ..feeds.demo.feed import DemoFeed

        # Lazy: only the asset on screen is simulated before the first frame; the others are built by the
        # pre-roll in the background (start-up target). Pre-roll: the market starts with history. ``start`` (no
        # flag: tests set it) fixes the market's wall-clock start; by default it is now, and the same seed then
        # lands on other column boundaries each run.
        screen = str(cfg["app"]["asset"]).upper()
        return DemoFeed(cfg, assets=list(cfg["universe"]["assets"]), seed=getattr(args, "seed", None),
                        speed=getattr(args, "speed", None), focus=[screen, *cfg["universe"].get("focus_extra", [])],
                        preroll=demo_preroll_seconds(cfg, map_columns), lazy=True, start=getattr(args, "start", None))
    if kind == "replay":
        from ..feeds.replay import ReplaySource

        return ReplaySource(args.replay, cfg, speed=getattr(args, "speed", None) or 1.0)
    if kind == "bus":
        from ..bus.source import BusSource

        return BusSource(cfg, args.bus)  # rows, books and snapshots from collectors elsewhere
    from ..feeds.metadata import Metadata
    from ..feeds.sources import LiveSource

    # Contract specs and public margin ladders from the disk cache (stale venues are refreshed in the
    # background by the collector): the synthetic model places each venue's levels with its own ladder.
    return LiveSource(cfg, metadata=Metadata.from_config(cfg, cfg.get("_data_dir")))


def build_runtime(kind: str, cfg: dict[str, Any], args):
    """The app's ``Runtime``: ``kind``'s frame source; history and snapshots persisted live."""
    from ..runtime import Runtime

    return Runtime(cfg, make_source(kind, cfg, args), store=kind == "live")


def build_source(kind: str, cfg: dict[str, Any], args):
    """The UI's ``SnapshotSource`` over the app's ``Runtime`` (called off the UI loop)."""
    from ..ui.app import trace
    from ..ui.source import EngineSource

    runtime = build_runtime(kind, cfg, args)
    runtime.trace = trace
    src = EngineSource(runtime.engine, label=runtime.label, stop=runtime.stop, run=runtime.run)
    src.runner = runtime
    # what follows the source's badge on the status bar (the replay's progress, "finished"), if it says anything
    src.badge = lambda: str(getattr(runtime.source, "badge", "") or "")
    runtime.on_update = lambda: src.on_update() if src.on_update is not None else None
    src.on_view = lambda view: runtime.on_view(view.asset)
    return src


def _start_build(kind: str, cfg: dict[str, Any], args):
    """``build_source`` in a daemon thread, started now; returns a Future of the source."""
    import concurrent.futures
    import threading

    fut: concurrent.futures.Future = concurrent.futures.Future()

    def work() -> None:
        try:
            fut.set_result(build_source(kind, cfg, args))
        except BaseException as e:  # noqa: BLE001 - handed to the app, which shows it on screen
            fut.set_exception(e)

    threading.Thread(target=work, name="liqmap-source-build", daemon=True).start()
    return fut


def main(args, cfg: dict[str, Any]) -> int:
    t_start = time.time()
    if os.environ.get("LIQMAPUI_STARTUP_TRACE"):
        with open(os.environ["LIQMAPUI_STARTUP_TRACE"], "a") as f:
            f.write(f"{t_start:.4f} {time.process_time():.4f} run-main\n")
    from ..ui.palettes import detect_color_system, textual_color_system
    from ..ui.themes import ThemeError, resolve

    system = detect_color_system()
    os.environ["TEXTUAL_COLOR_SYSTEM"] = textual_color_system(system)
    try:
        spec, themes = resolve(cfg["app"]["theme"])
    except ThemeError as e:
        print(f"liqmap: {e}", file=sys.stderr)
        return 2

    kind = ("demo" if getattr(args, "demo", False) else "replay" if getattr(args, "replay", None)
            else "bus" if getattr(args, "bus", None) else "live")
    if kind == "bus":
        from ..bus.settings import BusConfigError, settings as bus_settings

        try:  # a bad URL: one line (credentials redacted) before the map starts
            bus_settings(cfg, args.bus)
        except BusConfigError as e:
            print(f"liqmap: {e}", file=sys.stderr)
            return 2
    needs = {"demo": ("liqmap.core.engine", "liqmap.feeds.demo.feed", "liqmap.feeds.parser"),
             "replay": ("liqmap.core.engine", "liqmap.feeds.replay"),
             "bus": ("liqmap.core.engine", "nats"),
             "live": ("liqmap.core.engine", "liqmap.feeds.collector")}[kind]
    missing = _missing(*needs)
    if missing:
        print(f"liqmap: {missing} is not built yet", file=sys.stderr)
        return 2
    if kind == "replay" and not os.path.isfile(args.replay):
        print(f"liqmap: {args.replay}: file not found", file=sys.stderr)
        return 2
    if kind == "replay":
        from ..feeds.recording import RecordingError, open_recording

        try:  # a file that is no recording at all: one line before the map starts, not a frozen map
            open_recording(args.replay)
        except RecordingError as e:
            print(f"liqmap: {e}", file=sys.stderr)
            return 2

    # The data path (the demo market or the live collector, the engine) is built in its own thread
    # from here on, while Textual is imported and the app mounts: the first full frame waits for both, not
    # for one after the other. The app's source worker just collects it.
    early = _start_build(kind, cfg, args)

    from ..ui.app import LiqmapApp

    probe = os.environ.get("LIQMAP_FIRST_FRAME_FILE")

    def first_frame() -> None:
        if probe:
            loaded = ",".join(m for m in HEAVY_AT_START if m in sys.modules)
            with open(probe, "w") as f:
                f.write(f"{time.time():.6f} {time.time() - t_start:.6f} {time.process_time():.4f}\nloaded: {loaded}\n")

    app = LiqmapApp(cfg, theme_spec=spec, themes=themes, color_system=system,
                    source_factory=early.result, first_frame=first_frame,
                    source_label={"demo": "DEMO", "replay": "REPLAY", "bus": "BUS"}.get(kind, "LIVE"),
                    naive=os.environ.get("LIQMAPUI_NAIVE") == "1")
    app.run(mouse=bool(cfg["app"]["mouse"]))
    rc = int(app.return_code or 0)
    # Damage found mid-replay (the map showed everything before it): the same one line and exit 2 as headless.
    runner = getattr(early.result(), "runner", None) if early.done() and not early.exception() else None
    err = getattr(getattr(runner, "source", None), "error", None)
    if err:
        print(f"liqmap: {err}", file=sys.stderr)
        return rc or 2
    return rc
