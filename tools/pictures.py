#!/usr/bin/env python3
"""The README's pictures of the map, taken from a real run: ``liqmap --demo --seed 1`` in a detached tmux pty,
each mode key pressed in turn, the coloured screen captured and drawn cell by cell into a PNG.

    python3 tools/pictures.py [--out docs/pictures] [--size 200x60] [--wait 600] [--theme dark] [--also-small]

writes raw.png, synthetic.png, heatmap.png and hybrid.png (and hybrid-80x24.png with --also-small). Nothing is
drawn by hand: what the PNG shows is what a terminal of that size showed. Needs tmux, Pillow
(``pip install -e ".[docs]"``) and a monospace TrueType font (DejaVu Sans Mono on Debian: fonts-dejavu-core).
The screen parser needs neither tmux nor Pillow, so tests/test_pictures_tool.py guards it on any machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RGB = tuple[int, int, int]

# The terminal's own defaults, used where the app leaves a cell's colour unset (Textual paints most cells
# itself, so these show only at the edges); a dark terminal, like the default theme assumes.
DEFAULT_FG: RGB = (220, 220, 220)
DEFAULT_BG: RGB = (12, 12, 12)
# xterm's 16 base colours: 30–37/40–47 are 0–7, 90–97/100–107 are 8–15.
BASE_16: tuple[RGB, ...] = (
    (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
    (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255),
    (255, 255, 255),
)

MODES = (("1", "Raw", "raw"), ("2", "Synthetic", "synthetic"), ("3", "Synthetic Heatmap", "heatmap"),
         ("4", "Hybrid", "hybrid"))
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_REGULAR = FONT_DIR / "DejaVuSansMono.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSansMono-Bold.ttf"

SGR = re.compile(r"\x1b\[([0-9;:]*)m")
# Every other escape tmux may emit with -e (cursor moves, OSC 8 hyperlinks, charset switches): skipped, they
# draw nothing.
OTHER_ESCAPE = re.compile(r"\x1b(?:\[[0-9;:?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[@-Z\\-_])")


class ToolError(Exception):
    """A problem the user can fix (a missing program, a bad flag): one line, exit 2."""


# ---------------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Cell:
    char: str  # "" for the right half of a wide character (drawn by its left half)
    fg: RGB
    bg: RGB
    bold: bool = False


@dataclass
class Pen:
    """The SGR state while reading a line: colours stay None while the terminal's default is meant, so that
    reverse video can swap in the real defaults."""

    fg: RGB | None = None
    bg: RGB | None = None
    bold: bool = False
    reverse: bool = False

    def cell(self, char: str) -> Cell:
        fg, bg = self.fg or DEFAULT_FG, self.bg or DEFAULT_BG
        if self.reverse:
            fg, bg = bg, fg
        return Cell(char, fg, bg, self.bold)


def xterm_256(index: int) -> RGB:
    """The xterm 256-colour palette: 16 base colours, a 6×6×6 cube, then 24 greys."""
    if index < 16:
        return BASE_16[index]
    if index < 232:
        index -= 16
        level = lambda v: 0 if v == 0 else 55 + 40 * v  # noqa: E731 — the cube's six steps
        return level(index // 36), level(index // 6 % 6), level(index % 6)
    grey = 8 + 10 * (index - 232)
    return grey, grey, grey


def _sgr_groups(params: str) -> list[list[int]]:
    """SGR parameters as groups: ``38;2;1;2;3`` is one flat run, ``38:2::1:2:3`` one colon group (ISO 8613-6
    form, with an optional empty colour-space id). Empty numbers read as 0, as terminals do."""
    if not params:
        return [[0]]
    return [[int(p) if p else 0 for p in part.split(":")] for part in params.split(";")]


def _extended_colour(values: list[int]) -> tuple[RGB | None, int]:
    """The colour after a 38/48 and how many values it used: ``2;r;g;b`` or ``5;n``."""
    if values[:1] == [5] and len(values) >= 2:
        return xterm_256(values[1] % 256), 2
    if values[:1] == [2] and len(values) >= 4:
        r, g, b = (min(255, v) for v in values[1:4])
        return (r, g, b), 4
    return None, len(values)  # malformed: drop the rest of the sequence rather than misread it as attributes


def apply_sgr(pen: Pen, params: str) -> None:
    """Change ``pen`` by one SGR sequence's parameters (the part between ``ESC[`` and ``m``)."""
    flat: list[int] = []
    for group in _sgr_groups(params):
        if len(group) > 1 and group[0] in (38, 48):  # colon form: the group is self-contained
            values = group[1:]
            if values[:1] == [2] and len(values) == 5:  # 38:2::r:g:b: skip the colour-space id
                values = [2, *values[2:]]
            colour, _ = _extended_colour(values)
            if group[0] == 38:
                pen.fg = colour
            else:
                pen.bg = colour
            continue
        flat.extend(group[:1])
    i = 0
    while i < len(flat):
        code = flat[i]
        i += 1
        if code in (38, 48):
            colour, used = _extended_colour(flat[i:])
            i += used
            if code == 38:
                pen.fg = colour
            else:
                pen.bg = colour
        elif code == 0:
            pen.fg = pen.bg = None
            pen.bold = pen.reverse = False
        elif code == 1:
            pen.bold = True
        elif code == 22:
            pen.bold = False
        elif code == 7:
            pen.reverse = True
        elif code == 27:
            pen.reverse = False
        elif code == 39:
            pen.fg = None
        elif code == 49:
            pen.bg = None
        elif 30 <= code <= 37:
            pen.fg = BASE_16[code - 30]
        elif 40 <= code <= 47:
            pen.bg = BASE_16[code - 40]
        elif 90 <= code <= 97:
            pen.fg = BASE_16[code - 90 + 8]
        elif 100 <= code <= 107:
            pen.bg = BASE_16[code - 100 + 8]
        # italic, underline, blink, dim...: not drawn (the map does not use them to carry meaning)


