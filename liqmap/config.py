"""Settings: defaults < $XDG_CONFIG_HOME/liqmap/config.toml < LIQMAP_* environment < command-line flags.

``DEFAULTS`` below is the whole schema: every key a user may set, with its default, and its type is the
type of the default. A config file with an unknown key, a wrong type or a bad value is refused with one
line naming the file, the key and the problem (``ConfigError``; the CLI exits 2).

Environment variables: ``LIQMAP_<SECTION>__<KEY>`` (double underscore between levels), for example
``LIQMAP_MODEL__HALF_LIFE_HOURS=24`` or ``LIQMAP_APP__MODE=raw``. Lists are comma-separated.

The core never reads these settings: :func:`core_params` turns them into the typed, frozen parameters of
``liqmap.core.params`` (model, engine, store, buckets, reports) that the core is built with, and the defaults
of those sections live there (``liqmap.core.params``, ``liqmap.core.reports.defaults``) — one place each.
To add a parameter, add it with its default and a comment that says what it means: to the parameter class
for the core's sections, here for the others (app, universe, feeds, demo, ...).
"""

from __future__ import annotations

import copy
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from .core.assets import DEFAULT_ASSETS
from .core.events import LIVE_VENUES, REPLAY_ONLY_VENUES
from .core.modes import MODES
from .core.params import (BucketParams, CoreParams, EngineParams, ModelParams, StoreParams, core_params as _core_params,
                          default_data_dir, section_defaults)
from .core.reports.defaults import REPORT_DEFAULTS

