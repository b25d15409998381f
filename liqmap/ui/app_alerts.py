"""What the app does with an alert the engine fired (part of ``LiqmapApp``): it is kept for the log (``a``),
toasted — this asset's and warnings always, other assets' information alerts a few at a time, one line on a
compact screen — and rings the bell for warnings (``alert_delivery``)."""

from __future__ import annotations

import time

TOAST_SECONDS = 8  # how long an alert's toast stays (a wide screen)
OTHER_TOASTS = 2  # at most this many other assets' information toasts on screen at once


class AlertsMixin:
    """Alert delivery on screen (part of ``LiqmapApp``)."""

    def _on_alert(self, alert) -> None:
        """An alert the engine fired (for any asset): kept for the log (``a``), a toast, the bell."""
        self.alerts.append(alert)
        if getattr(alert, "replayed", False):
            return  # fired on history the engine caught up on (the demo's pre-roll): the log has it, no toast or bell
        d = self.cfg.get("alert_delivery") or {}
        if d.get("toast", True):
            sev = {"critical": "error", "warning": "warning"}.get(alert.severity, "information")
            if self._main.has_class("compact"):
                # On a small screen a toast covers a third of the map: only this asset's alerts and warnings
                # get one, on one line (every alert is still in the log, ``a``).
                if alert.asset == self.asset or alert.severity in ("warning", "critical"):
                    text = alert.message if alert.message.startswith(alert.asset) else f"{alert.asset} {alert.message}"
                    limit = max(self.size.width - 12, 20)
                    self.notify(text if len(text) <= limit else text[:limit - 1] + "…", severity=sev, timeout=5)
            elif alert.asset == self.asset or alert.severity in ("warning", "critical") or self._other_toast_ok():
                more, self._toasts_held = self._toasts_held, 0
                msg = alert.message + (f"\n(+{more} more on other assets: a for the log)" if more else "")
                self.notify(msg, title=f"{alert.asset} · {alert.rule}", severity=sev, timeout=TOAST_SECONDS)
            else:
                self._toasts_held += 1  # in the log (``a``); the next toast says how many were held
        if d.get("bell", True) and alert.severity in ("warning", "critical"):
            self.bell()

    def _other_toast_ok(self) -> bool:
        """Whether another asset's information alert may toast now: at most ``OTHER_TOASTS`` of them on screen
        at once (a busy demo minute fired five, stacked over the whole reports panel)."""
        now = time.monotonic()
        shown = [t for t in self._other_toasts if now - t < TOAST_SECONDS]
        self._other_toasts = shown
        if len(shown) >= OTHER_TOASTS:
            return False
        shown.append(now)
        return True