def char_width(char: str) -> int:
    """Terminal columns a character takes: 2 for East Asian wide/full-width, 0 for combining marks, else 1.
    Box-drawing and block characters (─ ━ █ ▶) are one column though they are several bytes."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def parse_screen(text: str, width: int, height: int) -> list[list[Cell]]:
    """The cell grid (``height`` rows of ``width`` cells) of a ``tmux capture-pane -e -p -J`` capture.

    The pen carries over from one line to the next, as in the terminal stream tmux replays (tmux writes only
    the changes between consecutive cells, across line ends too). Short lines are padded with default cells (a
    pane may be narrower than asked); cells beyond ``width`` are dropped; a wide character fills two cells, the
    second one empty."""
    pen = Pen()
    rows: list[list[Cell]] = []
    for line in text.split("\n")[:height]:
        row: list[Cell] = []
        i = 0
        while i < len(line):
            sgr = SGR.match(line, i)
            if sgr:
                apply_sgr(pen, sgr.group(1))
                i = sgr.end()
                continue
            other = OTHER_ESCAPE.match(line, i)
            if other:
                i = other.end()
                continue
            char = line[i]
            i += 1
            columns = char_width(char)
            if columns == 0:
                if row:  # a combining mark joins the character before it
                    last = row[-1]
                    row[-1] = Cell(last.char + char, last.fg, last.bg, last.bold)
                continue
            if char < " ":  # stray control characters draw nothing
                char = " "
            row.append(pen.cell(char))
            if columns == 2:
                row.append(pen.cell(""))
        blank = Pen().cell(" ")
        rows.append((row + [blank] * width)[:width])
    while len(rows) < height:
        rows.append([Pen().cell(" ")] * width)
    return rows


def screen_text(grid: list[list[Cell]]) -> str:
    """The grid's characters as plain text, one line per row (what the readiness checks read)."""
    return "\n".join("".join(c.char for c in row) for row in grid)


# ---------------------------------------------------------------------------------------------------- drawing


def load_fonts(size: int):
    """Regular and bold monospace fonts; PIL's built-in bitmap font (with a warning) when DejaVu is absent."""
    from PIL import ImageFont

    if FONT_REGULAR.exists():
        bold = FONT_BOLD if FONT_BOLD.exists() else FONT_REGULAR
        return ImageFont.truetype(str(FONT_REGULAR), size), ImageFont.truetype(str(bold), size)
    print(f"pictures: warning: {FONT_REGULAR} not found (apt-get install fonts-dejavu-core); "
          "using PIL's default font, box characters may not line up", file=sys.stderr)
    font = ImageFont.load_default()
    return font, font