DEFAULTS: dict[str, Any] = {
    "app": {
        "mode": "hybrid",  # raw | synthetic | heatmap | hybrid
        "timeframe": "1m",  # 1m | 5m | 15m | 1h | 4h
        "theme": "dark",
        "color": "auto",  # auto | truecolor | 256 | 16
        "hz": 4.0,  # UI tick rate
        "mouse": True,
        "hires": False,  # half-block rendering (two price rows per terminal row)
        "asset": "BTC",  # asset on screen at start
        "zoom": "fit",  # fit: the price path of the window fills the screen | 1 | 2 | 4 | 8 | 16 price buckets per row
    },
    "universe": {
        # 65 liquid perpetuals; edit freely. Names are base assets (PEPE, not 1000PEPE).
        "assets": list(DEFAULT_ASSETS),
        "venues": list(LIVE_VENUES),
        "focus_extra": ["ETH", "SOL"],  # full L2 books for these besides the asset on screen
    },
    # The core's sections: defaults (and what each key means) in liqmap/core/params.py.
    "buckets": section_defaults(BucketParams),
    "model": section_defaults(ModelParams),  # shown in the help screen
    "engine": section_defaults(EngineParams),
    "store": section_defaults(StoreParams),
    "feeds": {
        "stale_seconds": 10.0,  # a venue with no message for this long is shown stale (well before the watchdog)
        "lagging_seconds": 2.0,  # a venue whose data runs this late (smoothed) is shown lagging, with the lag
        "watchdog_seconds": 30.0,
        # A connection silent for this long is closed and reconnected; per kind of data it carries (the
        # smallest over its kinds applies; 0 = watchdog_seconds). Liquidation-only streams are quiet for
        # minutes in calm markets, so they get a long leash.
        "watchdog_by_kind": {"trade": 0.0, "book": 0.0, "oi": 180.0, "liq": 900.0},
        "retries": 5,  # reconnect attempts (1, 2, 4, ... s apart) before a connection is declared down ...
        "restart_seconds": 30.0,  # ... and restarted after this pause, forever
        "close_timeout_seconds": 2.0,  # websocket close handshake limit (a stalled peer never answers)
        "build_timeout_seconds": 30.0,  # building a venue's feeds (symbol maps, metadata) off the loop
        "batch_ms": 50.0,  # parsed rows are handed to the market rings in batches this often
        "light_depth": True,  # top-N depth for assets out of focus, where the venue adapter parses it
        # Live start: this many hours of Binance's, Bybit's and OKX's open-interest history and 1-minute bars are
        # replayed through the synthetic model first (docs/model.md §3 step 10), so the Synthetic map is not empty
        # for hours and its dollars count the positions opened before the start. 0 = off.
        "backfill_hours": 6.0,
        # per request; a failure costs that venue's history for the asset, nothing else
        "backfill_timeout_seconds": 10.0,
        # Venue endpoints (exchanges move them; `liqmap doctor` checks them live). Keys: <venue>_<name>.
        "endpoints": {
            "binance_market": "wss://fstream.binance.com/market",  # forceOrder, aggTrade, markPrice
            "binance_public": "wss://fstream.binance.com/public",  # depth (and @trade)
            "binance_rest": "https://fapi.binance.com",  # open-interest poll, depth snapshot
            "bybit_ws": "wss://stream.bybit.com/v5/public/linear",
            "bybit_rest": "https://api.bybit.com",  # the live start's back-fill (klines, open-interest history)
            "okx_ws": "wss://ws.okx.com:8443/ws/v5/public",
            "okx_rest": "https://www.okx.com",  # the live start's back-fill (candles, open-interest history)
            "deribit_ws": "wss://www.deribit.com/ws/api/v2",
            "hyperliquid_ws": "wss://api.hyperliquid.xyz/ws",  # trades, l2Book, activeAssetCtx
            "hyperliquid_info": "https://api.hyperliquid.xyz/info",  # POST {"type": "meta"} (doctor)
        },
        # Wire channel / topic names per venue ({} = the venue symbol where the venue embeds it).
        "channels": {
            "binance_liquidations": "forceOrder",  # per symbol; see binance_all_liquidations
            "binance_trades": "aggTrade",  # or "trade" (both on the /market connection)
            "binance_mark": "markPrice@1s",
            "binance_depth": "depth@100ms",
            "binance_oi_path": "/fapi/v1/openInterest?symbol={}",
            "binance_depth_path": "/fapi/v1/depth?symbol={}&limit=1000",
            # Light depth (top-N snapshots, each replacing the book) for the assets out of focus:
            "binance_light_depth": "depth20@500ms",  # partial book stream, on /public
            # Bybit linear: 1 lvl/10 ms, 50/20 ms, 200/100 ms, 1000/200 ms (v5 docs); 200 levels every 100 ms
            # is 5x fewer pushes per asset than 50 every 20 ms and still a wall view (the full book is 200 too)
            "bybit_light_depth": "orderbook.200",  # snapshot then deltas
            "okx_light_depth": "books5",  # 5-level snapshot every 100 ms, no checksum
            "deribit_light_depth": "book.{}.none.20.100ms",  # grouped [price, amount] snapshot, 20 levels
            "bybit_liquidations": "allLiquidation",
            "bybit_tickers": "tickers",
            "bybit_book": "orderbook.200",
            "bybit_trades": "publicTrade",
            "okx_liquidations": "liquidation-orders",
            "okx_liquidations_inst_type": "SWAP",
            "okx_oi": "open-interest",
            "okx_book": "books",
            "okx_trades": "trades",
            "okx_mark": "mark-price",
            "hyperliquid_trades": "trades",  # WsTrade[] with the wallets in `users`
            "hyperliquid_ctx": "activeAssetCtx",  # open interest (coins), mark, funding
            "hyperliquid_book": "l2Book",  # full snapshots, at most 20 levels a side
            "hyperliquid_light_depth": "l2Book",  # the same snapshots for the assets out of focus
            "deribit_trades": "trades.{}.100ms",  # carries the `liquidation` flag; `raw` needs API keys
            "deribit_ticker": "ticker.{}.100ms",
            "deribit_book": "book.{}.100ms",
        },
        "binance_all_liquidations": True,  # one !forceOrder@arr stream instead of one per symbol
        "oi_poll_seconds": 10.0,  # Binance open interest is REST-only: poll interval per symbol round
        "dedup_size": 50000,  # remembered trade ids / liquidation keys per venue (drops reconnect replays)
        "okx_skip_first_liquidation": True,  # the first liquidation-orders push after subscribing is stale
        "okx_checksum": True,  # verify OKX books' CRC32 (top 25 levels); a mismatch resyncs the book
        "metadata_ttl_hours": 24.0,  # ccxt markets/tiers cache lifetime before a background refetch
    },
    "reports": copy.deepcopy(REPORT_DEFAULTS),
    "demo": {
        # The simulated five-venue market behind --demo (liqmap/feeds/demo; Hyperliquid in BitMEX's former
        # slot, with that slot's simulated economics: demo/hyperliquid.py). Its trader population is its
        # OWN (deliberately not the synthetic model's leverage weights), so forecast skill measured on it
        # is not circular.
        "seed": 0,
        "speed": 1.0,  # multiple of real time for the paced source
        "assets": list(DEFAULT_ASSETS),  # simulated assets (default: the whole universe)
        "tick_ms": 250,  # simulation step for assets in focus (on screen + universe.focus_extra)
        "coarse_tick_ms": 1000,  # step for the other assets (cheaper; same statistics per unit time)
        "open_rate": 2.0,  # new leveraged positions per second for the largest asset (all venues)
        "rate_decay": 0.8,  # activity of the asset ranked r is (r+1)^-rate_decay of the largest
        "hold_minutes": 90.0,  # mean holding time of a position (exponential, faster when in profit/loss)
        # Resting cohorts (feeds/demo/resting.py): low-leverage positions held for days, in long/short pairs, that
        # bring open interest to its real size (BTC $20bn ... PENDLE $41M, a power law by rank) without changing the
        # tape, the price path, the liquidations or the open interest's steps (only its level): the venues report
        # real-sized OI, so the model's OI-relative floors and caps (model.min_delta_rel, cap_rel) and the dollar
        # scale work as on a real venue. 0 turns them off.
        "resting_oi_btc_usd": 20e9,
        "resting_oi_small_usd": 41e6,
        "resting_positions": 3000,  # cohorts per asset in steady state (their size follows)
        "resting_hold_hours": 24.0,
        "resting_leverage": 2.0,  # median leverage (lognormal, log-sigma 0.25, at most 4)
        "size_median_usd": 4000.0,  # lognormal position size ...
        "size_sigma": 1.5,  # ... with this log-sigma (heavy right tail)
        "whale_share": 0.02,  # share of positions drawn from a Pareto whale tail
        "whale_alpha": 1.3,  # Pareto exponent of the whale tail (× 20 median)
        "leverage_medians": [4.0, 15.0, 50.0],  # lognormal mixture of leverage, clipped at venue max
        "leverage_weights": [0.5, 0.35, 0.15],
        "leverage_sigma": 0.5,
        "entry_jitter_bp": 4.0,  # entries scatter around the traded price (limit fills, slippage)
        "momentum_tilt": 0.25,  # P(long) leans with the last minutes' return (trend chasing)
        "noise_rate": 6.0,  # non-OI taker trades per second for the largest asset
        "vol_hour_pct": 1.0,  # diffusive volatility per hour (largest asset)
        "alt_vol_mult": 1.6,  # the smallest asset's volatility relative to the largest
        "jump_rate_per_hour": 0.6,  # news jumps (the usual cascade trigger) ...
        "jump_pct": 1.2,  # ... with this mean absolute size
        "depth_usd_1pct": 25000000.0,  # net taker USD that moves the largest asset 1%
        "cascade_strength": 2.5,  # forced market orders hit a thinner book: impact multiple
        "mean_revert_hours": 24.0,  # weak pull toward the reference price so long runs stay sane
        # A steady drift of the log price (% per hour; 0 = none): a trending market for the forecast benchmark's
        # market conditions (benchmarks/bench_forecast.py CONDITIONS), off in the live demo.
        "drift_pct_hour": 0.0,
        "book_levels": 50,  # levels per side in each venue book
        "book_step_bp": 2.0,  # book level spacing (rounded to a nice multiple of the tick)
        "offscreen_book_s": 5.0,  # book frames for assets out of focus at most this often ...
        "offscreen_book_levels": 20,  # ... and this deep (lighter depth off screen, docs/architecture.md §6)
        "wall_rate_per_hour": 6.0,  # resting walls placed per asset per hour
        "wall_mult": 25.0,  # wall size relative to a normal level
        "wall_pull_prob": 0.4,  # chance a wall is pulled when price comes near instead of holding
        # Walls in the venue books alone (feeds/demo/books.py BookWalls): they never move the simulated price
        # (the forecast benchmark's ground truth); they give the reports walls pulled and consumed, absorptions
        # held and broken, sweeps into and through levels. Live steps with books only.
        "book_walls": True,
        "book_wall_rate_per_hour": 30.0,  # new walls per asset per hour
        "book_wall_mult": 25.0,  # size relative to a normal level of its venue
        "book_wall_life_minutes": 20.0,  # mean life of a wall price never reaches
        "book_wall_dist_sigma": [0.15, 0.9],  # placed this far from price, in the asset's 10-minute volatility
        "book_wall_pull_prob": 0.4,  # share of walls pulled as price comes within book_wall_pull_bp
        "book_wall_pull_bp": 6.0,
        "book_wall_touch_bp": 3.0,  # price this close to a standing wall tests it ...
        "book_wall_absorb_s": 5.0,  # ... and the aggression prints at it over this long ...
        "book_wall_absorb": [1.8, 3.0],  # ... this many times its visible size (iceberg: refilled)
        "book_wall_sim_show": 0.35,  # the simulator's own walls show this share of their size (icebergs)
        # Pre-roll (liqmap --demo): the market starts with this much simulated history, written unpaced through
        # the real parsers (the asset on screen first, the others in the background), so the map is full.
        "preroll_minutes": 90.0,
        "collect_preroll_minutes": 1.0,  # collect --demo: history before its live start (the first step's burst)
        "preroll_fill_window": True,  # and more if the start view's columns need it (max 6 h): no empty left part
        "preroll_tick_ms": 5000,  # simulation step while writing history (same statistics per unit time)
        "preroll_warmup_minutes": 45.0,  # ... plus this before the window: the model's first half hour is near-empty
        "preroll_far_tick_ms": 15000,  # ... for history older than preroll_minutes (only there to fill the window)
        "preroll_oi_seconds": 10.0,  # open interest frames per venue at most this often in history
        "preroll_mark_seconds": 60.0,  # mark price frames per venue at most this often in history
    },
    # Hyperliquid's exact positions (issue 12; liqmap/feeds/hl_positions.py, docs/hyperliquid.md §4): wallets seen
    # in its trades are polled with POST /info clearinghouseState (weight 2 of 1200 a minute per IP).
    "positions": {
        "enabled": True,  # only where hyperliquid is one of universe.venues
        "info_url": "https://api.hyperliquid.xyz/info",
        "budget_share": 0.5,  # share of Hyperliquid's 1200 weight/min the polling may use (300 wallets a minute)
        "max_wallets": 2000,  # wallets tracked at most (past it the smallest notional, oldest trade is forgotten)
        "refresh_seconds": 120.0,  # a wallet is polled again after this long ...
        "min_refresh_seconds": 15.0,  # ... or this long after its last poll once it traded since
        "backoff_seconds": 2.0,  # pause after a 429 (or a network error), doubling ...
        "backoff_max_seconds": 120.0,  # ... up to this (the server's Retry-After when longer)
        "timeout_seconds": 10.0,  # per request
        # a tracked position that vanished while price traded within this % of its liquidation price is a
        # liquidation (docs/hyperliquid.md §5: no public liquidation stream exists)
        "liquidation_tolerance_pct": 0.5,
        "accuracy_every_seconds": 300.0,  # the model is compared with the exact map this often (docs/model.md §8)
    },
    "recording": {
        "flush_seconds": 2.0,  # `liqmap record` pushes a gzip sync point to disk this often
        "metadata_wait_seconds": 15.0,  # live record: wait this long for contract metadata before starting
    },
    "replay": {
        "tick_seconds": 1.0,  # headless replay steps the engine this often in recording time
        "report_book_levels": 20,  # levels per side of each final book in the report
        "report_max_liquidations": 5000,  # newest liquidations listed per asset (totals count all)
    },
    # The message bus (liqmap/bus, docs/bus.md): NATS JetStream. Empty url: no bus — nothing connects, and
    # liqmap never listens on a port either way. Credentials here or in the URL are never printed.
    "bus": {
        "url": "",  # nats://HOST:PORT or tls://HOST:PORT; several, comma-separated, for a cluster
        "user": "",
        "password": "",
        "token": "",
        "nkey_seed_file": "",  # a file holding an nkey seed
        "creds_file": "",  # a NATS .creds file (JWT + nkey)
        "tls_ca": "",  # CA file to verify the server with (tls://); tls_cert/tls_key: client certificate
        "tls_cert": "",
        "tls_key": "",
        "stream": "LIQMAP",  # rows stream; the books stream is <stream>_BOOKS
        "kv_bucket": "liqmap-snapshots",
        "retention_hours": 0.0,  # rows kept on the bus; 0: the longest timeframe's window (columns × 4 h)
        "catchup_hours": 0.0,  # how far back a viewer starting late replays; 0: the whole retention
        "max_mb": 1024,  # the rows stream's size cap (oldest dropped first)
        "replicas": 1,  # stream replicas (3 on a 3-node cluster)
        "batch_ms": 250,  # rows gathered per (kind, venue, asset) this long, then sent as one message
        "book_seconds": 1.0,  # changed books sent this often
        "book_levels": 400,  # levels per side of each book snapshot
        "snapshot_seconds": 5.0,  # changed engine snapshots put into the bucket this often
        "spool_mb": 1024,  # collector: messages spooled to <data dir>/bus-spool while the bus is away (oldest
        # dropped first, counted); published in order when it is back, and after a restart
        "dedup_seconds": 120.0,  # the server's duplicate window for message ids
    },
    "doctor": {
        "dns_timeout_seconds": 2.0,  # the first check: no DNS answer in this long = no network
        "connect_timeout_seconds": 5.0,  # websocket open (TCP + TLS + upgrade) limit per channel
    },
    "keys": {},  # binding id → key, e.g. mode_raw = "F1"; see the help screen for ids
    # Alert rules ([[alerts]] tables; docs/alerts.md): evaluated for every asset the engine ingests. These
    # defaults are what a new user gets (the demo fires some within minutes); `alerts = []` turns them off.
    "alerts": [
        {"name": "near big cluster", "kind": "near_cluster", "within_pct": 0.5, "min_usd": 1e6, "min_oi_pct": 0.05,
         "cooldown_s": 900.0, "severity": "warning"},
        {"name": "big sweep", "kind": "sweep", "min_usd": 2e6, "cooldown_s": 300.0, "severity": "info"},
        {"name": "liquidation burst", "kind": "liq_burst", "min_usd": 1e6, "window_s": 60.0, "cooldown_s": 300.0,
         "severity": "warning"},
        {"name": "wall pulled", "kind": "wall_gone", "status": "pulled", "min_usd": 5e6, "cooldown_s": 300.0,
         "severity": "info"},
        {"name": "convergence", "kind": "convergence", "cooldown_s": 900.0, "severity": "info"},
        {"name": "venue down", "kind": "venue_down", "cooldown_s": 60.0, "severity": "critical"},
    ],
    "alert_delivery": {
        "toast": True,  # a toast in the TUI
        "bell": True,  # the terminal bell with each warning or critical alert
        "notify_send": False,  # a desktop notification through notify-send, where it exists
        "exec": [],  # a command run for each alert, arguments as a list (never a shell); the alert as JSON on stdin
        "webhook": "",  # an http(s) URL: each alert POSTed as JSON
        "webhook_timeout_s": 5.0,
        "webhook_retries": 3,
    },
}

