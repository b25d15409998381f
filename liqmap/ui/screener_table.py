"""The screener's table: one line per asset, repainting only the lines whose text changed.

DataTable re-renders every visible cell after any update (its cell cache is keyed by an update counter) and
the screener updates once a second: at 200×60 that was ~150 ms of CPU a tick for 65 rows (the ``screener``
benchmark's baseline). Here each line is one cached ``Strip`` keyed by its cells (``CachedLines``): a row
whose ``ScreenRow`` is the same object as a second ago has the same cells list and its line is not rebuilt,
a row that moved only has its line redrawn at the new place, and nothing else is sent to the terminal.

Keys: ↑ ↓ PgUp PgDn Home End move the cursor, ← → scroll the columns after the asset, Enter posts
``Selected``; a click on the header posts ``HeaderSelected`` (sort by it), on a row moves the cursor there
(and on the cursor's row, selects it).
"""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip

from .lines import TableLines

GAP = 2  # spaces between columns (``_strip`` writes them as "  ")


def plain(cell) -> tuple[str, int, Style | None]:
    """A cell (``Text`` with one style, or ``str``) as (text, its width in cells, its style or None)."""
    if isinstance(cell, Text):
        text, style = cell.plain, cell.style
        if isinstance(style, str):
            style = Style.parse(style) if style else None
        return text, cell_len(text), style or None
    text = str(cell)
    return text, cell_len(text), None


