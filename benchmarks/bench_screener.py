"""Benchmark ``screener`` (issue 14 item 4): CPU ms per screener refresh at 200×60, 65 assets, target ≤ 5 ms.

What one refresh of the TUI's screener (key ``s``) costs, measured the way ``render_cpu`` measures a map tick:
the screen's own work — ``Engine.screener()`` (the worker thread's fetch) and ``_set_rows`` (filter, sort,
cells, the table) — plus Textual's compositing and output of what it marked dirty (a Pilot pause after the
refresh minus the median CPU of an idle Pilot pause right after it, which is harness overhead). The screen
runs in a real Textual app at 200×60 over a real engine: the demo market (seed 1) with the shipped 65-asset
universe, one simulated minute of history, then per refresh one simulated second of market data and the
engine's ingests at its own cadence (untimed: the engine's cost is the ``engine_*`` benchmarks'): the screen
asset every second (``engine.fast_hz`` = 1) and each background asset every 5 s (``BACKGROUND_EVERY["1m"]``,
staggered), i.e. 14 of 65 assets ingested before each refresh (21.5 %). How many rows then read differently
is counted too (``rows_changed_per_tick``): the ingested ones plus any whose sweep age moved.

Same run, same market, same cadence, each in its own fresh interpreter:

- ``baseline``: the code before this benchmark existed (``BASELINE_REV``, checked out with ``git archive``
  into a temporary directory): DataTable cleared and refilled on every refresh, sweep ages in seconds.
- ``ours``: this tree.
- ``ours_ages_in_seconds``: this tree with the sweep age written to the second as before (``sweep_age``
  patched), to show what the coarser age is worth on its own.

Also per child, ``map_tick_under_screener``: what one tick of the map beneath the open screener costs (the
app built as ``liqmap`` builds it, ``render_cpu``'s snapshots, a new one each tick): before, the hidden map
was drawn and Textual repainted the screener wherever it changed; now the app skips drawing a covered map.

CPU time (``time.process_time``: the machine is shared); the load average is in ``detail``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# main before the incremental screener: the DataTable cleared and refilled on every refresh
BASELINE_REV = "afbc9fef06ba3e8218cc4e5cdaf273b1945811a4"
TARGET_MS = 5.0
SIZE = (200, 60)
WARM_S = 60.0  # simulated seconds of history before the first refresh
TICKS = 60
BACKGROUND_EVERY_S = 5  # engine.schedule.BACKGROUND_EVERY["1m"]: a background asset's ingest period


def _drive(ages_in_seconds: bool = False) -> dict:
    """Runs in the benchmark's child interpreter, against whichever ``liqmap`` is first on ``sys.path``."""
    import asyncio
    import copy

    import liqmap
    from liqmap.config import DEFAULTS
    from liqmap.feeds.demo import DemoFeed
    from liqmap.feeds.demo.feed import pump
    from liqmap.runtime import Runtime
    from liqmap.ui.screener import ScreenerScreen
    from textual.app import App
    from textual.widgets import Input

    if ages_in_seconds:
        from liqmap.core import screener as core_screener

        def seconds(age: float) -> str:  # the age text before ``sweep_age``: it moved every second
            age = max(age, 0.0)
            return f"{age:.0f}s" if age < 120 else f"{age / 60:.0f}m" if age < 7200 else f"{age / 3600:.0f}h"

        core_screener.sweep_age = seconds

    cfg = copy.deepcopy(DEFAULTS)
    cfg["alerts"] = []  # alert evaluation is the ``alerts`` benchmark's
    assets = list(cfg["universe"]["assets"])
    rt = Runtime(cfg, DemoFeed(cfg, assets=assets, seed=1))
    eng = rt.engine

    class Host(App):
        def on_mount(self) -> None:
            scr = ScreenerScreen(eng.screener)
            scr.refresh_rows = lambda: None  # no 1 s timer of its own: the benchmark drives the refreshes
            self.push_screen(scr)

    out: dict = {"liqmap": str(Path(liqmap.__file__).parent), "assets": len(assets)}

    async def go() -> None:
        await pump(rt.source.demo, rt.ingest, seconds=WARM_S)
        for a in assets:
            eng.ingest(a, rt.clock())
        app = Host()
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(5):
                await pilot.pause()
            scr = app.screen
            # the filter's cursor blinks at 2 Hz whatever the screener does: not part of a refresh
            scr.query_one(Input).cursor_blink = False
            scr._set_rows(scr.fetch())
            await pilot.pause()
            prev = {r.asset: r.to_dict() for r in scr.rows}
            raw, tick_only, fetch, idle, changed, ingested = [], [], [], [], [], []
            for i in range(TICKS):
                await pump(rt.source.demo, rt.ingest, seconds=1.0)
                now = rt.clock()
                n = 0
                for j, a in enumerate(assets):
                    if j == 0 or (i + j) % BACKGROUND_EVERY_S == 0:
                        eng.ingest(a, now)
                        n += 1
                ingested.append(n)
                c0 = time.process_time()
                rows = scr.fetch()
                c1 = time.process_time()
                scr._set_rows(rows)
                c2 = time.process_time()
                await pilot.pause()  # Textual composes and writes the dirty regions
                c3 = time.process_time()
                await pilot.pause()  # nothing dirty: what a Pilot pause itself costs
                c4 = time.process_time()
                raw.append((c3 - c0) * 1e3)
                tick_only.append((c2 - c0) * 1e3)
                fetch.append((c1 - c0) * 1e3)
                idle.append((c4 - c3) * 1e3)
                cur = {r.asset: r.to_dict() for r in rows}  # untimed: which rows read differently now
                changed.append(sum(1 for a, d in cur.items() if prev.get(a) != d))
                prev = cur
            base = statistics.median(idle)
            cpu = sorted(max(r - base, t) for r, t in zip(raw, tick_only))
            out.update(median_ms=round(statistics.median(cpu), 3), p90_ms=round(cpu[int(len(cpu) * 0.9)], 3),
                       fetch_median_ms=round(statistics.median(fetch), 3),
                       tick_only_median_ms=round(statistics.median(tick_only), 3),
                       pilot_idle_pause_ms_subtracted=round(base, 3), ticks=len(cpu), rows=len(scr.shown),
                       rows_changed_per_tick=round(statistics.mean(changed), 1),
                       rows_changed_share=round(statistics.mean(changed) / len(assets), 3),
                       assets_ingested_per_tick=round(statistics.mean(ingested), 1))

    asyncio.run(go())
    out["map_tick_under_screener"] = asyncio.run(_map_under_screener(ScreenerScreen, list(eng.screener())))
    return out