def render_png(grid: list[list[Cell]], path: Path, font_size: int = 14) -> tuple[int, int]:
    """Draw the grid into a PNG at ``path``: each cell's background as a rectangle, then its character. Returns
    the image size. Pillow is imported here, not at module level, so the parser works without it."""
    from PIL import Image, ImageDraw

    regular, bold = load_fonts(font_size)
    left, top, right, bottom = regular.getbbox("█")
    cell_w = max(1, round(regular.getlength("M")))
    # The full block's height is the cell's: block and box characters then join without gaps between rows.
    cell_h = max(1, bottom - top)
    rows, cols = len(grid), len(grid[0]) if grid else 0
    image = Image.new("RGB", (cols * cell_w, rows * cell_h), DEFAULT_BG)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(grid):
        for x, cell in enumerate(row):
            x0, y0 = x * cell_w, y * cell_h
            span = 2 if x + 1 < cols and row[x + 1].char == "" else 1
            if cell.char != "":
                draw.rectangle((x0, y0, x0 + cell_w * span - 1, y0 + cell_h - 1), fill=cell.bg)
            if cell.char.strip():
                # Shift by the block's top so the glyph box sits exactly on the cell (fonts' ascent includes
                # line gap that would otherwise push every row's glyphs down).
                draw.text((x0, y0 - top), cell.char, font=bold if cell.bold else regular, fill=cell.fg)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return image.size


# ---------------------------------------------------------------------------------------------------- the run


