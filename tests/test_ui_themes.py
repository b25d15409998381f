"""Themes and palettes: every built-in theme file parses and registers with Textual; a user theme from the
config dir is found; a bad file is refused with one line naming the file and the field; ``liqmap`` exits 2
on it; palettes give one precomputed style per level for truecolor, 256 and 16 colours."""

from __future__ import annotations

import argparse
import copy

import numpy as np
import pytest
from rich.color import Color, ColorType

from liqmap.config import DEFAULTS
from liqmap.ui.palettes import (Scale, build_palette, detect_color_system, level_of, textual_color_system,
                                view_top)
from liqmap.ui.themes import ThemeError, builtin_dir, discover, resolve, to_textual

GOOD = (builtin_dir() / "dark.toml").read_text()


def test_builtin_themes_parse_and_register():
    themes = discover(environ={})
    assert {"dark", "light", "colorblind", "mono"} <= set(themes)
    for spec in themes.values():
        t = to_textual(spec)
        assert t.name == f"liqmap-{spec.name}"
        assert len(spec.ramp) >= 8 and len(spec.ramp16) >= 4
    assert themes["light"].dark is False


def test_colorblind_theme_avoids_red_green_sides():
    cb = discover(environ={})["colorblind"]
    assert cb.heat["long"] != cb.heat["short"]
    for c in (cb.heat["long"], cb.heat["short"]):
        assert c.lower() not in ("#ff0000", "#00ff00", "red", "green")


