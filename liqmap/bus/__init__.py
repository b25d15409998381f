"""The message bus: collectors publish to NATS JetStream, viewers anywhere subscribe (issue 13).

    collector: Runtime(LiveSource | DemoFeed) ─► Ingest ─► Market ──(accepted rows)──► BusPublisher
                                                 BookBoard ──(top-N book snapshots)──┘   │  Engine ──(snapshots)─┘
                                                                                        ▼
        NATS JetStream  stream LIQMAP        liqmap.{trade,liq,oi}.<venue>.<asset>  (retention window)
                        stream LIQMAP_BOOKS liqmap.book.<venue>.<asset>            (latest per subject)
                        KV bucket liqmap-snapshots  <asset>.<mode>.<tf>.<venues>   (latest engine snapshot)
                                                                                        │
    viewer:    Runtime(BusSource) ─► Ingest.add (rows) / own BookBoard (books) / engine restored snapshots ─► TUI

- ``settings``  the ``[bus]`` section and the URL: servers, credentials, TLS; ``redact`` for every line shown
- ``wire``      subjects, keys and the payload encoding (numpy row buffers; see ``docs/bus.md``)
- ``client``    connecting, the stream and the bucket (created idempotently by whoever comes first)
- ``publisher`` ``BusPublisher``: batches, message ids, a bounded buffer while the bus is away
- ``source``    ``BusSource``: a ``FrameSource`` for ``liqmap --bus`` and ``liqmap collect --from-bus``

Nothing here listens on a port: liqmap is only ever a NATS client, and without ``--bus`` it connects nowhere.
"""
