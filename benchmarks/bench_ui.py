"""UI benchmarks (docs/architecture.md §8, §11): ``render_cpu``, ``ssh_bytes``, ``startup``, ``quit``.

- ``render_cpu``: CPU ms per UI tick at 200×60 while data flows: a new snapshot every tick (real trades
  arriving in the live column, the window shifting once per column), the tick's own work plus Textual's
  compositing and output of what it marked dirty (measured as a Pilot pause after the tick minus the CPU of
  an idle Pilot pause right after it, which is test-harness overhead, reported separately). Snapshots are built before timing, so the source's cost
  is not counted. Baseline in the same run: the naive renderer (full refresh, one segment per cell, no
  separate live column) on the same snapshots.
- ``ssh_bytes``: bytes/s reaching a 256-colour 200×60 pty under tmux (``pipe-pane``) while ``liqmap --demo``
  runs (same seed), against ``LIQMAPUI_NAIVE=1`` (the full-refresh renderer) in the same run.
- ``startup``: ``liqmap --demo`` spawned in a pty to its first full frame (``LIQMAP_FIRST_FRAME_FILE``), with
  compiled bytecode cached as an installed liqmap has it (and one start without, in ``detail``); phases and
  the process's CPU seconds at each from ``LIQMAPUI_STARTUP_TRACE``. Baseline in the same run: a bare
  ``python -c "import numpy, textual.app"``.
- ``quit``: ``q`` to process exit in the same pty set-up; baseline: a key's round trip in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

RENDER_TARGET_MS = 5.0
SSH_TARGET_BPS = 20_000.0
STARTUP_TARGET_S = 1.0  # issue 19 item 3 (1.5 before)


# ------------------------------------------------------------------------------------------ render_cpu
class _ListSource:
    """Hands out prebuilt snapshots, one new one per ``advance()``."""

    def __init__(self, snaps) -> None:
        self.snaps = snaps
        self.i = 0

    def set_view(self, view) -> None:
        pass

    def latest(self, view):
        return self.snaps[self.i % len(self.snaps)]

    def status(self):
        from liqmap.ui.source import SourceStatus

        return SourceStatus("running", "REPLAY")

    def advance(self) -> None:
        self.i += 1


def _flow_snapshots(n: int, rows: int, tick_s: float = 0.25):
    """``n`` snapshots of BTC Hybrid 1m, each ``tick_s`` later with the real trades of that interval added."""
    import numpy as np
    from ui_fixtures import FixtureSource

    from liqmap.ui.source import View

    now0 = float(int(time.time() // 60) * 60 + 5)  # a few seconds into a column: shifts happen in the run
    src = FixtureSource(("BTC",), now=now0, flow=True)
    live = src._pending["BTC"]
    view = View("BTC", "hybrid", "1m", None, rows * 2, None, 240)
    snaps = []
    src.flow = False
    for i in range(n):
        src.now = now0 + i * tick_s
        k = int(np.searchsorted(live["ts"], src.now, side="right"))
        if k:
            src._add("BTC", live[:k])
            live = live[k:]
        src._version += 1
        snaps.append(src.latest(view))
    return snaps


async def _time_ticks(snaps, naive: bool, size=(200, 60)) -> dict:
    from liqmap.config import DEFAULTS
    from liqmap.ui.app import LiqmapApp
    from liqmap.ui.themes import resolve

    cfg = copy.deepcopy(DEFAULTS)
    cfg["app"]["hz"] = 0.5  # the benchmark drives the ticks itself
    spec, themes = resolve("dark", environ={})
    src = _ListSource(snaps)
    app = LiqmapApp(cfg, source=src, theme_spec=spec, themes=themes, color_system="256", naive=naive)
    cpu: list[float] = []
    raw: list[float] = []
    tick_only: list[float] = []
    idle: list[float] = []
    async with app.run_test(size=size) as pilot:
        for _ in range(20):
            await pilot.pause()
            if app.draws:
                break
        await pilot.pause()
        for _ in range(len(snaps) - 1):
            src.advance()
            c0 = time.process_time()
            app._tick()
            c1 = time.process_time()
            await pilot.pause()  # Textual composes and writes the dirty regions
            c2 = time.process_time()
            await pilot.pause()  # nothing dirty: what a pilot pause itself costs (not part of a UI tick)
            c3 = time.process_time()
            raw.append((c2 - c0) * 1000)
            tick_only.append((c1 - c0) * 1000)
            idle.append((c3 - c2) * 1000)
        base = statistics.median(idle)
        cpu = [max(r - base, t) for r, t in zip(raw, tick_only)]
    return {"median_ms": statistics.median(cpu), "p90_ms": sorted(cpu)[int(len(cpu) * 0.9)],
            "tick_only_median_ms": round(statistics.median(tick_only), 3),
            "with_pilot_overhead_median_ms": round(statistics.median(raw), 3),
            "pilot_idle_pause_ms_subtracted": round(base, 3), "ticks": len(cpu), "draws": app.draws}


def bench_render_cpu() -> dict:
    snaps = _flow_snapshots(81, 56)
    ours = asyncio.run(_time_ticks(snaps, naive=False))
    naive = asyncio.run(_time_ticks(snaps, naive=True))
    v = ours["median_ms"]
    return {"value": round(v, 3), "unit": "ms/tick", "target": RENDER_TARGET_MS, "ok": v <= RENDER_TARGET_MS,
            "detail": {"ours": ours, "naive_full_refresh": naive,
                       "speedup_vs_naive": round(naive["median_ms"] / max(v, 1e-9), 1),
                       "size": "200x60", "snapshot_per_tick": True}}


# ------------------------------------------------------------------------------------------ ssh_bytes
def _tmux(*args: str, sock: str) -> str:
    """tmux on a private server per session (``-L``): never touches anyone else's sessions."""
    return subprocess.run(["tmux", "-L", sock, *args], check=True, capture_output=True, text=True).stdout


