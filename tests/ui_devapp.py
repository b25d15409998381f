#!/usr/bin/env python3
"""Run the liqmap app on the real-data ``FixtureSource`` (see ui_fixtures.py), for the tmux end-to-end test
and the UI benchmarks: ``python tests/ui_devapp.py [--color 256] [--naive] [--hz 4] [--static]``.

The colour system is pinned the same way ``liqmap`` pins it (env before Textual is imported).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    t0 = time.time()
    p = argparse.ArgumentParser()
    p.add_argument("--color", default="256")
    p.add_argument("--theme", default="dark")
    p.add_argument("--hz", type=float, default=4.0)
    p.add_argument("--naive", action="store_true", help="full-refresh baseline renderer")
    p.add_argument("--static", action="store_true", help="no live flow")
    p.add_argument("--no-mouse", action="store_true")
    a = p.parse_args()
    from liqmap.cli import apply_color_env
    from liqmap.config import load

    cfg = load(overrides={"app": {"color": a.color, "hz": a.hz, "theme": a.theme}})
    apply_color_env(cfg["app"]["color"])
    from liqmap.ui.palettes import detect_color_system, textual_color_system

    system = detect_color_system()
    os.environ["TEXTUAL_COLOR_SYSTEM"] = textual_color_system(system)
    from liqmap.ui.themes import resolve

    spec, themes = resolve(cfg["app"]["theme"])
    from liqmap.ui.app import LiqmapApp

    probe = os.environ.get("LIQMAP_FIRST_FRAME_FILE")

    def first_frame() -> None:
        if probe:
            with open(probe, "w") as f:
                f.write(f"{time.time():.6f} {time.time() - t0:.6f}\n")

    def factory():
        from ui_fixtures import FixtureSource

        return FixtureSource(("BTC", "ETH", "SOL", "XRP"), flow=not a.static)

    app = LiqmapApp(cfg, theme_spec=spec, themes=themes, color_system=system, source_factory=factory,
                    naive=a.naive, first_frame=first_frame)
    app.run(mouse=not a.no_mouse)
    return 0


if __name__ == "__main__":
    sys.exit(main())
