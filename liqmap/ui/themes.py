"""Theme files: the heatmap ramp plus the UI colours, one TOML file per theme.

Where themes come from (later wins on a name clash):

1. the built-in files. Their single source is the repository's top-level ``themes/`` directory (the
   product layout keeps it there). ``liqmap/ui/bundled_themes`` is a symlink to it, listed in pyproject's
   package-data, so a regular (non-editable) wheel carries real copies inside the package: the loader
   reads them as package resources (``importlib.resources``), which works wherever the package is
   installed. A clone or ``pip install -e .`` reads the same files through the symlink; where the symlink
   did not survive (a checkout without symlink support), ``<package parent>/themes`` is read directly.
   Should neither be there (a broken install), the embedded copy of ``dark`` below keeps the app usable.
2. the user's files in ``$XDG_CONFIG_HOME/liqmap/themes/*.toml``.

A file that is not valid TOML, lacks a field, or holds a colour Rich cannot parse is refused with one
line naming the file and the field (``ThemeError``; ``liqmap`` exits 2). Every theme is also registered as
a Textual ``Theme`` (named ``liqmap-<name>``) so widgets and CSS use the same colours as the heatmap.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from rich.color import Color, ColorParseError

RAMP_MIN = 4  # fewer ramp steps than this cannot show a heatmap
RAMP_MAX = 31  # a cell's two half-rows pack into one code of 64 levels each: the two ramps and empty must fit
# The resting layer (positions held for days, docs/model.md §3 step 13) has a ramp of its own, a hue apart from
# the flow's: after a crash the layer is tens of millions a row, and on the flow's ramp it was one block of the
# top colour over the flow's clusters. A theme without ``held`` gets the one below for its kind (dark/light): one
# teal hue, its top dimmer than the flow's peaks; xterm-cube colours, so a 256-colour terminal (ssh, tmux) shows
# the same hue with every level apart (a teal/blue mix came out striped there).
HELD_DARK = ("#10282c", "#16393e", "#005f5f", "#008787", "#00afaf", "#00d7d7")
HELD16_DARK = ("bright_black", "cyan", "cyan", "bright_cyan")
HELD_LIGHT = ("#afffff", "#87d7d7", "#5fafaf", "#008787", "#005f5f", "#0b3b3b")
HELD16_LIGHT = ("bright_cyan", "cyan", "bright_green", "green")
UI_FIELDS = ("primary", "secondary", "accent", "foreground", "background", "surface", "panel",
             "warning", "error", "success")
HEAT_FIELDS = ("empty", "trace", "long", "short", "wall_bid", "wall_ask", "cursor", "highlight")


class ThemeError(Exception):
    """One line: the file and the field that is wrong."""


@dataclass(frozen=True)
class ThemeSpec:
    """A parsed theme: colours as strings Rich can parse."""

    name: str
    dark: bool
    description: str
    ui: dict[str, str]
    ramp: tuple[str, ...]
    ramp16: tuple[str, ...]
    held: tuple[str, ...]  # the resting layer's ramp, low → high
    held16: tuple[str, ...]
    heat: dict[str, str]  # empty / trace / long / short / wall_bid / wall_ask / cursor / highlight
    empty16: str
    trace16: str
    path: str

    @property
    def textual_name(self) -> str:
        return f"liqmap-{self.name}"


_EMBEDDED_DARK = """
name = "dark"
dark = true
description = "Embedded copy of themes/dark.toml (used when themes/ is not installed)."
[ui]
primary = "#4ea1ff"
secondary = "#b58cff"
accent = "#ffb347"
foreground = "#d8dee9"
background = "#0c0e14"
surface = "#141824"
panel = "#1b2030"
warning = "#ffb347"
error = "#ff5c5c"
success = "#5cd67a"
[heatmap]
empty = "#0c0e14"
ramp = ["#1b1035", "#2f1760", "#51127c", "#7c2382", "#a8327d", "#d3436e", "#f1605d", "#fb9a6a", "#fdd48f", "#fcfdbf"]
ramp16 = ["blue", "bright_blue", "magenta", "bright_magenta", "red", "bright_red", "yellow", "bright_yellow", "bright_white", "bright_white"]
held = ["#10282c", "#16393e", "#005f5f", "#008787", "#00afaf", "#00d7d7"]
held16 = ["bright_black", "cyan", "cyan", "bright_cyan"]
empty16 = "black"
trace = "#ffffff"
trace16 = "bright_white"
long = "#ff5c5c"
short = "#5cd67a"
wall_bid = "#5cd67a"
wall_ask = "#ff5c5c"
cursor = "#4ea1ff"
highlight = "#ffb347"
"""


BUNDLED = "bundled_themes"  # the package resource folder inside ``liqmap.ui`` (see the module docstring)


def _has_themes(d: Traversable) -> bool:
    try:
        return d.is_dir() and any(p.name.endswith(".toml") for p in d.iterdir())
    except OSError:
        return False


def builtin_dir() -> Traversable:
    """Where the built-in theme files are: the package's resources (an installed wheel, or a clone through
    the symlink), else the top-level ``themes/`` next to the package (a clone without the symlink)."""
    try:
        bundled = resources.files(__package__ or "liqmap.ui") / BUNDLED
    except (ModuleNotFoundError, TypeError):
        bundled = None
    if bundled is not None and _has_themes(bundled):
        return bundled
    return Path(__file__).resolve().parent.parent.parent / "themes"


def builtin_names() -> list[str]:
    """The names of the built-in themes (what ``--theme`` accepts without a user file)."""
    return sorted(n for n, t in discover(environ={"XDG_CONFIG_HOME": os.devnull}).items()
                  if not t.path.startswith("<"))


def user_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "liqmap" / "themes"


def _colour(path: str, field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ThemeError(f"{path}: {field}: expected a colour string, got {value!r}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(f"{path}: {field}: {value!r} is not a colour") from None
    return value


def _ramp(path: str, field: str, value: Any) -> tuple[str, ...]:
    """A ramp's colours, checked: RAMP_MIN to RAMP_MAX of them, each one Rich can parse."""
    if not isinstance(value, list | tuple) or len(value) < RAMP_MIN:
        raise ThemeError(f"{path}: {field}: expected a list of at least {RAMP_MIN} colours")
    if len(value) > RAMP_MAX:
        raise ThemeError(f"{path}: {field}: at most {RAMP_MAX} colours")
    return tuple(_colour(path, f"{field}[{i}]", c) for i, c in enumerate(value))