VALID_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("app", "mode"): MODES,
    ("app", "timeframe"): ("1m", "5m", "15m", "1h", "4h"),
    ("app", "color"): ("auto", "truecolor", "256", "16"),
    ("app", "zoom"): ("fit", "1", "2", "4", "8", "16"),
    ("model", "entry_mode"): ("profile", "highlow"),
}


# Every numeric setting's valid range: (low, high, low excluded). A value outside is refused with one line
# naming the source and key (NaN and ±inf are refused for every number, listed here or not). A list's range
# applies to each item. The ``reports`` section's ranges live with the reports (core.reports.check_params).
_POS = (0.0, None, True)  # strictly positive, no upper bound
_NONNEG = (0.0, None, False)
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "app.hz": (0.1, 60.0, False),
    "buckets.target_bp": (0.01, 1000.0, False),
    "model.leverage_tiers": (1.0, 1000.0, False),
    "model.leverage_weights": (0.0, 1e6, False),
    "model.resting_leverage_tiers": (1.0, 1000.0, True),
    "model.resting_leverage_weights": (0.0, 1e6, False),
    "model.resting_share": (0.0, 1.0, False),
    "model.resting_hold_hours": (0.0, 87600.0, True),
    "model.taker_alpha": (0.0, 1.0, False),
    "model.side_gap_max": (0.0, 1.0, False),
    "model.side_gap_forced_share": (0.0, 1.0, False),
    "model.taker_net_weight": (0.0, 1.0, False),
    "model.taker_net_forced_share": (0.0, 1.0, False),
    "model.min_delta_rel": (0.0, 1.0, False),
    "model.min_delta_usd": _NONNEG,
    "model.cap_rel": (0.0, 1.0, True),
    "model.cap_gap_ref_s": _NONNEG,
    "model.cap_open_fill_ratio": _NONNEG,
    "model.half_life_hours": (0.0, 87600.0, True),
    "model.reconcile_buckets": (0, 1000, False),
    "model.heatmap_sigma_buckets": (0.0, 1000.0, True),
    "model.hybrid_real_hours": (0.0, 8760.0, True),
    "model.hybrid_half_life_hours": (0.0, 87600.0, False),
    "model.raw_half_life_hours": (0.0, 87600.0, False),
    "model.heatmap_clip_pct": (1.0, 100.0, False),
    "model.heatmap_decades": (0.1, 20.0, False),
    "model.synthetic_reach_alpha": (0.0, 4.0, False),
    "model.range_pct": (0.1, 95.0, False),
    "model.typical_position_usd": _POS,
    "model.track_pct": (0.1, 95.0, False),
    "model.max_buckets": (16, 1_000_000, False),
    "model.leverage_spread": (0.0, 1.0, False),
    "model.forecast_leverage_spread": (0.0, 1.0, False),
    "model.prior_weight": (0.0, 1.0, False),
    "model.prior_entry_sigma_pct": (0.0, 100.0, False),
    "model.prior_half_life_hours": (0.0, 87600.0, False),
    "model.prior_fill_forced_share": (0.0, 1.0, False),
    "model.forecast_prior_forced_share": (0.0, 1.0, False),
    "model.prior_held_cap": (0.0, 1e6, False),
    "model.forecast_prior_held_cap": (0.0, 1e6, False),
    "model.forecast_horizon_hours": (0.0, 168.0, True),
    "model.forecast_vol_window_minutes": (1, 10080, False),
    "model.forecast_default_vol_hour_pct": (0.0, 100.0, True),
    "model.forecast_drift_weight": (0.0, 2.0, False),
    "model.forecast_drift_shrink": (0.0, 100.0, False),
    "model.forecast_drift_hours": (0.0, 48.0, False),
    "model.forecast_vr_minutes": (0, 1440, False),
    "model.forecast_vr_shrink": (0.0, 100.0, False),
    "engine.columns": (10, 100_000, False),
    "engine.workers": (1, 64, False),
    "engine.fast_hz": (0.05, 60.0, False),
    "engine.max_queue": (1, 100_000, False),
    "engine.ring_capacity_liq": (16, 1 << 26, False),
    "engine.ring_capacity_trade": (16, 1 << 26, False),
    "engine.ring_capacity_oi": (16, 1 << 26, False),
    "engine.ring_capacity_book": (16, 1 << 26, False),
    "store.flush_seconds": (0.1, 3600.0, False),
    "store.retention_days": (0.01, 36500.0, False),
    "store.compact_after_seconds": (1.0, 30 * 86400.0, False),
    "store.oi_every_seconds": (0.0, 86400.0, False),
    "store.max_pending_rows": (1000, 1_000_000_000, False),
    "feeds.stale_seconds": (0.5, 86400.0, False),
    "feeds.lagging_seconds": (0.1, 3600.0, False),
    "feeds.watchdog_seconds": (1.0, 86400.0, False),
    "feeds.watchdog_by_kind": (0.0, 86400.0, False),
    "feeds.retries": (0, 1000, False),
    "feeds.restart_seconds": (0.1, 86400.0, False),
    "feeds.close_timeout_seconds": (0.0, 600.0, True),
    "feeds.build_timeout_seconds": (0.1, 3600.0, False),
    "feeds.batch_ms": (1.0, 10_000.0, False),
    "feeds.backfill_hours": (0.0, 720.0, False),
    "feeds.backfill_timeout_seconds": (0.1, 600.0, False),
    "feeds.oi_poll_seconds": (0.1, 86400.0, False),
    "feeds.dedup_size": (0, 100_000_000, False),
    "feeds.metadata_ttl_hours": (0.0, 87600.0, False),
    "demo.seed": (0, 2**32 - 1, False),
    "demo.speed": (0.0, 10000.0, True),
    "demo.tick_ms": (10, 60_000, False),
    "demo.coarse_tick_ms": (10, 600_000, False),
    "demo.open_rate": (0.0, 10_000.0, False),
    "demo.rate_decay": (0.0, 10.0, False),
    "demo.hold_minutes": (0.0, 1e6, True),
    "demo.resting_oi_btc_usd": _NONNEG,
    "demo.resting_oi_small_usd": _NONNEG,
    "demo.resting_positions": (0, 100_000, False),
    "demo.resting_hold_hours": (0.0, 1e6, True),
    "demo.resting_leverage": (1.0, 100.0, False),
    "demo.size_median_usd": (0.0, 1e9, True),
    "demo.size_sigma": (0.0, 10.0, False),
    "demo.whale_share": (0.0, 1.0, False),
    "demo.whale_alpha": (0.1, 10.0, False),
    "demo.leverage_medians": (1.0, 1000.0, False),
    "demo.leverage_weights": (0.0, 1e6, False),
    "demo.leverage_sigma": (0.0, 10.0, False),
    "demo.entry_jitter_bp": (0.0, 10_000.0, False),
    "demo.momentum_tilt": (0.0, 1.0, False),
    "demo.noise_rate": (0.0, 10_000.0, False),
    "demo.vol_hour_pct": (0.0, 100.0, False),
    "demo.alt_vol_mult": (0.0, 100.0, False),
    "demo.jump_rate_per_hour": (0.0, 3600.0, False),
    "demo.jump_pct": (0.0, 50.0, False),
    "demo.depth_usd_1pct": (0.0, 1e15, True),
    "demo.cascade_strength": (0.0, 100.0, False),
    "demo.mean_revert_hours": (0.0, 1e6, True),
    "demo.book_levels": (1, 400, False),  # OKX books carry at most 400 levels (its parser refuses more)
    "demo.book_step_bp": (0.01, 1000.0, False),
    "demo.offscreen_book_s": (0.0, 86400.0, False),
    "demo.offscreen_book_levels": (1, 400, False),
    "demo.wall_rate_per_hour": (0.0, 3600.0, False),
    "demo.wall_mult": (0.0, 1e6, False),
    "demo.wall_pull_prob": (0.0, 1.0, False),
    "demo.book_wall_rate_per_hour": (0.0, 3600.0, False),
    "demo.book_wall_mult": (0.0, 1e6, False),
    "demo.book_wall_life_minutes": (0.01, 1e6, False),
    "demo.book_wall_pull_prob": (0.0, 1.0, False),
    "demo.book_wall_dist_sigma": (0.0, 1e3, False),
    "demo.book_wall_sim_show": (0.01, 1.0, False),
    "demo.book_wall_pull_bp": (0.0, 10_000.0, False),
    "demo.book_wall_touch_bp": (0.0, 10_000.0, False),
    "demo.book_wall_absorb_s": (0.01, 3600.0, False),
    "demo.book_wall_absorb": (0.0, 1e3, False),
    "demo.preroll_minutes": (0.0, 7 * 1440.0, False),
    "demo.collect_preroll_minutes": (0.0, 1440.0, False),
    "demo.preroll_tick_ms": (10, 600_000, False),
    "demo.preroll_far_tick_ms": (10, 600_000, False),
    "demo.preroll_warmup_minutes": (0.0, 1440.0, False),
    "demo.preroll_oi_seconds": (0.1, 86400.0, False),
    "demo.preroll_mark_seconds": (0.1, 86400.0, False),
    "positions.budget_share": (0.0, 1.0, True),
    "positions.max_wallets": (1, 1_000_000, False),
    "positions.refresh_seconds": (1.0, 86400.0, False),
    "positions.min_refresh_seconds": (0.0, 86400.0, False),
    "positions.backoff_seconds": (0.1, 3600.0, False),
    "positions.backoff_max_seconds": (0.1, 86400.0, False),
    "positions.timeout_seconds": (0.1, 600.0, False),
    "positions.liquidation_tolerance_pct": (0.0, 50.0, False),
    "positions.accuracy_every_seconds": (1.0, 86400.0, False),
    "recording.flush_seconds": (0.05, 3600.0, False),
    "recording.metadata_wait_seconds": (0.0, 3600.0, False),
    "replay.tick_seconds": (0.01, 86400.0, False),
    "replay.report_book_levels": (0, 100_000, False),
    "replay.report_max_liquidations": (0, 100_000_000, False),
    "bus.retention_hours": (0.0, 24 * 365.0, False),  # 0: the default window
    "bus.catchup_hours": (0.0, 24 * 365.0, False),
    "bus.max_mb": (1, 1 << 30, False),
    "bus.replicas": (1, 5, False),
    "bus.batch_ms": (1, 60_000, False),
    "bus.book_seconds": (0.05, 3600.0, False),
    "bus.book_levels": (1, 100_000, False),
    "bus.snapshot_seconds": (0.1, 3600.0, False),
    "bus.spool_mb": (1, 1 << 24, False),
    "bus.dedup_seconds": (1.0, 86400.0, False),
    "doctor.dns_timeout_seconds": (0.1, 600.0, False),
    "doctor.connect_timeout_seconds": (0.1, 600.0, False),
}
_URL_SCHEMES = {"ws": ("ws://", "wss://"), "rest": ("http://", "https://")}


