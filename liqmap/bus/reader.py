"""``StreamReader``: one JetStream consumer that a viewer reads, and makes again when it dies.

Why not nats-py's ordered push consumer: on a 3-node cluster with the consumer's node SIGKILLed, its own
reset (a new consumer on the survivors) got no reply in about half the runs and rows stopped with no error
(nats-server 2.9.10, nats-py 2.16). Servers before 2.12 may place a new one-replica ephemeral consumer on a
node that is offline (nats-server PR #7165): the create is accepted and never answered. So here the reader
owns the whole cycle, and every request it makes has a timeout:

- the consumer is a named push consumer onto this connection's own inbox (no acks, in memory,
  ``inactive_threshold`` so an abandoned one is removed by the server) with as many replicas as the stream,
  idle heartbeats every ``heartbeat`` seconds and flow control (answered here), so the server paces it
  instead of the client dropping messages;
- messages arrive by callback, as cheap as the ordered consumer; each one's consumer sequence must follow
  the last — a gap means a message was lost on the way, and the consumer is made again;
- no message and no heartbeat for ``3 × heartbeat`` seconds, or a gap, or the connection coming back:
  the consumer is taken as dead (after a ``consumer_info`` that fails or times out, for the quiet case), is
  deleted (best effort) and created again from where this reader got to (``start()``: by start sequence, the
  one after the last handled), retried with backoff until it works;
- the caller drops anything at or below the sequence it reached, so a message delivered twice across a
  re-creation is handled once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

from .client import pause
from .settings import redact_text


class StreamReader:
    def __init__(self, stream: str, start: Callable[[], dict], handle: Callable[[object], Awaitable[None]],
                 replicas: int = 1, heartbeat: float = 1.0, request_timeout: float = 4.0,
                 on_created: Callable[[object], None] | None = None,
                 on_problem: Callable[[str], None] | None = None, label: str = "rows") -> None:
        """``start()``: the ``ConsumerConfig`` fields saying where a (new) consumer starts; ``handle(msg)``
        each message in order; ``on_created(info)`` after each creation (its ``num_pending``)."""
        self.stream = stream
        self.start = start
        self.handle = handle
        self.replicas = replicas
        self.heartbeat = heartbeat
        self.request_timeout = request_timeout
        self.on_created = on_created
        self.on_problem = on_problem
        self.label = label
        self.name = ""
        self._sub = None
        self._nc = None
        self._dseq = 0  # the consumer sequence of the last message delivered
        self._heard = time.monotonic()  # the last message or heartbeat
        self._broken = False  # a gap seen by the callback: make the consumer again
        self._check_now = False
        self._gen = 0  # which consumer's messages count (bumped on each creation and drop)
        # counters
        self.created = 0  # consumers made (1 without faults)
        self.failed_creates = 0
        self.dead_found = 0  # consumers found dead (silent, gap, not found) and made again
        self.gaps = 0
        self.last_problem = ""

    def poke(self) -> None:
        """Check the consumer now (the connection came back: it may be gone with the server)."""
        self._check_now = True

    def _problem(self, what: str, e: BaseException | None = None) -> None:
        line = redact_text(f"bus: {self.label}: {what}" + (f": {type(e).__name__}: {e}" if e is not None else ""))
        self.last_problem = line
        if self.on_problem is not None:
            self.on_problem(line)

    async def run(self, js, stop: asyncio.Event, connected: Callable[[], bool]) -> None:
        self._nc = js._nc
        backoff = 0.25
        try:
            while not stop.is_set():
                if not connected():
                    await pause(stop, 0.1)
                    continue
                if self._sub is None:
                    try:
                        await self._create(js)
                        backoff = 0.25
                    except Exception as e:  # noqa: BLE001 - a leader election, a dead node: again, later
                        self.failed_creates += 1
                        self._problem("making its consumer", e)
                        await self._drop(js)
                        await pause(stop, backoff)
                        backoff = min(backoff * 2, 4.0)
                    continue
                await pause(stop, self.heartbeat / 2)
                if self._broken:
                    self.dead_found += 1
                    await self._drop(js)
                    continue
                silent = time.monotonic() - self._heard > 3 * self.heartbeat
                if (silent or self._check_now) and connected():
                    self._check_now = False
                    if not await self._alive(js, silent):
                        self.dead_found += 1
                        await self._drop(js)
        finally:  # a clean stop removes the consumer now; otherwise the server does after inactive_threshold
            await self._drop(js, delete=connected())

    async def _create(self, js) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig

        name = f"liqmap-view-{secrets.token_hex(6)}"
        inbox = self._nc.new_inbox()
        self._dseq = 0
        self._broken = False
        self.name = name
        self._gen += 1
        gen = self._gen

        async def deliver(msg) -> None:  # bound to this consumer: a dropped one's late messages are ignored
            if gen == self._gen:
                await self._on_msg(msg)

        # subscribe first: the consumer starts delivering as soon as it exists
        self._sub = await self._nc.subscribe(inbox, cb=deliver)
        cfg = ConsumerConfig(name=name, deliver_subject=inbox, ack_policy=AckPolicy.NONE, mem_storage=True,
                             num_replicas=self.replicas, idle_heartbeat=self.heartbeat, flow_control=True,
                             inactive_threshold=max(30.0, 30 * self.heartbeat), **self.start())
        info = await js.add_consumer(self.stream, cfg, timeout=self.request_timeout)
        self.created += 1
        self._heard = time.monotonic()
        if self.on_created is not None:
            self.on_created(info)

    async def _on_msg(self, msg) -> None:
        hdr = msg.headers
        if hdr and hdr.get("Status") == "100":  # a heartbeat or a flow-control request
            self._heard = time.monotonic()
            stalled = hdr.get("Nats-Consumer-Stalled")
            reply = stalled or (msg.reply if "FlowControl" in (hdr.get("Description") or "") else "")
            if reply:
                try:
                    await self._nc.publish(reply, b"")
                except Exception:  # noqa: BLE001 - the connection is going: the check makes a new consumer
                    pass
            return
        if self._broken:
            return
        try:
            dseq = msg.metadata.sequence.consumer
        except Exception:  # noqa: BLE001 - not a JetStream message: not ours
            return
        self._heard = time.monotonic()
        if dseq != self._dseq + 1:
            self.gaps += 1
            self._broken = True  # a message was lost on the way: start again after the last one handled
            self._problem(f"delivery gap (consumer sequence {dseq} after {self._dseq})")
            return
        self._dseq = dseq
        await self.handle(msg)

    async def _alive(self, js, silent: bool) -> bool:
        """The consumer answers its info request (and, when silent, has nothing pending it is not sending)."""
        try:
            info = await js.consumer_info(self.stream, self.name, timeout=self.request_timeout)
        except Exception as e:  # noqa: BLE001 - not found, no responders, a timeout: dead to us
            self._problem("its consumer does not answer", e)
            return False
        if silent:
            # heartbeats stopped but the consumer answers: alive only if it is not holding back messages
            self._heard = time.monotonic()
            if int(info.num_pending or 0) > 0:
                self._problem(f"silent with {info.num_pending} messages pending")
                return False
        return True

    async def _drop(self, js, delete: bool = True) -> None:
        self._gen += 1
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