def test_user_theme_from_config_dir(tmp_path):
    d = tmp_path / "liqmap" / "themes"
    d.mkdir(parents=True)
    (d / "mine.toml").write_text(GOOD.replace('name = "dark"', 'name = "mine"'))
    spec, themes = resolve("mine", environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert spec.name == "mine" and "dark" in themes


@pytest.mark.parametrize("mutate,field", [
    (lambda s: s.replace('primary = "#4ea1ff"', 'primary = "not-a-colour"'), "ui.primary"),
    (lambda s: s.replace('ramp = [', 'ramp = ["#000000"]\nxramp = ['), "heatmap.ramp"),
    (lambda s: s.replace('trace = "#ffffff"\n', ''), "heatmap.trace"),
    (lambda s: s.replace('[ui]', '[uix]'), "ui"),
    (lambda s: s.replace('held = [', 'held = ["#000000"]\nxheld = ['), "heatmap.held"),
    (lambda s: s.replace('held = ["#10282c"', 'held = ["teal-ish"'), "heatmap.held[0]"),
    (lambda s: s.replace('ramp = [', 'ramp = [' + '"#101010", ' * 30), "heatmap.ramp: at most 31"),
    (lambda s: s + "\n[[[", "not valid TOML"),
    (lambda s: s.replace('name = "dark"', 'name = 3'), "name"),
])
def test_bad_theme_file_one_line_naming_file_and_field(tmp_path, mutate, field):
    p = tmp_path / "bad.toml"
    p.write_text(mutate(GOOD))
    with pytest.raises(ThemeError) as e:
        resolve(str(p), environ={})
    msg = str(e.value)
    assert "\n" not in msg
    assert str(p) in msg and field in msg


def test_a_theme_without_the_resting_layers_ramp_gets_the_default_for_its_kind(tmp_path):
    from liqmap.ui.themes import HELD_DARK, HELD_LIGHT, parse_theme

    lines = [ln for ln in GOOD.splitlines() if not ln.startswith(("held =", "held16 ="))]
    dark = parse_theme("\n".join(lines), "mine.toml")
    light = parse_theme("\n".join(lines).replace("dark = true", "dark = false"), "mine.toml")
    assert dark.held == HELD_DARK and light.held == HELD_LIGHT and len(dark.held16) >= 4


def test_bad_user_theme_is_reported_even_when_another_is_chosen(tmp_path):
    d = tmp_path / "liqmap" / "themes"
    d.mkdir(parents=True)
    (d / "broken.toml").write_text(GOOD.replace('empty = "#0c0e14"', 'empty = 12'))
    with pytest.raises(ThemeError, match=r"broken\.toml: heatmap\.empty"):
        discover(environ={"XDG_CONFIG_HOME": str(tmp_path)})


def test_unknown_theme_name_lists_the_known_ones():
    with pytest.raises(ThemeError, match="have: .*dark"):
        resolve("nope", environ={})


def test_run_exits_2_on_bad_theme(tmp_path, capsys, monkeypatch):
    from liqmap.commands import run

    monkeypatch.setenv("TEXTUAL_COLOR_SYSTEM", "auto")  # run.main pins it; restore afterwards
    p = tmp_path / "bad.toml"
    p.write_text(GOOD.replace('accent = "#ffb347"', 'accent = "#zz"'))
    cfg = copy.deepcopy(DEFAULTS)
    cfg["app"]["theme"] = str(p)
    rc = run.main(argparse.Namespace(demo=True, replay=None), cfg)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and str(p) in err and "ui.accent" in err


def test_run_reports_missing_replay_file(tmp_path, capsys):
    from liqmap.commands import run

    cfg = copy.deepcopy(DEFAULTS)
    rc = run.main(argparse.Namespace(demo=False, replay=str(tmp_path / "nope.gz")), cfg)
    assert rc == 2 and "nope.gz: file not found" in capsys.readouterr().err


def test_missing_module_is_named():
    from liqmap.commands.run import _missing

    assert _missing("liqmap.core.market", "liqmap.nonexistent_module") == "liqmap.nonexistent_module"
    assert _missing("liqmap.core.market") is None


@pytest.mark.parametrize("system", ["truecolor", "256", "16"])
def test_palettes_per_colour_system(system):
    spec = discover(environ={})["dark"]
    p = build_palette(spec, system)
    ramp, held = (spec.ramp, spec.held) if system != "16" else (spec.ramp16, spec.held16)
    assert p.n == len(ramp) and p.held_n == len(held) and len(p.levels) == 1 + len(ramp) + len(held)
    assert set(p.held_colors).isdisjoint(p.colors[1:p.n + 1])  # the resting layer's hue is apart from the flow's
    types = {c.type for c in p.colors}
    if system == "truecolor":
        assert types == {ColorType.TRUECOLOR}
    elif system == "256":
        assert types == {ColorType.EIGHT_BIT}
    else:
        assert types <= {ColorType.STANDARD}
    assert all(st.bgcolor is not None for st in p.levels)  # one ready Style per level


def test_colour_system_detection_and_textual_names():
    assert detect_color_system({"LIQMAP_COLOR_SYSTEM": "16", "COLORTERM": "truecolor"}) == "16"
    assert detect_color_system({"LIQMAP_COLOR_SYSTEM": "auto", "COLORTERM": "truecolor"}) == "truecolor"
    assert detect_color_system({"TERM": "xterm-256color"}) == "256"
    assert detect_color_system({"TERM": "xterm"}) == "16"
    assert textual_color_system("16") == "standard"
    assert textual_color_system("256") == "256"


def test_levels_monotonic_and_scale_hysteresis():
    v = np.array([0, 1, 10, 100, 1000, 1e4, 1e5], dtype=np.float32)
    lv = level_of(v, 1e5, 10)
    assert lv[0] == 0 and lv[1] >= 1 and lv[-1] == 10
    assert np.all(np.diff(lv.astype(int)) >= 0)
    # Peaks, not the bulk, reach the top: a tenth of the scale sits in the lowest fifth of the ramp,
    # half of it mid-ramp (a log curve put both in the upper half).
    mid = level_of(np.array([1e4, 5e4], dtype=np.float32), 1e5, 10)
    assert mid[0] <= 2 and 5 <= mid[1] <= 6
    s = Scale()
    assert s.update(1000.0) and 1000.0 <= s.value < 1000.0 * 2 ** (1 / 8)
    top = s.value
    assert not s.update(0.9 * top)  # small moves keep the scale (no whole-map recolour)
    assert s.update(0.5 * top) and 0.5 * top <= s.value < 0.5 * top * 2 ** (1 / 8) * 1.0001  # a fallen peak: down
    assert s.update(2000.0) and 2000.0 <= s.value < 2000.0 * 2 ** (1 / 8)
    # The view's peak is always within two steps of the scale: the top one or two levels of the ramp.
    for vmax in (2000.0, 1900.0, 1800.0, 1700.0, 1500.0, 1200.0, 800.0):
        s.update(vmax)
        assert vmax <= s.value <= vmax * 2 ** (3 / 8)
        assert level_of(np.array([vmax], dtype=np.float32), s.value, 10)[0] >= 8


def test_overlay_glyph_never_the_colour_of_its_cell():
    light = discover(environ={})["light"]
    p = build_palette(light, "16")
    top = p.n
    assert p.colors[top] == p.trace  # light's 16-colour ramp tops out in black, its trace is black
    st = p.cell(top, p.trace, True)
    assert st.color != st.bgcolor


def test_the_top_of_the_ramp_is_the_strongest_level_still_standing_not_an_old_consumed_one():
    body = np.zeros((40, 100), np.float32)
    body[10, :30] = 100.0  # a level consumed an hour ago, twice the size of anything left
    body[30, :] = 45.0  # a level that still stands, up to the right edge
    live = np.zeros(40, np.float32)
    live[30] = 46.0
    top = view_top(body, live)
    assert top == 50.0  # half the old peak bounds it from below: 46 < 50
    s = Scale()
    s.update(top)
    assert level_of(np.array([46.0], np.float32), s.value, 10)[0] >= 9  # the standing level is near the top
    assert level_of(np.array([100.0], np.float32), s.value, 10)[0] == 10  # the old peak saturates, not hidden
    # without an old peak the newest quarter and the live column set the top
    body[10, :30] = 0.0
    assert view_top(body, live) == 46.0
    live[:] = 0.0
    body[30, -25:] = 60.0  # the newest quarter (25 of 100 columns)
    assert view_top(body, live) == 60.0


@pytest.mark.parametrize("name", ["dark", "light", "colorblind", "mono"])
def test_256_colour_ramps_keep_every_level_distinct_and_in_order(name):
    """Over ssh in tmux (256 colours) Rich's per-colour downgrade mapped the dark ramp's two quietest levels to
    one saturated navy, brighter than level 3: the fitted ramp keeps every level distinct, ordered by
    lightness like the theme's own ramp, and apart from the empty cell."""
    from rich.color import EIGHT_BIT_PALETTE

    from liqmap.ui.palettes import MIN_STEP_256, _lab

    spec = discover(environ={})[name]
    p = build_palette(spec, "256")
    # the flow's ramp and the resting layer's (its own hue), each from the empty cell up
    for ramp, colors in ((spec.ramp, p.colors[:p.n + 1]), (spec.held, (p.colors[0], *p.held_colors))):
        light = [float(_lab(np.array(tuple(EIGHT_BIT_PALETTE[c.number])))[0]) for c in colors]
        want = [float(_lab(np.array(Color.parse(c).triplet))[0]) for c in (spec.heat["empty"], *ramp)]
        sign = 1.0 if want[-1] > want[1] else -1.0
        steps = [sign * (b - a) for a, b in zip(light, light[1:])]
        assert min(steps) >= MIN_STEP_256 - 1e-9, (name, [c.number for c in colors], steps)
        assert len({c.number for c in colors}) == len(colors)
    if name != "mono":  # greys only: there the layer's greys stop at mid-grey instead
        # on 16 colours too, the layer never takes a flow colour (its white top read as the flow's bright white)
        assert set(spec.held16).isdisjoint(spec.ramp16), (name, spec.held16, spec.ramp16)
        # the layer's upper half never takes a flow colour (near black, 256 colours have only greys to give)
        upper = p.held_colors[p.held_n // 2:]
        assert {c.number for c in upper}.isdisjoint({c.number for c in p.colors[1:p.n + 1]})
