"""tools/pictures.py's screen parser: a ``tmux capture-pane -e`` sample with every SGR form the map uses
(truecolor, 256-colour, the 16 base colours, bold, reverse, defaults) and box, block and wide characters, read
into the exact cell grid the PNG is drawn from. Needs neither tmux nor Pillow: the README's pictures are only as
true as this parser."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pictures():
    spec = importlib.util.spec_from_file_location("liqmap_tools_pictures", ROOT / "tools" / "pictures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


ESC = "\x1b["
# Three rows of a 10-column pane, as tmux writes them: only changes between cells, the pen carrying across
# line ends, a cursor-style escape and an OSC 8 hyperlink that draw nothing.
SAMPLE = (
    f"{ESC}1;38;2;250;200;10;48;2;20;30;40m BTC{ESC}22m ━━{ESC}0m│{ESC}7m█{ESC}27m▶\n"
    f"{ESC}38;5;196;48;5;17m6{ESC}38;5;250m5{ESC}48;5;236m,{ESC}93;104m0{ESC}31;42m─{ESC}39m╵{ESC}49m 世x\n"
    f"\x1b]8;;http://example\x1b\\{ESC}38:2::1:2:3mz{ESC}?25l{ESC}7m{ESC}38;2;9;8;7mR{ESC}0m"
)


def test_parser_reads_colours_attributes_and_wide_characters(pictures):
    default_fg, default_bg = pictures.DEFAULT_FG, pictures.DEFAULT_BG
    grid = pictures.parse_screen(SAMPLE, width=10, height=4)
    assert len(grid) == 4 and all(len(row) == 10 for row in grid)
    cells = lambda y: [(c.char, c.fg, c.bg, c.bold) for c in grid[y]]  # noqa: E731

    gold, navy = (250, 200, 10), (20, 30, 40)
    assert cells(0) == [
        (" ", gold, navy, True), ("B", gold, navy, True), ("T", gold, navy, True), ("C", gold, navy, True),
        (" ", gold, navy, False), ("━", gold, navy, False), ("━", gold, navy, False),  # 22 ends bold only
        ("│", default_fg, default_bg, False),  # 0 resets everything
        ("█", default_bg, default_fg, False),  # reverse swaps the terminal's defaults in
        ("▶", default_fg, default_bg, False),  # 27 ends reverse
    ]

    red, dark_blue, grey, grey_bg = (255, 0, 0), (0, 0, 95), (188, 188, 188), (48, 48, 48)
    bright_yellow, bright_blue, base_red, base_green = (255, 255, 0), (92, 92, 255), (205, 0, 0), (0, 205, 0)
    assert cells(1) == [
        ("6", red, dark_blue, False),  # 256-colour cube: 196 and 17
        ("5", grey, dark_blue, False),  # greyscale ramp: 250
        (",", grey, grey_bg, False),  # 236
        ("0", bright_yellow, bright_blue, False),  # 93 / 104: the bright base colours
        ("─", base_red, base_green, False),  # 31 / 42
        ("╵", default_fg, base_green, False),  # 39: default fg, bg kept
        (" ", default_fg, default_bg, False),  # 49
        ("世", default_fg, default_bg, False), ("", default_fg, default_bg, False),  # wide: two cells
        ("x", default_fg, default_bg, False),
    ]

    # Colon truecolor with an empty colour-space id; then reverse with an explicit fg and the default bg.
    assert cells(2)[:2] == [("z", (1, 2, 3), default_bg, False), ("R", default_bg, (9, 8, 7), False)]
    # The line ended early: padded with default cells, and the missing fourth row is all default.
    assert cells(2)[2:] == [(" ", default_fg, default_bg, False)] * 8
    assert cells(3) == [(" ", default_fg, default_bg, False)] * 10
    assert pictures.screen_text(grid).splitlines()[0] == " BTC ━━│█▶"


def test_pen_carries_across_line_ends(pictures):
    # tmux writes a colour once and keeps it for the following cells, also on the next line.
    grid = pictures.parse_screen(f"{ESC}48;2;1;1;1mab\ncd", width=2, height=2)
    assert {c.bg for row in grid for c in row} == {(1, 1, 1)}


def test_xterm_palette_edges(pictures):
    assert pictures.xterm_256(0) == (0, 0, 0)
    assert pictures.xterm_256(15) == (255, 255, 255)
    assert pictures.xterm_256(16) == (0, 0, 0)
    assert pictures.xterm_256(231) == (255, 255, 255)
    assert pictures.xterm_256(232) == (8, 8, 8)
    assert pictures.xterm_256(255) == (238, 238, 238)


def test_preroll_done_reads_the_apps_startup_trace(pictures, tmp_path):
    assert not pictures.preroll_done(tmp_path)  # no trace yet: liqmap has not started
    (tmp_path / "startup-trace").write_text("1764870000.1 app-mounted\n")
    assert not pictures.preroll_done(tmp_path)
    with open(tmp_path / "startup-trace", "a") as trace:
        trace.write("1764870061.2 preroll-done-BTC\n")
    assert pictures.preroll_done(tmp_path)
