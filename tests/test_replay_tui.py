"""The TUI replay and the headless replay of the same file give the same reports (issue 16, item 6).

The app runs as ``liqmap --replay FILE --speed 100`` builds it (``commands.run.build_source``: the runtime, the
recording's ``ReplaySource``, the real engine) under Pilot, on the whole real Binance BTCUSDT recording (345 s
of receipt time: sweeps, absorptions and a convergence by its end). Once the status bar says ``REPLAY
finished`` and the map shows the engine's last reports, what the app drew — walls, sweeps, absorptions,
convergence, verdict, the NEXT 1H forecast — must equal ``liqmap replay --headless --report`` of the file:
both step the engine at the same recording-time ticks, whatever the wall clock did meanwhile.
"""

from __future__ import annotations

import asyncio
import copy
import types

from conftest import build_app, screen_lines
from common import real

from liqmap.commands.run import build_source
from liqmap.config import DEFAULTS
from liqmap.feeds.replay import _plain, replay_headless

RECORDING = "hftbacktest_usdm_btcusdt_20240808.gz"
HANG_GUARD_S = 300.0  # a hang guard, not a timing: the replay itself takes ≈ 3.5 s at speed 100


async def _tui_reports(path: str, speed: float) -> tuple[dict, str, list[str]]:
    """Replay ``path`` in the app to its finished state; (the reports it shows, its verdict, the screen)."""
    cfg = copy.deepcopy(DEFAULTS)
    src = build_source("replay", cfg, types.SimpleNamespace(replay=path, speed=speed))
    app = build_app(src, cfg, source_label="REPLAY")
    rt = src.runner
    loop = asyncio.get_running_loop()
    end = loop.time() + HANG_GUARD_S
    async with app.run_test(size=(200, 60)) as pilot:
        while loop.time() < end and "REPLAY finished" not in screen_lines(app)[0]:
            await pilot.pause(0.2)
        assert "REPLAY finished" in screen_lines(app)[0], screen_lines(app)[:2]
        # the map has drawn the engine's last reports (built after the replay's last step)
        state = rt.engine.state("BTC")
        while loop.time() < end and (app._snap is None or app._snap.reports is not state.report_dicts):
            await pilot.pause(0.1)
        snap = app._snap
        assert snap is not None and snap.reports is state.report_dicts
        return _plain(snap.reports), snap.verdict, screen_lines(app)


async def test_tui_replay_shows_the_headless_reports_of_the_same_file():
    path = str(real(RECORDING))
    tui, verdict, screen = await _tui_reports(path, speed=100.0)
    head = (await replay_headless(path, copy.deepcopy(DEFAULTS)))["assets"]["BTC"]["reports"]
    # the recording exercises every report: a test of equal empty lists would prove nothing
    assert head["walls"] and head["sweeps"] and head["absorptions"] and head["convergence"], head
    for section in ("walls", "asymmetry", "sweeps", "absorptions", "convergence", "verdict", "forecast"):
        assert tui[section] == head[section], (section, tui[section], head[section])
    assert tui == head
    assert verdict == head["verdict"]
    # and the screen says it: the verdict's convergence on the status line, the reports panel's sweeps
    text = "\n".join(screen)
    conv = f"CONVERGENCE {head['convergence'][0]['price']:,.0f}"
    assert conv in screen[1], screen[1]
    assert "SWEEP" in text.upper(), text