async def _map_under_screener(ScreenerScreen, rows: list) -> dict:
    """The other cost of an open screener: the app's map ticks on beneath it (``render_cpu``'s snapshots, a
    new one every tick, the app as ``liqmap`` builds it). CPU ms per map tick with the screener on top."""
    import asyncio  # noqa: F401 - run by the caller's loop
    import copy

    sys.path[1:1] = [str(ROOT / "benchmarks"), str(ROOT / "tests")]
    from bench_ui import _flow_snapshots, _ListSource
    from liqmap.config import DEFAULTS
    from liqmap.ui.app import LiqmapApp
    from liqmap.ui.themes import resolve
    from textual.widgets import Input

    snaps = _flow_snapshots(41, 56)
    cfg = copy.deepcopy(DEFAULTS)
    cfg["app"]["hz"] = 0.5  # the benchmark drives the ticks itself
    spec, themes = resolve("dark", environ={})
    src = _ListSource(snaps)
    app = LiqmapApp(cfg, source=src, theme_spec=spec, themes=themes, color_system="256")
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(20):
            await pilot.pause()
            if app.draws:
                break
        scr = ScreenerScreen(lambda: rows)
        scr.refresh_rows = lambda: None  # the screener's own refreshes are measured above
        app.push_screen(scr)
        await pilot.pause()
        scr.query_one(Input).cursor_blink = False
        scr._set_rows(rows)
        await pilot.pause()
        drawn = app.draws
        cpu, idle = [], []
        for _ in range(len(snaps) - 1):
            src.advance()
            c0 = time.process_time()
            app._tick()
            await pilot.pause()
            c1 = time.process_time()
            await pilot.pause()
            c2 = time.process_time()
            cpu.append((c1 - c0) * 1e3)
            idle.append((c2 - c1) * 1e3)
        base = statistics.median(idle)
        return {"median_ms": round(max(statistics.median(cpu) - base, 0.0), 3), "ticks": len(cpu),
                "map_draws": app.draws - drawn}


def _child(tree: Path, *flags: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), LIQMAP_BENCH_TREE=str(tree))
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--drive", *flags], env=env,
                         capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise RuntimeError(f"screener benchmark child failed ({tree}): {res.stderr.strip()[-2000:]}")
    got = json.loads(res.stdout.strip().splitlines()[-1])
    if Path(got["liqmap"]).resolve() != (tree / "liqmap").resolve():  # an editable install must not shadow it
        raise RuntimeError(f"the child imported {got['liqmap']}, not {tree / 'liqmap'}")
    return got


def bench_screener() -> dict:
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="liqmap-screener-base-") as tmp:
        base_tree = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE_REV, "liqmap"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base_tree)], input=archive, check=True)
        baseline = _child(base_tree)
    ours = _child(ROOT)
    ages_1s = _child(ROOT, "--ages-in-seconds")
    load1 = os.getloadavg()
    v = ours["median_ms"]
    return {"value": v, "unit": "ms CPU per screener refresh, 65 rows at 200x60 (fetch + table + compositing)",
            "target": TARGET_MS, "ok": v <= TARGET_MS,
            "detail": {"baseline": baseline, "ours": ours, "ours_ages_in_seconds": ages_1s,
                       "speedup_vs_baseline": round(baseline["median_ms"] / max(v, 1e-9), 1),
                       "baseline_rev": BASELINE_REV, "size": f"{SIZE[0]}x{SIZE[1]}",
                       "cadence": "refresh every simulated 1 s; screen asset ingested every 1 s, background "
                                  f"assets every {BACKGROUND_EVERY_S} s (staggered)",
                       "loadavg_before": [round(x, 2) for x in load0],
                       "loadavg_after": [round(x, 2) for x in load1]}}


BENCHMARKS = {"screener": bench_screener}


if __name__ == "__main__" and "--drive" in sys.argv:
    sys.path.insert(0, os.environ.get("LIQMAP_BENCH_TREE", str(ROOT)))
    print(json.dumps(_drive(ages_in_seconds="--ages-in-seconds" in sys.argv)), flush=True)