def parse_theme(text: str, path: str) -> ThemeSpec:
    """Parse and check one theme file's text; ``path`` only names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ThemeError(f"{path}: not valid TOML: {e}") from None
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or not name.replace("-", "").replace("_", "").isalnum():
        raise ThemeError(f"{path}: name: expected a short name (letters, digits, - or _), got {name!r}")
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeError(f"{path}: dark: expected true/false, got {dark!r}")
    ui_t = data.get("ui")
    if not isinstance(ui_t, dict):
        raise ThemeError(f"{path}: ui: missing table [ui]")
    heat_t = data.get("heatmap")
    if not isinstance(heat_t, dict):
        raise ThemeError(f"{path}: heatmap: missing table [heatmap]")
    ui = {}
    for f in UI_FIELDS:
        if f not in ui_t:
            raise ThemeError(f"{path}: ui.{f}: missing")
        ui[f] = _colour(path, f"ui.{f}", ui_t[f])
    heat = {}
    for f in HEAT_FIELDS:
        if f not in heat_t:
            raise ThemeError(f"{path}: heatmap.{f}: missing")
        heat[f] = _colour(path, f"heatmap.{f}", heat_t[f])
    ramp = _ramp(path, "heatmap.ramp", heat_t.get("ramp"))
    ramp16 = _ramp(path, "heatmap.ramp16", heat_t.get(
        "ramp16", ("blue", "cyan", "green", "yellow", "red", "bright_red", "bright_yellow", "bright_white")))
    held = _ramp(path, "heatmap.held", heat_t.get("held", HELD_DARK if dark else HELD_LIGHT))
    held16 = _ramp(path, "heatmap.held16", heat_t.get("held16", HELD16_DARK if dark else HELD16_LIGHT))
    empty16 = _colour(path, "heatmap.empty16", heat_t.get("empty16", "black"))
    trace16 = _colour(path, "heatmap.trace16", heat_t.get("trace16", "bright_white"))
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise ThemeError(f"{path}: description: expected a string")
    return ThemeSpec(name=name, dark=dark, description=desc, ui=ui, ramp=ramp, ramp16=ramp16, held=held,
                     held16=held16, heat=heat,
                     empty16=empty16, trace16=trace16, path=path)


def load_theme_file(path: Path | Traversable) -> ThemeSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ThemeError(f"{path}: cannot read: {e}") from None
    return parse_theme(text, str(path))


def discover(environ: dict[str, str] | None = None,
             builtin: Path | Traversable | None = None) -> dict[str, ThemeSpec]:
    """All themes by name: built-in, then the user's (a bad file raises ThemeError)."""
    themes: dict[str, ThemeSpec] = {}
    bdir = builtin if builtin is not None else builtin_dir()
    if bdir.is_dir():
        for p in sorted((p for p in bdir.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name):
            t = load_theme_file(p)
            themes[t.name] = t
    if "dark" not in themes:
        themes["dark"] = parse_theme(_EMBEDDED_DARK, "<embedded dark>")
    udir = user_dir(environ)
    if udir.is_dir():
        for p in sorted(udir.glob("*.toml")):
            t = load_theme_file(p)
            themes[t.name] = t
    return themes


def resolve(name: str, environ: dict[str, str] | None = None) -> tuple[ThemeSpec, dict[str, ThemeSpec]]:
    """The theme called ``name`` (or a path to a .toml file) and every known theme."""
    themes = discover(environ)
    if name.endswith(".toml") or os.sep in name:
        t = load_theme_file(Path(name))
        themes[t.name] = t
        return t, themes
    if name not in themes:
        raise ThemeError(f"theme {name!r}: not found (have: {', '.join(sorted(themes))}; "
                         f"user themes go in {user_dir(environ)})")
    return themes[name], themes


def to_textual(spec: ThemeSpec):
    """The Textual ``Theme`` for a spec (imported lazily: this module is also used before Textual)."""
    from textual.theme import Theme

    return Theme(name=spec.textual_name, dark=spec.dark, **spec.ui)
