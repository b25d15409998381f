"""Alert delivery off-screen: a command hook, a webhook and a desktop notification (docs/alerts.md).

Every alert the engine fires (``liqmap.core.alerts``) reaches the runtime's alert pump, which hands it to the
front end's listeners (the TUI's toast, bell and log; ``collect``'s status lines) and to :class:`Delivery`:

- ``exec``: the configured command, arguments as a list, never through a shell; the alert as one JSON object
  on its standard input and in ``LIQMAP_ALERT``; killed after 10 s; its exit status counted.
- ``webhook``: an HTTP POST of the alert as JSON, with a timeout and retries (1 s, 2 s, 4 s ... apart);
  every failure counted, none blocks the next alert.
- ``notify_send``: ``notify-send`` where it exists (a desktop session), urgency by severity.

Nothing here can stop the map: each delivery runs as its own task, errors are counted and the last one kept.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import Counter
from typing import Any

import orjson

EXEC_TIMEOUT_S = 10.0
URGENCY = {"info": "low", "warning": "normal", "critical": "critical"}


class Delivery:
    def __init__(self, cfg: dict[str, Any]) -> None:
        d = cfg.get("alert_delivery") or {}
        self.exec_cmd = [str(x) for x in d.get("exec") or []]
        self.webhook = str(d.get("webhook") or "")
        self.timeout = float(d.get("webhook_timeout_s", 5.0))
        self.retries = int(d.get("webhook_retries", 3))
        self.notify = bool(d.get("notify_send", False)) and shutil.which("notify-send") is not None
        self.counts: Counter = Counter()
        self.last_error = ""
        self._tasks: set[asyncio.Task] = set()
        self._session = None

    @property
    def active(self) -> bool:
        return bool(self.exec_cmd or self.webhook or self.notify)

    def deliver(self, alert) -> None:
        """Start the alert's deliveries (returns at once; call on the event loop)."""
        body = orjson.dumps(alert.to_dict())
        if self.exec_cmd:
            self._spawn(self._exec(body))
        if self.webhook:
            self._spawn(self._post(body))
        if self.notify:
            self._spawn(self._notify(alert))

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _fail(self, what: str, error: str) -> None:
        self.counts[f"{what}_failed"] += 1
        self.last_error = f"{what}: {error}"

    async def _exec(self, body: bytes) -> None:
        env = dict(os.environ, LIQMAP_ALERT=body.decode())
        try:
            proc = await asyncio.create_subprocess_exec(*self.exec_cmd, stdin=asyncio.subprocess.PIPE,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL, env=env)
        except OSError as e:
            self._fail("exec", f"{self.exec_cmd[0]}: {e.strerror or e}")
            return
        try:
            await asyncio.wait_for(proc.communicate(body + b"\n"), EXEC_TIMEOUT_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            self._fail("exec", f"{self.exec_cmd[0]}: still running after {EXEC_TIMEOUT_S:g} s, killed")
            return
        if proc.returncode == 0:
            self.counts["exec_ok"] += 1
        else:
            self._fail("exec", f"{self.exec_cmd[0]} exited {proc.returncode}")

    async def _post(self, body: bytes) -> None:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        delay = 1.0
        for attempt in range(self.retries + 1):
            try:
                async with self._session.post(self.webhook, data=body,
                                              headers={"Content-Type": "application/json"}) as r:
                    if 200 <= r.status < 300:
                        self.counts["webhook_ok"] += 1
                        return
                    err = f"HTTP {r.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                err = type(e).__name__
            if attempt < self.retries:
                await asyncio.sleep(delay)
                delay *= 2
        self._fail("webhook", f"{err} after {self.retries + 1} attempts")

    async def _notify(self, alert) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                "notify-send", "-u", URGENCY.get(alert.severity, "normal"), f"liqmap {alert.asset}", alert.message,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            await asyncio.wait_for(proc.wait(), EXEC_TIMEOUT_S)
            self.counts["notify_ok" if proc.returncode == 0 else "notify_failed"] += 1
        except (OSError, asyncio.TimeoutError) as e:
            self._fail("notify", type(e).__name__)

    async def close(self) -> None:
        for t in list(self._tasks):
            try:
                await asyncio.wait_for(asyncio.shield(t), 2.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - closing: never raise
                t.cancel()
        if self._session is not None and not self._session.closed:
            await self._session.close()
