"""``StreamReader``: one JetStream pull consumer that a viewer reads, and makes again when it dies.

Why not nats-py's ordered push consumer: on a 3-node cluster with the consumer's node SIGKILLed, its own
reset (a new consumer on the survivors) got no reply in about half the runs and rows stopped with no error
(nats-server 2.9.10, nats-py 2.16). Servers before 2.12 may place a new one-replica ephemeral consumer on a
node that is offline (nats-server PR #7165): the create is accepted and never answered. So here the reader
owns the whole cycle, and every request it makes has a timeout:

- the consumer is a named pull consumer (no acks, in memory, ``inactive_threshold`` so an abandoned one is
  removed by the server) with as many replicas as the stream, so one node's death does not end it;
- it is read with ``fetch`` (a bounded batch, a bounded wait);
- when reads fail, or bring nothing for ``idle_check`` seconds, the reader asks for the consumer's info;
  an error, a timeout, or messages pending that never came means the consumer is dead: it is deleted
  (best effort) and created again from where this reader got to (``start()``: by start sequence, the one
  after the last handled), retried with backoff until it works;
- the caller drops anything at or below the sequence it reached, so a message delivered twice across a
  re-creation is handled once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

from .settings import redact_text


class StreamReader:
    def __init__(self, stream: str, start: Callable[[], dict], handle: Callable[[object], Awaitable[None]],
                 replicas: int = 1, batch: int = 256, fetch_seconds: float = 1.0, idle_check: float = 2.0,
                 request_timeout: float = 4.0, on_created: Callable[[object], None] | None = None,
                 on_problem: Callable[[str], None] | None = None, label: str = "rows") -> None:
        """``start()``: the ``ConsumerConfig`` fields saying where a (new) consumer starts; ``handle(msg)``
        each message in order; ``on_created(info)`` after each creation (its ``num_pending``)."""
        self.stream = stream
        self.start = start
        self.handle = handle
        self.replicas = replicas
        self.batch = batch
        self.fetch_seconds = fetch_seconds
        self.idle_check = idle_check
        self.request_timeout = request_timeout
        self.on_created = on_created
        self.on_problem = on_problem
        self.label = label
        self.name = ""
        self._sub = None
        self._idle_since = time.monotonic()
        # counters
        self.created = 0  # consumers made (1 without faults)
        self.failed_creates = 0
        self.dead_found = 0  # consumers found dead and made again
        self.last_problem = ""

    def poke(self) -> None:
        """Check the consumer at the next idle moment (the connection came back: it may be gone)."""
        self._idle_since = 0.0

    def _problem(self, what: str, e: BaseException | None = None) -> None:
        line = redact_text(f"bus: {self.label}: {what}" + (f": {type(e).__name__}: {e}" if e is not None else ""))
        self.last_problem = line
        if self.on_problem is not None:
            self.on_problem(line)

    async def run(self, js, stop: asyncio.Event, connected: Callable[[], bool]) -> None:
        import nats.errors

        backoff = 0.25
        try:
            while not stop.is_set():
                if not connected():
                    await _sleep(stop, 0.1)
                    continue
                if self._sub is None:
                    try:
                        await self._create(js)
                        backoff = 0.25
                    except Exception as e:  # noqa: BLE001 - a leader election, a dead node: again, later
                        self.failed_creates += 1
                        self._problem("making its consumer", e)
                        await _sleep(stop, backoff)
                        backoff = min(backoff * 2, 4.0)
                        continue
                try:
                    msgs = await self._sub.fetch(self.batch, timeout=self.fetch_seconds)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    msgs = []
                except Exception as e:  # noqa: BLE001 - the consumer is gone (404/409/503) or the connection
                    self._problem("reading", e)
                    await self._drop(js)
                    continue
                if msgs:
                    self._idle_since = time.monotonic()
                    for m in msgs:
                        await self.handle(m)
                    continue
                if time.monotonic() - self._idle_since >= self.idle_check:
                    self._idle_since = time.monotonic()
                    if not await self._alive(js):
                        self.dead_found += 1
                        await self._drop(js)
        finally:  # a clean stop removes the consumer now; otherwise the server does after inactive_threshold
            await self._drop(js, delete=connected())

    async def _create(self, js) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig

        name = f"liqmap-view-{secrets.token_hex(6)}"
        cfg = ConsumerConfig(name=name, ack_policy=AckPolicy.NONE, mem_storage=True, num_replicas=self.replicas,
                             inactive_threshold=max(30.0, 10 * self.idle_check), max_waiting=16, **self.start())
        info = await js.add_consumer(self.stream, cfg, timeout=self.request_timeout)
        self._sub = await js.pull_subscribe_bind(consumer=name, stream=self.stream)
        self.name = name
        self.created += 1
        self._idle_since = time.monotonic()
        if self.on_created is not None:
            self.on_created(info)

    async def _alive(self, js) -> bool:
        """The consumer answers its info request and has nothing pending that we are not getting."""
        try:
            info = await js.consumer_info(self.stream, self.name, timeout=self.request_timeout)
        except Exception as e:  # noqa: BLE001 - not found, no responders, a timeout: dead to us
            self._problem("its consumer does not answer", e)
            return False
        if int(info.num_pending or 0) > 0:  # after an empty fetch of idle_check seconds: stuck
            self._problem(f"{info.num_pending} messages pending but none delivered")
            return False
        return True

    async def _drop(self, js, delete: bool = True) -> None:
        sub, self._sub = self._sub, None
        name, self.name = self.name, ""
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - a subscription of a dead connection
                pass
        if delete and name:
            try:  # best effort: the server removes it anyway after inactive_threshold
                await asyncio.wait_for(js.delete_consumer(self.stream, name), self.request_timeout)
            except Exception:  # noqa: BLE001
                pass


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