class Tmux:
    """A private tmux server (its own socket, ``-L``): never touches anyone else's sessions, and killing it
    ends everything the tool started."""

    def __init__(self, socket: str):
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise ToolError(f"tmux {args[0]} failed: {done.stderr.strip() or done.returncode}")
        return done.stdout

    def capture(self, session: str, colours: bool) -> str:
        # -J: wrapped lines joined and trailing spaces kept, so every row has the pane's full width.
        return self.run("capture-pane", "-p", "-J", *(["-e"] if colours else []), "-t", session)

    def kill_server(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        # tmux leaves the socket file behind; remove ours so repeated runs do not litter the tmux dir.
        sock = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / self.socket
        with contextlib.suppress(OSError):
            sock.unlink()


def liqmap_command(theme: str) -> list[str]:
    """The console script installed next to this interpreter, else ``python -m liqmap``: either way the same
    environment as the tool (a ``liqmap`` elsewhere on PATH may belong to another install). With PYTHONPATH at
    the repo root, the checkout's own code draws the pictures."""
    script = Path(sys.executable).with_name("liqmap")
    base = [str(script)] if os.access(script, os.X_OK) else [sys.executable, "-m", "liqmap"]
    return [*base, "--demo", "--seed", "1", "--theme", theme, "--color", "truecolor"]


def start_demo(tmux: Tmux, session: str, width: int, height: int, theme: str, home: Path) -> None:
    """liqmap --demo in a fresh ``width``×``height`` pane, with config and data in ``home`` so the user's own
    files (a saved mode, a custom theme) never change the pictures."""
    env = {
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        # liqmap appends its start-up phases here; "preroll-done-BTC" says the screen asset's history is complete.
        "LIQMAPUI_STARTUP_TRACE": str(home / "startup-trace"),
    }
    # COLUMNS/LINES (exported by some shells) would override the pty's real size.
    command = " ".join(["cd", shlex.quote(str(ROOT)), "&&", "env", "-u", "COLUMNS", "-u", "LINES",
                        *(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, liqmap_command(theme))])
    # The window first, then liqmap in it: a brand-new tmux server can hand its first process the 80×24
    # default before applying -x/-y.
    tmux.run("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), "sleep 100000")
    tmux.run("set-option", "-t", session, "status", "off")  # tmux's own status line would take a row
    tmux.run("set-environment", "-t", session, "COLORTERM", "truecolor")
    tmux.run("respawn-pane", "-k", "-t", session, command + "; sleep 100000")


def preroll_done(home: Path) -> bool:
    """The demo wrote the screen asset's whole pre-roll (the app's start-up trace says so). The screen alone
    cannot always tell: the simulated price may have drifted out of the view's price range since the window's
    left edge, leaving that part of the map blank though its history is there."""
    trace = home / "startup-trace"
    return trace.exists() and "preroll-done-" in trace.read_text(errors="replace")


def wait_until(check, timeout: float, poll: float = 1.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(poll)
    return check()


def take_pictures(out: Path, width: int, height: int, wait: float, settle: float, theme: str,
                  modes=MODES, suffix: str = "") -> list[Path]:
    """One run of the demo at ``width``×``height``: wait for a full map, then a PNG per mode."""
    tmux = Tmux(f"liqmap-pictures-{os.getpid()}-{width}x{height}")
    session = "pictures"
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="liqmap-pictures-") as home:
        try:
            start_demo(tmux, session, width, height, theme, Path(home))
            started = time.monotonic()
            # Only the app knows when the history is complete: marks at both ends of the map appear long
            # before (the live price at the right edge, the oldest history at the left, a gap in between).
            full = wait_until(lambda: preroll_done(Path(home)), timeout=wait)
            waited = time.monotonic() - started
            time.sleep(settle)  # the pre-roll's end triggers one full rebuild of the screen: let it draw
            if not full:
                last = tmux.capture(session, colours=False).splitlines()[:1]
                print(f"pictures: warning: the map was not full after {wait:.0f}s (status: {last}); "
                      "taking the pictures anyway — raise --wait on a loaded machine", file=sys.stderr)
            else:
                print(f"pictures: {width}x{height} map full after {waited:.0f}s", file=sys.stderr)
            for key, label, name in modes:
                tmux.run("send-keys", "-t", session, key)
                wait_until(lambda: f" {label} " in tmux.capture(session, colours=False).split("\n", 1)[0],
                           timeout=30, poll=0.25)
                # A loaded machine shows "computing BTC Synthetic 1m…" over the map until the view is built.
                wait_until(lambda: "computing" not in tmux.capture(session, colours=False), timeout=120)
                time.sleep(settle)  # then one more redraw or two, so the picture is the settled view
                grid = parse_screen(tmux.capture(session, colours=True), width, height)
                path = out / f"{name}{suffix}.png"
                size = render_png(grid, path)
                print(f"pictures: wrote {path} ({size[0]}x{size[1]})", file=sys.stderr)
                written.append(path)
        finally:
            tmux.kill_server()
    return written


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or int(match[1]) < 20 or int(match[2]) < 10:
        raise ToolError(f"--size {text!r}: expected COLUMNSxROWS, at least 20x10 (e.g. 200x60)")
    return int(match[1]), int(match[2])


def check_requirements() -> None:
    if not shutil.which("tmux"):
        raise ToolError("tmux not found: install it (apt-get install tmux) to take the pictures from a real pty")
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ToolError('Pillow not found: pip install -e ".[docs]" (or pip install pillow)') from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pictures.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "pictures"), help="directory for the PNGs")
    parser.add_argument("--size", default="200x60", help="terminal size COLUMNSxROWS (default 200x60)")
    parser.add_argument("--wait", type=float, default=600.0,
                        help="at most this many seconds for the pre-roll to fill the map (default 600; it "
                        "stops waiting as soon as the map is full)")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds after each mode key (default 4)")
    parser.add_argument("--theme", default="dark", help="liqmap theme (default dark)")
    parser.add_argument("--also-small", action="store_true", help="also hybrid-80x24.png, the smallest terminal")
    args = parser.parse_args(argv)
    try:
        width, height = parse_size(args.size)
        if args.wait < 0 or args.settle < 0:
            raise ToolError("--wait and --settle must be >= 0 seconds")
        check_requirements()
        out = Path(args.out)
        take_pictures(out, width, height, args.wait, args.settle, args.theme)
        if args.also_small:
            take_pictures(out, 80, 24, args.wait, args.settle, args.theme, modes=MODES[3:], suffix="-80x24")
    except ToolError as error:
        print(f"pictures: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