def _spawn(cmd: str, env: dict, size=(200, 60), env_prefix: str = "") -> str:
    name = f"liqmap-bench-{uuid.uuid4().hex[:8]}"  # also the name of its private tmux server
    envs = env_prefix + " ".join(f"{k}={v}" for k, v in env.items())
    # The window exists at its size before liqmap starts (a fresh tmux server may start at 80×24 first).
    _tmux("new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]), "sleep 300", sock=name)
    _tmux("respawn-pane", "-k", "-t", name, f"cd {ROOT} && env -u COLUMNS -u LINES {envs} {cmd}; sleep 30",
          sock=name)
    return name


def _kill(name: str) -> None:
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True)  # its own private server
    sock = os.path.join(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", name)
    with contextlib.suppress(OSError):
        os.unlink(sock)  # tmux leaves the socket file behind


def _measure_bytes(warmup: float, seconds: float, tmp: Path) -> dict:
    """Ours and the naive renderer side by side (same seed, same second, so the same simulated market),
    measured over the same window, which is placed to contain a 1m column boundary (the body shift).

    The window starts once both have the screen asset's whole pre-roll history (the demo writes the start
    view's width of it, up to 200 minutes at 200 columns; while it fills, every row of the map changes as the
    history arrives): the number is the steady cost of a map while data flows. The fill's own duration is in
    ``fill_s``."""
    runs = {}
    traces = {}
    t_spawn = time.time()
    for label, naive in (("ours", False), ("naive", True)):
        traces[label] = tmp / f"trace-{label}"
        env = {"XDG_CONFIG_HOME": str(tmp / f"cfg-{label}"), "XDG_DATA_HOME": str(tmp / f"data-{label}"),
               "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "LIQMAPUI_NAIVE": "1" if naive else "0",
               "LIQMAPUI_STARTUP_TRACE": str(traces[label])}
        runs[label] = (_spawn(f"{sys.executable} -m liqmap --demo --color 256 --seed 7", env), tmp / f"{label}.bin")
    try:
        time.sleep(warmup)
        fill_s = {}
        end = time.monotonic() + 600
        while len(fill_s) < len(traces) and time.monotonic() < end:
            for label, tr in traces.items():
                if label not in fill_s and tr.exists() and "preroll-done-BTC" in tr.read_text():
                    fill_s[label] = round(time.time() - t_spawn, 1)
            time.sleep(0.2)
        while not (35 <= time.time() % 60 < 45):  # the window then crosses a minute boundary
            time.sleep(0.2)
        for name, out in runs.values():
            _tmux("pipe-pane", "-o", "-t", name, f"cat >> {out}", sock=name)
        t0 = time.time()
        time.sleep(seconds)
        for name, _ in runs.values():
            _tmux("pipe-pane", "-t", name, sock=name)  # stop piping
        time.sleep(0.2)
        res = {}
        for label, (name, out) in runs.items():
            n = out.stat().st_size if out.exists() else 0
            screen = _tmux("capture-pane", "-p", "-t", name, sock=name)
            res[label] = {"bytes": n, "seconds": seconds, "bytes_per_s": round(n / seconds, 1),
                          "map_drawn": "▶" in screen and "DEMO" in screen}
        res["window"] = [round(t0, 1), round(t0 + seconds, 1)]
        res["fill_s"] = fill_s
        return res
    finally:
        for name, _ in runs.values():
            _kill(name)


def bench_ssh_bytes() -> dict:
    with tempfile.TemporaryDirectory() as d:
        r = _measure_bytes(8.0, 30.0, Path(d))
    ours, naive = r["ours"], r["naive"]
    v = ours["bytes_per_s"]
    return {"value": v, "unit": "B/s", "target": SSH_TARGET_BPS, "ok": v <= SSH_TARGET_BPS and ours["map_drawn"],
            "detail": {"ours": ours, "naive_full_refresh": naive,
                       "ratio_naive_over_ours": round(naive["bytes_per_s"] / max(v, 1e-9), 1),
                       "history_filled_after_s": r.get("fill_s"),
                       "window_includes_column_shift": True, "loadavg_1m": round(os.getloadavg()[0], 2),
                       "pty": "tmux 200x60, TERM=xterm-256color, --color 256, liqmap --demo --seed 7, side by side"}}


# ------------------------------------------------------------------------------------------ startup
def _startup_once(tmp: Path, i: int, pycache: Path | None) -> tuple[float | None, dict]:
    """One spawn of ``liqmap --demo`` to its first full frame: (seconds since the spawn, detail).

    ``pycache``: compiled bytecode is written to and read from there (``PYTHONPYCACHEPREFIX``), as an installed
    liqmap has it; None: every module is compiled from source on every start (``PYTHONDONTWRITEBYTECODE``,
    which this machine's shells set)."""
    probe = tmp / f"first-frame-{i}"
    trace = tmp / f"trace-{i}"
    env = {"XDG_CONFIG_HOME": str(tmp / "cfg"), "XDG_DATA_HOME": str(tmp / "data"), "PYTHONPATH": str(ROOT),
           "TERM": "xterm-256color", "LIQMAP_FIRST_FRAME_FILE": str(probe), "LIQMAPUI_STARTUP_TRACE": str(trace)}
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    bytecode = "-u PYTHONDONTWRITEBYTECODE " if pycache is not None else "PYTHONDONTWRITEBYTECODE=1 "
    t0 = time.time()
    name = _spawn(f"{sys.executable} -m liqmap --demo --color 256", env, size=(120, 40), env_prefix=bytecode)
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if probe.exists() and probe.stat().st_size:
                time.sleep(0.05)  # the probe is written in two lines
                wall_s, cpu_s, loaded = _read_probe(probe)
                phases, cpu = {}, {}
                if trace.exists():
                    for line in trace.read_text().splitlines():
                        ts, c, ev = line.split(" ", 2)
                        phases.setdefault(ev, round(float(ts) - t0, 3))
                        cpu.setdefault(ev, round(float(c), 3))
                return wall_s - t0, {"phases_s_since_spawn": phases, "cpu_s_at_phase": cpu,
                                     "cpu_s_at_first_frame": cpu_s, "heavy_modules_at_first_frame": loaded}
            time.sleep(0.02)
        return None, {}
    finally:
        _kill(name)


def _read_probe(probe: Path) -> tuple[float, float, list[str]]:
    """The first-frame probe (``liqmap/commands/run.py``): wall time, CPU seconds, heavy modules loaded."""
    lines = probe.read_text().splitlines()
    first = lines[0].split()
    loaded = lines[1].split(":", 1)[1].strip() if len(lines) > 1 else ""
    return float(first[0]), float(first[2]), [m for m in loaded.split(",") if m]


def _import_floor(pycache: Path) -> tuple[float, float]:
    """The same-run baseline: a bare ``python -c "import numpy, textual.app"`` (what any numpy + Textual app
    pays before its first line), (wall s, CPU s of the child), with the same bytecode cache."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(pycache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    r0 = os.times()
    subprocess.run([sys.executable, "-c", "import numpy, textual.app"], env=env, check=True)
    r1 = os.times()
    return time.perf_counter() - t0, (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)


def bench_startup() -> dict:
    """Three starts with compiled bytecode cached (after one start that compiles it, reported as
    ``first_start_compiling_s``), one start compiling every module (``no_bytecode_s``: how this machine's
    shells run it), interleaved with the import floor."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pycache = tmp / "pycache"
        compiling = _startup_once(tmp, 0, pycache)
        results, floors = [], []
        for i in range(3):
            floors.append(_import_floor(pycache))
            results.append(_startup_once(tmp, i + 1, pycache))
        no_bytecode = _startup_once(tmp, 9, None)
    runs = [r for r, _ in results]
    ok_runs = [r for r in runs if r is not None]
    med_detail = results[runs.index(statistics.median(ok_runs))][1] if len(ok_runs) == 3 else results[0][1]
    v = statistics.median(ok_runs) if ok_runs else None
    floor_wall = statistics.median(f[0] for f in floors)
    floor_cpu = statistics.median(f[1] for f in floors)
    cpu_ff = med_detail.get("cpu_s_at_first_frame")
    return {"value": None if v is None else round(v, 3), "unit": "s", "target": STARTUP_TARGET_S,
            "ok": v is not None and v <= STARTUP_TARGET_S,
            "detail": {"runs_s": [None if r is None else round(r, 3) for r in runs],
                       "median_run": med_detail,
                       "first_start_compiling_s": None if compiling[0] is None else round(compiling[0], 3),
                       "no_bytecode_s": None if no_bytecode[0] is None else round(no_bytecode[0], 3),
                       "no_bytecode_cpu_s": no_bytecode[1].get("cpu_s_at_first_frame"),
                       "baseline_import_numpy_textual_wall_s": round(floor_wall, 3),
                       "baseline_import_numpy_textual_cpu_s": round(floor_cpu, 3),
                       "ratio_first_frame_to_import_floor_wall": None if v is None else round(v / floor_wall, 2),
                       "ratio_first_frame_to_import_floor_cpu": None if cpu_ff is None else round(cpu_ff / floor_cpu, 2),
                       "loadavg_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
                       "measured": "tmux spawn of `python -m liqmap --demo` (120x40) to the app's first drawn "
                                   "frame; bytecode cached in a temp PYTHONPYCACHEPREFIX"}}


# ------------------------------------------------------------------------------------------ quit
QUIT_TARGET_S = 2.0


def _wait_screen(name: str, pred, limit: float) -> float | None:
    """Seconds until the pane's text satisfies ``pred`` (polled every 20 ms), None after ``limit``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if pred(_tmux("capture-pane", "-p", "-t", name, sock=name)):
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def _quit_once(tmp: Path, i: int) -> tuple[float | None, float | None]:
    """(key round trip, q to exit) in one ``liqmap --demo`` at 120×40, both while the pre-roll runs."""
    env = {"XDG_CONFIG_HOME": str(tmp / "cfg"), "XDG_DATA_HOME": str(tmp / f"data-{i}"), "PYTHONPATH": str(ROOT),
           "TERM": "xterm-256color"}
    name = _spawn(f"{sys.executable} -m liqmap --demo --color 256 --seed 7; echo LIQMAP_EXIT=$?", env, size=(120, 40))
    try:
        if _wait_screen(name, lambda t: "DEMO (simulated market)" in t and "▶" in t, 30) is None:
            return None, None
        time.sleep(2.0)  # into the pre-roll of the other assets
        _tmux("send-keys", "-t", name, "1", sock=name)
        key = _wait_screen(name, lambda t: " Raw " in t.splitlines()[0] if t else False, 20)
        _tmux("send-keys", "-t", name, "q", sock=name)
        quit_s = _wait_screen(name, lambda t: "LIQMAP_EXIT=" in t, 20)
        return key, quit_s
    finally:
        _kill(name)


def bench_quit() -> dict:
    """``q`` to process exit in ``liqmap --demo`` (the e2e test only checks that it exits, with status 0).
    Baseline in the same run and process: a key's round trip (``1`` until the status bar says Raw)."""
    with tempfile.TemporaryDirectory() as d:
        runs = [_quit_once(Path(d), i) for i in range(3)]
    quits = [q for _, q in runs if q is not None]
    keys = [k for k, _ in runs if k is not None]
    v = statistics.median(quits) if quits else None
    return {"value": None if v is None else round(v, 3), "unit": "s", "target": QUIT_TARGET_S,
            "ok": v is not None and len(quits) == len(runs) and v <= QUIT_TARGET_S,
            "detail": {"runs_s": [None if q is None else round(q, 3) for _, q in runs],
                       "baseline_key_round_trip_s": None if not keys else round(statistics.median(keys), 3),
                       "loadavg_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
                       "measured": "tmux 120x40, liqmap --demo --seed 7, 2 s after the first frame (pre-roll "
                                   "running): send-keys q until the shell prints the exit status"}}


BENCHMARKS = {"render_cpu": bench_render_cpu, "ssh_bytes": bench_ssh_bytes, "startup": bench_startup,
              "quit": bench_quit}
