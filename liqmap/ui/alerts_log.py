"""The alerts log (key ``a``): every alert this run fired, newest first; Enter opens its asset at its moment.

Alerts are evaluated by the engine for every asset (``liqmap.core.alerts``); the runtime hands each one to the
app, which shows a toast (and rings the bell for warnings and criticals) and keeps it here.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

SEVERITY_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}


def alert_line(a) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(time.strftime("%H:%M:%S ", time.gmtime(a.ts)), style="dim")
    t.append(f"{a.severity:<8} ", style=SEVERITY_STYLE.get(a.severity, ""))
    t.append(f"{a.asset:<6} ", style="bold")
    t.append(a.message)
    t.append(f"  ({a.rule})", style="dim")
    return t


class AlertsScreen(ModalScreen):
    DEFAULT_CSS = """
    AlertsScreen { align: center middle; }
    AlertsScreen > Vertical { width: 120; max-width: 100%; height: 80%; background: $surface;
        border: round $primary; padding: 0 1; }
    AlertsScreen OptionList { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape,a", "dismiss", "Close alerts", id="alerts_close"),
    ]

    class Open(Message):
        """The user chose an alert: show its asset with the time cursor at its moment and its price marked."""

        def __init__(self, alert) -> None:
            super().__init__()
            self.alert = alert

    def __init__(self, alerts: list) -> None:
        super().__init__()
        self.alerts = list(reversed(alerts))  # newest first

    def compose(self) -> ComposeResult:
        with Vertical():
            n = len(self.alerts)
            yield Static(Text(f"alerts — {n} fired this run  (Enter: open its asset and moment · Esc closes)",
                              style="bold"))
            if n:
                yield OptionList(*(Option(alert_line(a), id=str(i)) for i, a in enumerate(self.alerts)))
            else:
                yield Static(Text("none yet — rules: [[alerts]] in the config (docs/alerts.md)", style="dim"))

    def on_mount(self) -> None:
        for ol in self.query(OptionList):
            ol.highlighted = 0  # the newest alert: Enter opens it at once
            ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        a = self.alerts[int(event.option.id)]
        self.dismiss()
        self.app.post_message(self.Open(a))