class ScreenerTable(TableLines, can_focus=True):
    COMPONENT_CLASSES = {"screener-table--header", "screener-table--even", "screener-table--cursor",
                         "screener-table--cursor-blurred"}
    DEFAULT_CSS = """
    ScreenerTable { height: 1fr; background: $surface; color: $foreground; }
    ScreenerTable > .screener-table--header { text-style: bold; background: $panel; color: $foreground; }
    ScreenerTable > .screener-table--even { background: $surface-lighten-1 50%; }
    ScreenerTable > .screener-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    ScreenerTable > .screener-table--cursor-blurred {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
    }
    """
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False, id="screener_up"),
        Binding("down", "move(1)", "Down", show=False, id="screener_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="screener_page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="screener_page_down"),
        Binding("home", "jump(0)", "First", show=False, id="screener_first"),
        Binding("end", "jump(-1)", "Last", show=False, id="screener_last"),
        Binding("left", "columns(-1)", "Columns left", show=False, id="screener_left"),
        Binding("right", "columns(1)", "Columns right", show=False, id="screener_right"),
        Binding("enter", "select", "Open", show=False, id="screener_open"),
    ]

    class Selected(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class HeaderSelected(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, columns: Sequence[str], *args, right: Sequence[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.columns = tuple(columns)
        self._right = {i for i, c in enumerate(self.columns) if c in right}  # right-aligned (numbers)
        self.keys: list[str] = []  # one per row, in display order (the asset)
        self.cells: list[list] = []  # each row's cells; the same list object while the row is unchanged
        self.cursor = 0
        self.top = 0  # the first row shown under the header
        self.first_col = 1  # the first scrolled column shown after the frozen first one
        self._widths = [len(c) for c in self.columns]  # only grow while the screen is open: no jitter
        self._texts: dict[int, tuple] = {}  # id(cells) → (cells, [(text, style)]): split once per cells list
        self.lines_built = 0  # lines whose Strip was rebuilt since start (tests read it)
        self._layout: tuple = ()
        self._style_memo: tuple | None = None
        self._built: dict[tuple, tuple] = {}  # (id(cells), cursor state, stripe) → (cells, its Strip)

    # ---------------------------------------------------------------- content

    def show(self, keys: Sequence[str], cells: Sequence[list], cursor_key: str | None = None) -> None:
        """The rows to show, in order; the cursor stays on ``cursor_key``'s row (or the same place)."""
        self.keys, self.cells = list(keys), list(cells)
        texts, widths = self._texts, self._widths
        for c in self.cells:
            got = texts.get(id(c))
            if got is None or got[0] is not c:  # a new row: split its cells once
                got = texts[id(c)] = (c, [plain(x) for x in c])
                for i, (_, n, _) in enumerate(got[1]):
                    if n > widths[i]:
                        widths[i] = n
        if len(texts) > 4 * len(self.cells) + 64:  # forget the rows no longer shown (now and then, not per call)
            self._texts = {id(c): texts[id(c)] for c in self.cells}
        if cursor_key is not None and cursor_key in self.keys:
            self.cursor = self.keys.index(cursor_key)
        self.cursor = min(max(self.cursor, 0), max(len(self.keys) - 1, 0))
        self.redraw()

    @property
    def cursor_key(self) -> str | None:
        return self.keys[self.cursor] if 0 <= self.cursor < len(self.keys) else None

    # ---------------------------------------------------------------- drawing

    def _body_height(self) -> int:
        return max(self.size.height - 1, 1)

    def _visible_columns(self) -> list[int]:
        """The frozen first column, then the scrolled ones from ``first_col`` that fit the width."""
        width = max(self.size.width, 1)
        out, used = [0], self._widths[0] + 1
        for i in range(self.first_col, len(self.columns)):
            if used + GAP > width and len(out) > 1:
                break
            out.append(i)
            used += GAP + self._widths[i]
        return out

    def redraw(self) -> None:
        h = self._body_height()
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + h:
            self.top = self.cursor - h + 1
        self.top = min(self.top, max(len(self.keys) - h, 0))
        cols = tuple(self._visible_columns())
        width = max(self.size.width, 1)
        layout = (cols, tuple(self._widths[i] for i in cols), width)
        if layout != self._layout or not self._keys:  # widths, terminal or colours changed: every line anew
            self._layout, self._built = layout, {}
        focused = self.has_focus
        lines: list[tuple] = [("header", layout)]
        for y in range(self.top, min(self.top + h, len(self.keys))):
            state = (2 if focused else 1) if y == self.cursor else 0
            lines.append((self.cells[y], state, y % 2, layout))
        styles = self._styles()
        built, keep = self._built, {}

        def build(i: int) -> Strip:
            key = lines[i]
            if key[0] == "header":
                self.lines_built += 1
                return self._strip([(c, cell_len(c), None) for c in self.columns], styles[3], cols, width)
            cells, state, odd, _ = key
            k = (id(cells), state, odd)
            got = built.get(k)
            if got is None or got[0] is not cells:  # a row that only moved keeps its strip (per stripe)
                self.lines_built += 1
                base = styles[state] if state else styles[4 + odd]
                got = (cells, self._strip(self._texts[id(cells)][1], base, cols, width, cursor=bool(state)))
            keep[k] = got
            return got[1]

        self.set_lines(lines, build)
        # strips of the rows still shown, built now or before (a row scrolled away is built again if it returns)
        for key in lines[1:]:
            k = (id(key[0]), key[1], key[2])
            if k not in keep and k in built and built[k][0] is key[0]:
                keep[k] = built[k]
        self._built = keep

    def _styles(self) -> tuple[Style, ...]:
        """(-, blurred cursor, cursor, header, odd row, even row): resolved when the CSS changes (theme,
        focus), not per redraw — resolving a widget's style walks its ancestors."""
        if self._style_memo is None:
            base = self.rich_style
            comp = self.get_component_rich_style
            self._style_memo = (base, base + comp("screener-table--cursor-blurred"),
                                base + comp("screener-table--cursor"), comp("screener-table--header"), base,
                                base + comp("screener-table--even"))
        return self._style_memo

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_memo = None
        self.invalidate()  # every line again, in the new colours

    def _strip(self, texts, base: Style, cols, width: int, cursor: bool = False) -> Strip:
        """One line: the cells padded to their columns, runs of one style merged into one segment (most cells
        are unstyled; fewer segments is less work here and in every later pass over the line)."""
        segs: list[Segment] = []
        run, run_style = [" "], base
        used = 1
        widths, right = self._widths, self._right
        for n, i in enumerate(cols):
            text, n_cells, style = texts[i]
            w = widths[i]
            if n_cells < w:
                text = " " * (w - n_cells) + text if i in right else text + " " * (w - n_cells)
                n_cells = w
            if n:
                run.append("  ")  # GAP
                used += GAP
            if used + n_cells > width:
                text = text[: max(width - used - 1, 0)] + "…"
                n_cells = cell_len(text)
            st = base if style is None or cursor else base + style
            if st != run_style:
                segs.append(Segment("".join(run), run_style))
                run, run_style = [], st
            run.append(text)
            used += n_cells
            if used >= width:
                break
        if used < width:
            if run_style != base:
                segs.append(Segment("".join(run), run_style))
                run, run_style = [], base
            run.append(" " * (width - used))
            used = width
        segs.append(Segment("".join(run), run_style))
        return Strip(segs, used) if used == width else Strip(segs).adjust_cell_length(width, base)

    # ---------------------------------------------------------------- keys and mouse

    def action_move(self, delta: int) -> None:
        if self.keys:
            self.cursor = min(max(self.cursor + delta, 0), len(self.keys) - 1)
            self.redraw()

    def action_page(self, delta: int) -> None:
        self.action_move(delta * self._body_height())

    def action_jump(self, where: int) -> None:
        if self.keys:
            self.cursor = where % len(self.keys)
            self.redraw()

    def action_columns(self, delta: int) -> None:
        self.first_col = min(max(self.first_col + delta, 1), len(self.columns) - 1)
        self.redraw()

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.Selected(self.cursor_key))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = 1
            for n, i in enumerate(self._visible_columns()):
                x += GAP if n else 0
                if x <= event.x < x + self._widths[i] + GAP:
                    self.post_message(self.HeaderSelected(self.columns[i]))
                    return
                x += self._widths[i]
            return
        y = self.top + event.y - 1
        if 0 <= y < len(self.keys):
            if y == self.cursor:
                self.action_select()
            else:
                self.cursor = y
                self.redraw()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.action_move(3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.action_move(-3)

    def row_text(self, key: str) -> str:
        """The line the row ``key`` shows now, as plain text (tests read the table through this)."""
        if key not in self.keys:
            return ""
        return self.line_text(self.keys.index(key) - self.top + 1)
