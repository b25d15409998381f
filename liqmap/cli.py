"""Command-line entry point.

Parses arguments, loads the settings (defaults < config file < LIQMAP_* env < flags) and hands off to
one module per command under ``liqmap.commands``. A command whose module is not there yet says so and
exits 2 instead of pretending. Colour settings are applied to the environment here, before anything
imports Textual, because Textual reads them once at import/start.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from typing import Any

from . import __version__
from .core.events import LIVE_VENUES
from .core.modes import MODES

COMMANDS = ("run", "record", "replay", "collect", "screen", "doctor", "export")

EPILOG = """\
commands:
  liqmap [--demo | --replay FILE]         the terminal map (live by default)
  liqmap --bus nats://HOST:PORT           the map on a message bus that collectors publish to
  liqmap record OUT [--demo]              record every raw frame to OUT (gzip JSON lines)
  liqmap replay FILE --headless --report OUT.json
                                          push a recording through the parsers, write a JSON report
  liqmap collect [--demo]                 run the engine headless: collect, compute, persist
    [--bus nats://HOST:PORT]              ... and publish rows and snapshots to the bus
    [--from-bus nats://HOST:PORT]         ... with the bus as the source instead of the venues
  liqmap screen --headless [--json] [--demo | --replay FILE] [--after S | --interval S]
                                          the screener's rows (every asset) for scripts
  liqmap doctor                           check each venue and channel live
  liqmap export --asset A --format parquet|csv|ndjson OUT
                                          write history and grids

keys (in the app): 1-4 modes, m cycle, [ ] asset, t/T timeframe, +/- zoom, arrows pan, c recentre,
v venues, r reports, Enter jump to event, ? help, q quit.
settings: defaults < $XDG_CONFIG_HOME/liqmap/config.toml < LIQMAP_* env < flags.
"""


def _common(p: argparse.ArgumentParser, suppress: bool = False) -> None:
    """Flags accepted before or after a subcommand. Subparsers use SUPPRESS so they don't clobber."""
    d = argparse.SUPPRESS if suppress else None
    g = p.add_argument_group("common options")
    g.add_argument("--assets", default=d, metavar="LIST", help="comma-separated assets (default: the 65 in the config)")
    g.add_argument("--venues", default=d, metavar="LIST", help="comma-separated venues: " + ",".join(LIVE_VENUES))
    g.add_argument("--mode", default=d, choices=MODES, help="map mode at start (default hybrid)")
    g.add_argument("--timeframe", default=d, choices=("1m", "5m", "15m", "1h", "4h"), help="column timeframe at start")
    g.add_argument("--asset", default=d, metavar="NAME", help="asset on screen at start (default BTC)")
    g.add_argument("--theme", default=d, metavar="NAME", help="colour theme (themes/ or your config dir)")
    g.add_argument("--color", default=d, choices=("auto", "truecolor", "256", "16"), help="colour system (over ssh COLORTERM is often lost)")
    g.add_argument("--no-mouse", action="store_true", default=argparse.SUPPRESS if suppress else False, help="do not capture the mouse")
    g.add_argument("--hz", type=float, default=d, help="UI refresh rate (default 4)")
    g.add_argument("--config", default=d, metavar="FILE", help="config file (default $XDG_CONFIG_HOME/liqmap/config.toml)")
    g.add_argument("--data-dir", default=d, metavar="DIR", help="history and snapshots (default $XDG_DATA_HOME/liqmap)")
    g.add_argument("--seed", type=int, default=d, help="demo market seed (deterministic)")
    g.add_argument("--speed", type=float, default=d, help="demo market speed multiple of real time")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="liqmap",
        description="Where crypto price gets pulled and stopped: real liquidations, a forward "
        "liquidation estimate and order-book walls in one terminal heatmap.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"liqmap {__version__}")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--demo", action="store_true", help="run on the simulated five-venue market (no network)")
    src.add_argument("--replay", metavar="FILE", help="run the map on a recording instead of live data")
    src.add_argument("--bus", metavar="URL", help="run the map on a NATS bus that `liqmap collect --bus` publishes "
                     "to (nats://[user:pass@]HOST:PORT, tls://...; see README 'Run it across machines')")
    _common(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("record", help="record every raw frame (websocket and REST) to a file")
    r.add_argument("out", metavar="OUT")
    r.add_argument("--demo", action="store_true", default=argparse.SUPPRESS, help="record the demo market")
    r.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (--demo: seconds at --speed, so market time = duration x speed, written unpaced)")
    _common(r, suppress=True)

    rp = sub.add_parser("replay", help="push a recording through the parsers")
    rp.add_argument("file", metavar="FILE")
    rp.add_argument("--headless", action="store_true", help="no UI; process the whole file")
    rp.add_argument("--report", metavar="OUT.json", help="write the JSON report (with --headless)")
    _common(rp, suppress=True)

    c = sub.add_parser("collect", help="run the engine headless: collect, compute, persist")
    c.add_argument("--demo", action="store_true", default=argparse.SUPPRESS, help="collect from the demo market")
    c.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    c.add_argument("--status-every", type=float, default=10.0, help="seconds between status lines on stderr")
    cb = c.add_mutually_exclusive_group()
    cb.add_argument("--bus", metavar="URL", default=argparse.SUPPRESS,
                    help="publish what is collected to this NATS JetStream bus (nats://HOST:PORT)")
    cb.add_argument("--from-bus", metavar="URL", default=None,
                    help="collect from this bus instead of the venues (a second store, a sharded set-up)")
    _common(c, suppress=True)

    sc = sub.add_parser("screen", help="the screener's rows (one per asset) for scripts")
    sc.add_argument("--headless", action="store_true", help="no UI (required)")
    sc.add_argument("--json", action="store_true", help="one JSON object per line (default: a text table)")
    sc.add_argument("--after", type=float, default=10.0,
                    help="one-shot: the rows this many seconds after the start (demo, live)")
    sc.add_argument("--interval", type=float, default=None,
                    help="streaming: the rows every this many seconds (recording time in a replay)")
    sc.add_argument("--duration", type=float, default=None, help="with --interval: stop after this many seconds")
    sc.add_argument("--count", type=int, default=None, help="with --interval: stop after this many emissions")
    scs = sc.add_mutually_exclusive_group()
    scs.add_argument("--demo", action="store_true", default=argparse.SUPPRESS, help="the demo market")
    scs.add_argument("--replay", metavar="FILE", default=argparse.SUPPRESS, help="a recording, unpaced")
    _common(sc, suppress=True)

    d = sub.add_parser("doctor", help="check each venue and channel live")
    d.add_argument("--seconds", type=float, default=10.0, help="how long to listen per venue")
    _common(d, suppress=True)

    e = sub.add_parser("export", help="write history and grids as parquet, CSV or NDJSON")
    e.add_argument("out", metavar="OUT")
    e.add_argument("--format", choices=("parquet", "csv", "ndjson"), default="parquet")
    e.add_argument("--what", choices=("liquidations", "open_interest", "sweeps", "absorptions", "walls",
                                      "forecast_scores", "alerts", "reach_scores", "grid"),
                   default="liquidations")
    e.add_argument("--since", default=None, help="start time (ISO 8601 or epoch seconds)")
    e.add_argument("--until", default=None, help="end time (ISO 8601 or epoch seconds)")
    _common(e, suppress=True)
    return p


def flag_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Map command-line flags onto config sections (the highest-precedence layer)."""
    o: dict[str, dict[str, Any]] = {"app": {}, "universe": {}}
    for name in ("mode", "timeframe", "theme", "color", "hz", "asset"):
        v = getattr(args, name, None)
        if v is not None:
            o["app"][name] = v
    if getattr(args, "no_mouse", False):
        o["app"]["mouse"] = False
    if getattr(args, "assets", None):
        o["universe"]["assets"] = [a.strip().upper() for a in args.assets.split(",") if a.strip()]
    if getattr(args, "venues", None):
        o["universe"]["venues"] = [v.strip().lower() for v in args.venues.split(",") if v.strip()]
    return {k: v for k, v in o.items() if v}


def apply_color_env(color: str) -> None:
    """Pin the colour system for Textual/Rich before they are imported (over ssh COLORTERM is lost)."""
    if color == "truecolor":
        os.environ["COLORTERM"] = "truecolor"
    elif color == "256":
        os.environ.pop("COLORTERM", None)
        os.environ["TERM"] = "xterm-256color"
    elif color == "16":
        os.environ.pop("COLORTERM", None)
        os.environ["TERM"] = "xterm"
    os.environ["LIQMAP_COLOR_SYSTEM"] = color  # read by the UI's palette selection


# Flags with a numeric range: name → (low, high, low inclusive). NaN and ±inf are always refused: a NaN speed
# once made the demo spin at 100 % CPU ignoring --duration and every signal.
FLAG_RANGES: dict[str, tuple[float, float, bool]] = {
    "hz": (0.1, 60.0, True),
    "speed": (0.0, 10000.0, False),
    "duration": (0.0, 10 * 365 * 86400.0, False),
    "status_every": (0.1, 86400.0, True),
    "seconds": (0.5, 3600.0, True),
    "seed": (0, 2**32 - 1, True),
}


def check_flags(args: argparse.Namespace) -> str | None:
    """The first out-of-range numeric flag as one line (``--speed nan: must be a finite number ...``)."""
    for name, (lo, hi, lo_inclusive) in FLAG_RANGES.items():
        v = getattr(args, name, None)
        if v is None:
            continue
        flag = "--" + name.replace("_", "-")
        if not math.isfinite(v):
            return f"{flag} {v}: must be a finite number"
        if v > hi or v < lo or (v == lo and not lo_inclusive):
            low = f">= {lo:g}" if lo_inclusive else f"> {lo:g}"
            return f"{flag} {v:g}: must be {low} and <= {hi:g}"
    return None


def choose_data_dir(args: argparse.Namespace, command: str, cfg: dict[str, Any]) -> None:
    """``cfg["_data_dir"]``: ``--data-dir``, else $LIQMAP_DATA_DIR, else the XDG default — and for the demo
    market and replays a ``demo``/``replay`` directory under it, so simulated or replayed history never mixes
    with the live history (a live run once restored 325 simulated snapshots)."""
    from .config import default_data_dir

    explicit = getattr(args, "data_dir", None) or os.environ.get("LIQMAP_DATA_DIR")
    if explicit:
        cfg["_data_dir"] = explicit
        return
    base = default_data_dir()
    if getattr(args, "demo", False):
        base = base / "demo"
    elif getattr(args, "replay", None) or command == "replay":
        base = base / "replay"
    cfg["_data_dir"] = str(base)


def writes_data_dir(args: argparse.Namespace, command: str) -> bool:
    """Commands that write history/snapshots hold the data-dir lock: collect, and the live app."""
    if command == "collect":
        return True
    return (command == "run" and not getattr(args, "demo", False) and not getattr(args, "replay", None)
            and not getattr(args, "bus", None))  # a viewer on the bus keeps no history of its own


def not_built(what: str) -> int:
    print(f"liqmap: {what} is not built yet", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError, load

    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "run"
    bad = check_flags(args)
    if bad:
        print(f"liqmap: {bad}", file=sys.stderr)
        return 2
    try:
        cfg = load(getattr(args, "config", None), overrides=flag_overrides(args))
    except ConfigError as e:
        print(f"liqmap: {e}", file=sys.stderr)
        return 2
    choose_data_dir(args, command, cfg)
    apply_color_env(cfg["app"]["color"])
    try:
        module = importlib.import_module(f"liqmap.commands.{command}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("liqmap.commands"):
            return not_built(f"'{command}'")
        raise
    lock = None
    if writes_data_dir(args, command):
        from .core.datalock import DataDirBusy, DataDirLock, describe

        try:
            lock = DataDirLock(cfg["_data_dir"], f"liqmap {command}").acquire()
        except DataDirBusy as e:
            print(f"liqmap: {e}", file=sys.stderr)
            return 2
        if lock.stale:
            print(f"liqmap: took over the stale data-dir lock of {describe(lock.stale)}: it is no longer "
                  "running", file=sys.stderr)
    try:
        return int(module.main(args, cfg) or 0)
    except KeyboardInterrupt:
        return 130
    finally:
        if lock is not None:
            lock.release()


def entry() -> None:
    sys.exit(main())
