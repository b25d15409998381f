"""Shared fixtures: the app as the CLI builds it over any snapshot source, and the screen as text.

``tests/`` and the repository root are on the import path (``pythonpath`` in pyproject.toml), so test files
import their helpers (``common``, ``ui_fixtures``, ``demo_app``) and the benchmarks' grid paths directly.

The screen is read through Textual's public ``App.export_screenshot`` (the SVG it writes for a screenshot),
not its private compositor: :func:`screen_lines` puts each text run back at its cell column, so a line is
the terminal row as a person sees it, padded to the screen's width.
"""

from __future__ import annotations

import copy
import html
import re

import pytest

from liqmap.config import DEFAULTS
from liqmap.ui.app import LiqmapApp
from liqmap.ui.themes import resolve


def build_app(source, cfg: dict | None = None, color_system: str = "truecolor", **kw) -> LiqmapApp:
    """The app over ``source`` with ``cfg`` (default: the shipped settings) and its theme, as ``liqmap`` runs it."""
    cfg = copy.deepcopy(DEFAULTS) if cfg is None else cfg
    spec, themes = resolve(cfg["app"]["theme"], environ={})
    return LiqmapApp(cfg, source=source, theme_spec=spec, themes=themes, color_system=color_system, **kw)


_TEXT = re.compile(r'<text class="[^"]*" x="([0-9.]+)" y="[0-9.]+" textLength="([0-9.]+)" '
                   r'clip-path="url\(#[^)]*-line-(\d+)\)">(.*?)</text>', re.S)


def screen_lines(app) -> list[str]:
    """The screen, one string per terminal row (each ``width`` cells), from ``App.export_screenshot``."""
    width, height = app.size
    svg = app.export_screenshot()
    runs = [(float(x), float(n), int(line), html.unescape(t).replace("\xa0", " "))
            for x, n, line, t in _TEXT.findall(svg)]
    # the cell width: each row ends with a one-cell newline run; else a run's textLength ÷ its length
    ones = [n for _, n, _, t in runs if t == "\n"]
    cell = ones[0] if ones else min((n / len(t) for _, n, _, t in runs if t), default=1.0)
    rows = [[" "] * width for _ in range(height)]
    for x, _, line, text in runs:
        if line >= height or text == "\n":
            continue
        col = int(round(x / cell))
        for i, ch in enumerate(text):
            if 0 <= col + i < width:
                rows[line][col + i] = ch
    return ["".join(r) for r in rows]


def screen_text(app) -> str:
    return "\n".join(screen_lines(app))


@pytest.fixture
def make_app():
    """``make_app(source, cfg=None, **kw)`` → a ``LiqmapApp`` (see :func:`build_app`)."""
    return build_app


@pytest.fixture
def screen():
    """``screen(app)`` → the screen's rows as text (see :func:`screen_lines`)."""
    return screen_lines