class ConfigError(Exception):
    """A bad setting: the message is one line naming the source, the key and the problem."""


def default_config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "liqmap" / "config.toml"


def core_params(cfg: dict[str, Any]) -> CoreParams:
    """The typed, frozen parameters the core is built with (``liqmap.core.params``), from loaded settings."""
    return _core_params(cfg)


NUMBER_AS_CHOICE = ("zoom", "app.zoom")  # string choices that a number may spell


def _type_name(v: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(v), type(v).__name__)


def _coerce(source: str, key: str, default: Any, value: Any) -> Any:
    """Check ``value`` against the default's type; ints are accepted where floats are expected."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        if key in NUMBER_AS_CHOICE and isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # zoom = 4 means zoom = "4"
    elif isinstance(default, list):
        if isinstance(value, list):
            if default and isinstance(default[0], float):
                if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
                    return [float(x) for x in value]
                raise ConfigError(f"{source}: {key}: every item must be a number")
            if default and isinstance(default[0], str):
                if all(isinstance(x, str) for x in value):
                    return list(value)
                raise ConfigError(f"{source}: {key}: every item must be a string")
            return list(value)
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
    raise ConfigError(f"{source}: {key}: expected {_type_name(default)}, got {value!r}")


def _declared_venue_key(prefix: str, key: str) -> bool:
    """Is ``feeds.endpoints.<key>`` / ``feeds.channels.<key>`` one a live venue module declares? The defaults
    above list the venues' declarations as they were written; a venue added since needs no entry here to be
    overridden (its module, ``liqmap/feeds/venues/``, is the one place it is declared). The registry is
    imported only for such a key: it brings cryptofeed, which ``liqmap --help`` should not wait for."""
    section = {"feeds.endpoints.": "ENDPOINTS", "feeds.channels.": "CHANNELS"}.get(prefix)
    if section is None:
        return False
    from .feeds.venues import VENUE_CLASSES

    return any(key.startswith(venue + "_") and key[len(venue) + 1:] in getattr(VENUE_CLASSES[venue], section)
               for venue in LIVE_VENUES if venue in VENUE_CLASSES)


def _merge(source: str, base: dict, over: dict, prefix: str = "") -> None:
    for k, v in over.items():
        key = f"{prefix}{k}"
        if k not in base:
            if not _declared_venue_key(prefix, k):
                raise ConfigError(f"{source}: {key}: unknown setting")
            base[k] = _coerce(source, key, "", v)  # a declared endpoint or channel the defaults do not list
            continue
        if isinstance(base[k], dict) and k.endswith("_by_asset"):
            # Free-form per-asset tables (asset → number), merged over the defaults.
            if not isinstance(v, dict) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values()
            ):
                raise ConfigError(f"{source}: {key}: expected a table of asset = number")
            base[k] = {**base[k], **{str(a).upper(): float(x) for a, x in v.items()}}
        elif isinstance(base[k], dict) and base[k] and isinstance(v, dict):
            _merge(source, base[k], v, key + ".")
        elif isinstance(base[k], dict) and not base[k]:
            # Free-form tables (keys): string → string.
            if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
                raise ConfigError(f"{source}: {key}: expected a table of strings")
            base[k] = dict(v)
        else:
            base[k] = _coerce(source, key, base[k], v)


def _parse_env_value(source: str, key: str, default: Any, raw: str) -> Any:
    if isinstance(default, bool):
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{source}: {key}: expected true/false, got {raw!r}")
    if isinstance(default, (int, float)):
        try:
            return _coerce(source, key, default, int(raw) if isinstance(default, int) else float(raw))
        except ValueError:
            raise ConfigError(f"{source}: {key}: expected {_type_name(default)}, got {raw!r}") from None
    if isinstance(default, list):
        items = [x.strip() for x in raw.split(",") if x.strip()]
        if default and isinstance(default[0], float):
            try:
                return [float(x) for x in items]
            except ValueError:
                raise ConfigError(f"{source}: {key}: every item must be a number") from None
        return items
    return raw


# LIQMAP_* variables that are not settings: the CLI sets LIQMAP_COLOR_SYSTEM for the UI, the startup
# benchmark sets LIQMAP_FIRST_FRAME_FILE; child processes inherit them and must still load their config.
_NOT_SETTINGS = frozenset({"LIQMAP_CONFIG", "LIQMAP_DATA_DIR", "LIQMAP_COLOR_SYSTEM", "LIQMAP_FIRST_FRAME_FILE"})


def _env_overrides(cfg: dict, environ: dict[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith("LIQMAP_") or name in _NOT_SETTINGS:
            continue
        path = [p.lower() for p in name[len("LIQMAP_"):].split("__")]
        node = cfg
        for p in path[:-1]:
            if p not in node or not isinstance(node[p], dict):
                raise ConfigError(f"environment {name}: {'.'.join(path)}: unknown setting")
            node = node[p]
        leaf = path[-1]
        if leaf not in node or isinstance(node[leaf], dict):
            raise ConfigError(f"environment {name}: {'.'.join(path)}: unknown setting")
        node[leaf] = _parse_env_value(f"environment {name}", ".".join(path), node[leaf], raw)
        problem = _range_problem(".".join(path), node[leaf])
        if problem:
            raise ConfigError(f"environment {name}: {'.'.join(path)}: {problem}")


def _numbers(node: Any, key: str):
    """(key, number) for every number under ``node`` (lists item by item, tables key by key)."""
    if isinstance(node, bool):
        return
    if isinstance(node, (int, float)):
        yield key, node
    elif isinstance(node, list):
        for x in node:
            yield from _numbers(x, key)
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _numbers(v, f"{key}.{k}" if key else str(k))


def _range_problem(key: str, val: Any) -> str | None:
    """Why ``val`` (a number, list or table of numbers) is not valid for ``key``, or None."""
    for _, v in _numbers(val, ""):
        if not math.isfinite(v):
            return f"{v!r} is not a finite number"
    if key not in RANGES:
        return None
    lo, hi, lo_open = RANGES[key]
    items = val.values() if isinstance(val, dict) else val if isinstance(val, list) else [val]
    for v in items:
        if (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and v > hi):
            low = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
            rng = low if hi is None else (f"between {lo:g} and {hi:g}" if not lo_open else f"{low} and <= {hi:g}")
            return f"{v!r} is out of range (must be {rng})"
    return None


def _check_ranges(cfg: dict, source: str) -> None:
    for key, v in _numbers({k: v for k, v in cfg.items() if not k.startswith("_")}, ""):
        if not math.isfinite(v):
            raise ConfigError(f"{source}: {key}: {v!r} is not a finite number")
    for key in RANGES:
        sec, name = key.split(".", 1)
        problem = _range_problem(key, cfg[sec][name])
        if problem:
            raise ConfigError(f"{source}: {key}: {problem}")
    for name, url in cfg["feeds"]["endpoints"].items():
        kind = "rest" if name.endswith(("_rest", "_info")) else "ws"  # hyperliquid_info: its POST /info
        if not isinstance(url, str) or not url.startswith(_URL_SCHEMES[kind]):
            raise ConfigError(f"{source}: feeds.endpoints.{name}: {url!r} must start with "
                              f"{' or '.join(_URL_SCHEMES[kind])}")
    url = cfg["positions"]["info_url"]
    if not url.startswith(_URL_SCHEMES["rest"]):
        raise ConfigError(f"{source}: positions.info_url: {url!r} must start with http:// or https://")
    for kind in cfg["feeds"]["watchdog_by_kind"]:
        if kind not in ("trade", "book", "oi", "liq", "depth"):
            raise ConfigError(f"{source}: feeds.watchdog_by_kind.{kind}: unknown kind (trade, book, oi, liq, depth)")
    d = cfg["demo"]
    if len(d["leverage_medians"]) != len(d["leverage_weights"]) or not d["leverage_medians"] \
            or sum(d["leverage_weights"]) <= 0:
        raise ConfigError(f"{source}: demo.leverage_weights: one non-negative weight per leverage median, "
                          "not all zero")
    if len(set(cfg["universe"]["venues"])) != len(cfg["universe"]["venues"]) or not cfg["universe"]["venues"]:
        raise ConfigError(f"{source}: universe.venues: list each venue once, at least one")


def _check_alerts(cfg: dict, source: str) -> None:
    """Alert rules and their delivery: a bad rule names the file, the rule and the problem (exit 2)."""
    from .core.alerts import RuleError, parse_rules

    try:
        parse_rules(cfg["alerts"], cfg["universe"]["assets"])
    except RuleError as e:
        raise ConfigError(f"{source}: {e}") from None
    d = cfg["alert_delivery"]
    if not all(isinstance(x, str) and x for x in d["exec"]):
        raise ConfigError(f"{source}: alert_delivery.exec: a command as a list of non-empty strings")
    url = d["webhook"]
    if url and not (url.startswith("http://") or url.startswith("https://")):
        raise ConfigError(f"{source}: alert_delivery.webhook: {url!r} is not an http(s) URL")
    for key, lo, hi in (("webhook_timeout_s", 0.1, 300.0), ("webhook_retries", 0, 20)):
        v = d[key]
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi):
            raise ConfigError(f"{source}: alert_delivery.{key}: {v!r} is out of range ({lo:g} to {hi:g})")


def _check_screen_asset(cfg: dict, source: str) -> None:
    """The asset on screen at start must be one the app collects: ``--asset FOO`` once opened BTC silently."""
    import difflib

    assets = cfg["universe"]["assets"]
    asset = str(cfg["app"]["asset"]).strip().upper()
    cfg["app"]["asset"] = asset
    if asset in assets:
        return
    if asset == DEFAULTS["app"]["asset"]:  # not chosen, only the default: a universe without it starts on its first
        cfg["app"]["asset"] = assets[0]
        return
    close = difflib.get_close_matches(asset, assets, n=4, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    where = "--asset" if source == "command line" else "app.asset"
    raise ConfigError(f"{source}: {where} {asset!r} is not in the universe ({hint}{len(assets)} assets: "
                      f"{', '.join(assets[:8])}{', …' if len(assets) > 8 else ''}; --assets sets the universe)")


def validate(cfg: dict, source: str) -> None:
    """Checks that need more than a type: choices, weights, ranges (``RANGES``), finite numbers."""
    _check_ranges(cfg, source)
    for (sec, key), choices in VALID_CHOICES.items():
        if cfg[sec][key] not in choices:
            raise ConfigError(f"{source}: {sec}.{key}: {cfg[sec][key]!r} is not one of {', '.join(choices)}")
    m = cfg["model"]
    if len(m["leverage_tiers"]) != len(m["leverage_weights"]) or not m["leverage_tiers"]:
        raise ConfigError(f"{source}: model.leverage_weights: needs one weight per leverage tier")
    if any(t < 1 for t in m["leverage_tiers"]):
        raise ConfigError(f"{source}: model.leverage_tiers: leverage must be at least 1")
    if any(w < 0 for w in m["leverage_weights"]) or sum(m["leverage_weights"]) <= 0:
        raise ConfigError(f"{source}: model.leverage_weights: weights must be non-negative, not all zero")
    if len(m["resting_leverage_tiers"]) != len(m["resting_leverage_weights"]) or not m["resting_leverage_tiers"] \
            or sum(m["resting_leverage_weights"]) <= 0:
        raise ConfigError(f"{source}: model.resting_leverage_weights: one non-negative weight per resting leverage "
                          "tier, not all zero")
    for key in ("half_life_hours", "heatmap_sigma_buckets", "range_pct"):
        if not m[key] > 0:
            raise ConfigError(f"{source}: model.{key}: must be positive")
    if not cfg["buckets"]["target_bp"] > 0:
        raise ConfigError(f"{source}: buckets.target_bp: must be positive")
    if not cfg["app"]["hz"] > 0:
        raise ConfigError(f"{source}: app.hz: must be positive")
    if not cfg["universe"]["assets"]:
        raise ConfigError(f"{source}: universe.assets: must list at least one asset")
    gone = [v for v in cfg["universe"]["venues"] if v in REPLAY_ONLY_VENUES]
    if gone:
        raise ConfigError(f"{source}: universe.venues: {gone[0]!r} is closed (BitMEX since 2026-09-23); its "
                          f"recordings still replay, but it is no live venue (choose from {', '.join(LIVE_VENUES)})")
    bad = [v for v in cfg["universe"]["venues"] if v not in LIVE_VENUES]
    if bad:
        raise ConfigError(f"{source}: universe.venues: unknown venue {bad[0]!r} (choose from {', '.join(LIVE_VENUES)})")
    cfg["universe"]["assets"] = [a.upper() for a in cfg["universe"]["assets"]]
    _check_screen_asset(cfg, source)
    _check_alerts(cfg, source)
    from .core.reports import check_params  # range checks owned by the reports package

    try:
        check_params(cfg, source)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def load(
    path: str | Path | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the effective settings. ``overrides`` are the command-line flags, highest precedence."""
    environ = dict(os.environ) if environ is None else environ
    cfg = copy.deepcopy(DEFAULTS)
    explicit = path is not None or "LIQMAP_CONFIG" in environ
    p = Path(path or environ.get("LIQMAP_CONFIG") or default_config_path(environ))
    source = str(p)
    if p.exists() or explicit:
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: cannot read: {e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML: {e}") from None
        _merge(source, cfg, data)
        validate(cfg, source)
    _env_overrides(cfg, environ)
    validate(cfg, "environment")
    if overrides:
        _merge("command line", cfg, overrides)
        validate(cfg, "command line")
    cfg["_path"] = str(p)
    return cfg
