"""Alerts (issue 14): rules validated like every setting, each kind firing exactly when its condition holds on
constructed reports, cooldowns, never twice for one event (also across a restart), evaluated by the engine for
every asset on the demo market, delivered by a real command hook and a real webhook on loopback, shown in the TUI."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from liqmap.core.alerts import Alert, AlertEvaluator, RuleError, parse_rules
from liqmap.core.events import LIQ_DTYPE

T = 1_800_000_000.0


def rules(*tables):
    return parse_rules(list(tables), ["BTC", "ETH", "SOL"])


def test_bad_rules_name_the_rule_and_the_problem():
    for table, words in (({"name": "a", "kind": "swep"}, "kind 'swep'"),
                         ({"name": "b", "kind": "sweep", "min_usd": "big"}, "min_usd must be a number"),
                         ({"name": "c", "kind": "sweep", "min_usd": float("nan")}, "out of range"),
                         ({"name": "d", "kind": "sweep", "assets": ["DOGEX"]}, "DOGEX is not in the universe"),
                         ({"name": "e", "kind": "sweep", "within_pct": 1}, "unknown key(s) within_pct"),
                         ({"name": "f", "kind": "absorption", "outcome": "maybe"}, "outcome 'maybe'"),
                         ({"name": "g", "kind": "sweep", "severity": "loud"}, "severity 'loud'")):
        with pytest.raises(RuleError) as e:
            rules(table)
        assert f"alert {table['name']!r}" in str(e.value) and words in str(e.value), str(e.value)
    with pytest.raises(RuleError, match="two rules with this name"):
        rules({"name": "x", "kind": "sweep"}, {"name": "x", "kind": "convergence"})


def test_a_bad_rule_in_the_config_file_stops_with_one_line_and_exit_2(tmp_path):
    import subprocess

    cfg = tmp_path / "c.toml"
    cfg.write_text('[[alerts]]\nname = "burst"\nkind = "liq_burst"\nwindow_s = 0\n')
    res = subprocess.run([sys.executable, "-m", "liqmap", "--demo", "--config", str(cfg)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip() == f"liqmap: {cfg}: alert 'burst': window_s = 0 is out of range (1 to 86400)"


def wall(status, usd=6e6, side="bid", bucket=2600, first_seen=T - 100):
    return SimpleNamespace(status=status, peak_usd=usd, side=side, bucket=bucket, first_seen=first_seen,
                           price=bucket * 25.0)


def cluster(at_risk, dist, side="long", lo=64_000.0):
    return SimpleNamespace(at_risk_usd=at_risk, distance_pct=dist, side=side, price_lo=lo, price_hi=lo + 100,
                           price=lo + 50)


def rec(**kw):
    base = dict(walls=(), sweeps=(), absorptions=(), convergence=(), asymmetry=None, forecast=None)
    base.update(kw)
    return SimpleNamespace(**base)


def test_each_kind_fires_exactly_when_its_condition_holds_once_per_event_and_respects_its_cooldown():
    ev = AlertEvaluator(rules(
        {"name": "near", "kind": "near_cluster", "within_pct": 0.5, "min_usd": 1e6, "cooldown_s": 0},
        {"name": "wall", "kind": "wall_gone", "status": "pulled", "min_usd": 5e6, "cooldown_s": 600},
        {"name": "asym", "kind": "asymmetry", "threshold": 0.3, "cooldown_s": 0, "assets": "BTC"},
        {"name": "sweep", "kind": "sweep", "min_usd": 2e6, "cooldown_s": 0},
        {"name": "abs", "kind": "absorption", "outcome": "broke", "min_usd": 1e5, "cooldown_s": 0},
        {"name": "conv", "kind": "convergence", "cooldown_s": 0},
        {"name": "burst", "kind": "liq_burst", "min_usd": 1e6, "window_s": 60, "side": "long", "cooldown_s": 0},
    ))
    fc = SimpleNamespace(clusters=(cluster(2e6, -0.4), cluster(2e6, -0.9, lo=63_000.0), cluster(5e5, 0.1)))
    got = ev.evaluate("BTC", T, rec(forecast=fc))
    assert [a.rule for a in got] == ["near"] and "0.40% from $2.0M of longs below" in got[0].message
    assert ev.evaluate("BTC", T + 1, rec(forecast=fc)) == []  # the same cluster: never twice
    # walls: an active one and a consumed one do not fire a "pulled" rule; a small pulled one neither
    assert ev.evaluate("ETH", T, rec(walls=(wall("active"), wall("consumed"), wall("pulled", usd=1e6)))) == []
    got = ev.evaluate("ETH", T, rec(walls=(wall("pulled"),)))
    assert [a.rule for a in got] == ["wall"] and got[0].asset == "ETH"
    # another pulled wall within the cooldown: held back, and fired once the cooldown is over
    other = wall("pulled", bucket=2700, first_seen=T)
    assert ev.evaluate("ETH", T + 60, rec(walls=(other,))) == []
    assert [a.rule for a in ev.evaluate("ETH", T + 601, rec(walls=(other,)))] == ["wall"]
    # asymmetry: crossing into a side fires, staying there does not, the rule watches BTC only
    a = lambda w: SimpleNamespace(weighted=w, bid_share=(1 + w) / 2)
    assert ev.evaluate("BTC", T, rec(asymmetry=a(0.1))) == []
    assert [x.rule for x in ev.evaluate("BTC", T + 2, rec(asymmetry=a(0.35)))] == ["asym"]
    assert ev.evaluate("BTC", T + 3, rec(asymmetry=a(0.4))) == []
    assert ev.evaluate("ETH", T + 3, rec(asymmetry=a(-0.9))) == []
    sw = SimpleNamespace(total_usd=3e6, side="sell", ts=T - 5, price_lo=1.0, price_hi=2.0, count=2)
    assert [x.rule for x in ev.evaluate("SOL", T, rec(sweeps=(sw, SimpleNamespace(**{**sw.__dict__,
                                                                                 "total_usd": 1e6}))))] == ["sweep"]
    ab = lambda o: SimpleNamespace(outcome=o, usd=2e5, bucket=10, start=T - 30, price=150.0)
    assert ev.evaluate("SOL", T, rec(absorptions=(ab("pending"), ab("held")))) == []
    assert [x.rule for x in ev.evaluate("SOL", T + 1, rec(absorptions=(ab("broke"),)))] == ["abs"]
    chip = SimpleNamespace(bucket=5, since=T - 2, price=150.0, components=("wall", "sweep"))
    assert [x.rule for x in ev.evaluate("SOL", T + 2, rec(convergence=(chip,)))] == ["conv"]
    liq = np.zeros(3, dtype=LIQ_DTYPE)
    liq["ts"], liq["usd"], liq["side"] = [T + 10, T + 20, T + 30], [4e5, 4e5, 4e5], [1, 1, -1]
    assert ev.evaluate("BTC", T + 31, rec(), liqs=liq[:1]) == []  # $400k of longs: not a burst yet
    got = ev.evaluate("BTC", T + 32, rec(), liqs=liq[1:])  # $800k of longs, $400k of shorts
    assert got == []
    more = liq[:1].copy()
    more["ts"], more["usd"] = T + 40, 3e5
    got = ev.evaluate("BTC", T + 41, rec(), liqs=more)
    assert [x.rule for x in got] == ["burst"] and "$1.1M of longs liquidated in 60s" in got[0].message


def test_near_cluster_relative_to_open_interest():
    """``min_oi_pct``: the same $2M cluster 0.4 % from price is big on an asset with $1bn of OI (0.2 %) and
    routine on one with $20bn (0.01 %, under 0.05 %); $1M stays the floor on small assets ($41M of OI: 0.05 % is
    $20k); without the asset's OI only the absolute floor applies; 0 (the kind's default) turns it off."""
    ev = AlertEvaluator(rules({"name": "near", "kind": "near_cluster", "within_pct": 0.5, "min_usd": 1e6,
                               "min_oi_pct": 0.05, "cooldown_s": 0}))
    fc = SimpleNamespace(clusters=(cluster(2e6, -0.4),))
    assert ev.evaluate("BTC", T, rec(forecast=fc), oi_usd=20e9) == []
    assert [a.rule for a in ev.evaluate("SOL", T, rec(forecast=fc), oi_usd=1e9)] == ["near"]
    small = SimpleNamespace(clusters=(cluster(5e5, -0.4),))
    assert ev.evaluate("PENDLE", T, rec(forecast=small), oi_usd=41e6) == []  # $500k < $1M
    assert [a.rule for a in ev.evaluate("ETH", T, rec(forecast=fc))] == ["near"]  # OI unknown: $1M alone
    assert [a.rule for a in ev.evaluate("XRP", T, rec(forecast=fc), oi_usd=float("nan"))] == ["near"]
    off = AlertEvaluator(rules({"name": "near", "kind": "near_cluster", "cooldown_s": 0}))
    assert off.rules[0].p("min_oi_pct") == 0.0
    assert [a.rule for a in off.evaluate("BTC", T, rec(forecast=fc), oi_usd=20e9)] == ["near"]
    with pytest.raises(RuleError, match="min_oi_pct"):
        rules({"name": "near", "kind": "near_cluster", "min_oi_pct": -1})


def test_the_engine_passes_the_assets_open_interest_to_the_alerts():
    """On the demo market (real-sized OI, ``feeds/demo/resting.py``) the engine hands each asset's OI across
    venues to the rules: BTC's reads tens of $bn, PENDLE's tens of $M, so the default near-cluster rule asks
    $10M of BTC and keeps $1M on PENDLE."""
    from liqmap.config import DEFAULTS
    from liqmap.feeds.demo import DemoFeed
    from liqmap.feeds.demo.feed import pump
    from liqmap.runtime import Runtime

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=["BTC", "PENDLE"], focus_extra=[])
    feed = DemoFeed(cfg, assets=["BTC", "PENDLE"], seed=1)
    rt = Runtime(cfg, feed)
    got = {}
    real = rt.engine.alerts.evaluate

    def spy(asset, now, *a, oi_usd=None, **kw):
        got[asset] = oi_usd
        return real(asset, now, *a, oi_usd=oi_usd, **kw)

    rt.engine.alerts.evaluate = spy

    async def go():
        for _ in range(6):
            await pump(feed.demo, rt.ingest, seconds=5.0)
            for a in ("BTC", "PENDLE"):
                rt.engine.ingest(a, rt.clock())

    asyncio.run(go())
    assert 5e9 < got["BTC"] < 60e9, got
    assert 10e6 < got["PENDLE"] < 150e6, got
    near = next(r for r in parse_rules(DEFAULTS["alerts"], ["BTC"]) if r.kind == "near_cluster")
    assert near.p("min_oi_pct") / 100 * got["BTC"] > 2.5e6 and near.p("min_oi_pct") / 100 * got["PENDLE"] < 1e6


def test_a_restart_never_repeats_an_alert_for_the_same_event():
    r = rules({"name": "sweep", "kind": "sweep", "min_usd": 1e6, "cooldown_s": 0})
    sw = SimpleNamespace(total_usd=3e6, side="buy", ts=T, price_lo=1.0, price_hi=2.0, count=1)
    first = AlertEvaluator(r)
    (a,) = first.evaluate("BTC", T, rec(sweeps=(sw,)))
    after_restart = AlertEvaluator(r)
    after_restart.restore([a.key])
    assert after_restart.evaluate("BTC", T + 5, rec(sweeps=(sw,))) == []


def test_venue_down_fires_when_a_venue_goes_down_not_while_it_stays_down():
    ev = AlertEvaluator(rules({"name": "down", "kind": "venue_down", "cooldown_s": 0}))
    assert ev.evaluate_venues(T, {"okx": {"state": "connected"}}) == []
    (a,) = ev.evaluate_venues(T + 1, {"okx": {"state": "down", "last_error": "HTTP 503"}})
    assert a.asset == "okx" and a.message == "okx down: HTTP 503" and a.severity == "warning"
    assert ev.evaluate_venues(T + 2, {"okx": {"state": "down"}}) == []


DEMO_ASSETS = ["BTC", "ETH", "SOL"]


def _demo_runtime(data_dir=None):
    """A runtime on three demo assets (with a history store in ``data_dir``) and the alerts its listeners get."""
    from liqmap.config import DEFAULTS
    from liqmap.feeds.demo import DemoFeed
    from liqmap.runtime import Runtime

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=DEMO_ASSETS, focus_extra=[])
    if data_dir is not None:
        cfg["_data_dir"] = str(data_dir)
    feed = DemoFeed(cfg, assets=DEMO_ASSETS, seed=1)
    rt = Runtime(cfg, feed, store=data_dir is not None)
    seen = []
    rt.alert_listeners.append(seen.append)
    return rt, feed, seen


def _run_demo(rt, feed, seconds: float = 600.0) -> None:
    """The demo market for ``seconds`` of simulated time, every asset ingested at the feed's clock every 5 s."""
    from liqmap.feeds.demo.feed import pump

    async def go():
        for _ in range(int(seconds // 5)):
            await pump(feed.demo, rt.ingest, seconds=5.0)
            for a in DEMO_ASSETS:
                rt.engine.ingest(a, feed.clock())
            rt.pump_alerts()

    asyncio.run(go())


def test_the_engine_alerts_for_every_asset_on_the_demo_market(tmp_path):
    """Ten simulated minutes of three demo assets: the default rules fire for assets nobody has on screen,
    and every fired alert is in the history with its key."""
    rt, feed, seen = _demo_runtime(tmp_path)
    _run_demo(rt, feed)
    assert seen, "the default rules fired nothing in ten minutes of the demo"
    assert not any(a.replayed for a in seen)  # fired at the engine's clock: news, delivered
    assert {a.asset for a in seen} - {"BTC"}  # not only the asset a screen would show
    assert len({a.key for a in seen}) == len(seen)
    rt.store.flush()
    stored = rt.store.load("alerts")
    assert sorted(stored["key"].to_list()) == sorted(a.key for a in seen)


def test_alerts_fired_on_history_the_engine_catches_up_on_are_logged_but_wake_nobody():
    """The demo's pre-roll writes 90+ minutes of history at start and its alerts came out as a stack of toasts
    (five "SOL near big cluster" warnings, the bell each time) over the reports panel, for events an hour old.
    An alert evaluated on data older than the engine's clock by more than REPLAYED_AFTER_S is marked replayed:
    the log and the history keep it, the off-screen delivery (hook, webhook, desktop) does not get it."""
    from liqmap.core.engine import REPLAYED_AFTER_S

    rt, feed, seen = _demo_runtime()
    delivered = []
    rt.delivery = SimpleNamespace(active=True, deliver=delivered.append)
    rt.engine.clock = lambda: feed.clock() + REPLAYED_AFTER_S + 60.0  # the engine is ahead: this is history
    _run_demo(rt, feed)
    assert seen and all(a.replayed for a in seen)  # the same ten minutes fire, marked as history
    assert list(rt.alert_log) == seen and delivered == []
    assert all(a.to_dict()["replayed"] is True for a in seen)
    assert "replayed" not in Alert(T, "r", "sweep", "info", "BTC", "m", "k").to_dict()  # a live alert's record unchanged


def test_command_hook_gets_the_alert_as_json_without_a_shell(tmp_path):
    from liqmap.delivery import Delivery

    out = tmp_path / "got.json"
    script = f"import sys, pathlib; pathlib.Path({str(out)!r}).write_text(sys.stdin.read())"
    d = Delivery({"alert_delivery": {"exec": [sys.executable, "-c", script]}})
    alert = Alert(T, "sweep", "sweep", "info", "BTC", "BTC buy sweep $3M; rm -rf /", "k", 65_000.0)

    async def go():
        d.deliver(alert)
        await d.close()

    asyncio.run(go())
    assert json.loads(out.read_text()) == alert.to_dict() and d.counts["exec_ok"] == 1


def test_webhook_posts_json_and_retries_on_loopback():
    from aiohttp import web

    from liqmap.delivery import Delivery

    bodies, statuses = [], [500, 200]

    async def handler(request):
        bodies.append(await request.json())
        return web.Response(status=statuses.pop(0) if statuses else 200)

    async def go():
        app = web.Application()
        app.router.add_post("/hook", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        d = Delivery({"alert_delivery": {"webhook": f"http://127.0.0.1:{port}/hook", "webhook_retries": 2,
                                         "webhook_timeout_s": 5.0}})
        d.deliver(Alert(T, "r", "sweep", "info", "BTC", "m", "k1", None))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if d.counts["webhook_ok"]:
                break
        bad = Delivery({"alert_delivery": {"webhook": f"http://127.0.0.1:{port}/missing", "webhook_retries": 1}})
        bad.deliver(Alert(T, "r", "sweep", "info", "BTC", "m", "k2", None))
        await bad.close()
        await d.close()
        await runner.cleanup()
        return d, bad

    d, bad = asyncio.run(go())
    assert d.counts["webhook_ok"] == 1 and len(bodies) == 2 and bodies[1]["key"] == "k1"  # 500, then 200
    assert bad.counts["webhook_failed"] == 1 and "HTTP 404 after 2 attempts" in bad.last_error


from test_ui_app import make_app, screen_text, settle, source_factory  # noqa: E402,F401 - the app fixture


async def test_the_tui_toasts_logs_and_opens_an_alerts_asset_and_moment(source_factory):  # noqa: F811
    src = source_factory()
    src.runner = SimpleNamespace(alert_listeners=[])
    app = make_app(src)
    async with app.run_test(size=(160, 45), notifications=True) as pilot:  # Pilot hides toasts by default
        await settle(pilot)
        (listener,) = src.runner.alert_listeners
        ts = app._snap.grid.col0 * app._snap.grid.period + 30 * app._snap.grid.period
        listener(Alert(ts, "big sweep", "sweep", "warning", "ETH", "ETH sell sweep $3.0M through 3,000", "k", 3000.0))
        from textual.widgets._toast import Toast

        for _ in range(20):
            await pilot.pause(0.05)
            if app.screen.query(Toast):
                break
        assert app.alerts and "ETH sell sweep $3.0M" in screen_text(app)  # the toast
        await pilot.press("a")
        await pilot.pause()
        assert "alerts — 1 fired this run" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        assert app.asset == "ETH" and app.vp.cursor_ts == ts and app.vp.highlight == 3000.0


async def test_a_replayed_alert_is_logged_without_a_toast(source_factory):  # noqa: F811
    """An alert fired on history (the demo's pre-roll) goes to the log (``a``) but neither toasts nor rings."""
    from textual.widgets._toast import Toast

    src = source_factory()
    src.runner = SimpleNamespace(alert_listeners=[])
    app = make_app(src)
    rings = []
    app.bell = lambda: rings.append(1)
    async with app.run_test(size=(160, 45), notifications=True) as pilot:
        await settle(pilot)
        (listener,) = src.runner.alert_listeners
        ts = app._snap.grid.col0 * app._snap.grid.period
        listener(Alert(ts, "near big cluster", "near_cluster", "warning", app.asset, f"{app.asset} 0.3% from $2M",
                       "k1", None, replayed=True))
        await pilot.pause(0.3)
        assert len(app.alerts) == 1 and not app.screen.query(Toast) and not rings
        listener(Alert(ts, "near big cluster", "near_cluster", "warning", app.asset, f"{app.asset} 0.2% from $3M",
                       "k2", None))
        for _ in range(20):
            await pilot.pause(0.05)
            if app.screen.query(Toast):
                break
        assert len(app.screen.query(Toast)) == 1 and rings == [1]  # the same alert live: toast and bell


async def test_on_a_small_screen_only_this_assets_alerts_and_warnings_toast_on_one_line(source_factory):  # noqa: F811
    """At 80×24 a titled toast covered a third of the map; another asset's info alert gets no toast there
    (it is in the log), a warning gets a one-line toast without a title."""
    from textual.widgets._toast import Toast

    src = source_factory()
    src.runner = SimpleNamespace(alert_listeners=[])
    app = make_app(src)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        (listener,) = src.runner.alert_listeners
        ts = app._snap.grid.col0 * app._snap.grid.period
        listener(Alert(ts, "big sweep", "sweep", "info", "ETH", "ETH sell sweep $3.0M through 3,000", "k1", 3000.0))
        await pilot.pause(0.3)
        assert len(app.alerts) == 1 and not app.screen.query(Toast)  # logged, not toasted
        listener(Alert(ts, "burst", "liq_burst", "warning", "ETH", "ETH $3.6M of shorts liquidated in 60s", "k2",
                       None))
        for _ in range(20):
            await pilot.pause(0.05)
            if app.screen.query(Toast):
                break
        toasts = list(app.screen.query(Toast))
        await pilot.pause(0.3)  # the toast's layout settles after it mounts
        assert len(toasts) == 1 and "ETH $3.6M of shorts" in screen_text(app)
        assert "ETH · burst" not in screen_text(app)  # no title line
        assert toasts[0].region.height == 1  # one row over the map, not four
        line = app.screen.query_one("#summary").region  # the reports' one line (NEXT 1H magnets, counts)
        assert line.height == 1 and toasts[0].region.y + toasts[0].region.height <= line.y  # it stays readable


async def test_on_a_wide_screen_other_assets_info_toasts_are_held_to_two_and_counted(source_factory):  # noqa: F811
    """A busy demo minute fired five other-asset toasts at 200×60, stacked over the whole reports panel: at most
    two of them are on screen at once; the rest go to the log only, and the next toast says how many."""
    from textual.widgets._toast import Toast

    src = source_factory()
    src.runner = SimpleNamespace(alert_listeners=[])
    app = make_app(src)
    async with app.run_test(size=(200, 60), notifications=True) as pilot:
        await settle(pilot)
        (listener,) = src.runner.alert_listeners
        ts = app._snap.grid.col0 * app._snap.grid.period
        for i, asset in enumerate(("ETH", "XRP", "SOL", "DOGE", "ADA")):
            listener(Alert(ts, "big sweep", "sweep", "info", asset, f"{asset} sell sweep $3.0M", f"k{i}", None))
        await pilot.pause(0.3)
        assert len(app.alerts) == 5 and len(app.screen.query(Toast)) == 2  # all logged, two toasted
        assert "ETH sell sweep" in screen_text(app) and "SOL sell sweep" not in screen_text(app)
        # this asset's alerts and warnings always toast, and say what was held back
        listener(Alert(ts, "burst", "liq_burst", "warning", "SOL", "SOL $3.6M of longs liquidated in 60s", "k9", None))
        await pilot.pause(0.3)
        assert len(app.screen.query(Toast)) == 3 and "+3 more on other assets" in screen_text(app)
