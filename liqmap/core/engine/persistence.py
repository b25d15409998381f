"""What the engine writes to the store and reads back: events and report history as they are ingested,
snapshots every minute, history and snapshots on restore."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..timeframes import ORDER as TF_ORDER
from ..timeframes import TIMEFRAMES
from .state import AssetState, PackedSnapshot

SNAPSHOT_SAVE_EVERY = 60.0


ALERT_KEYS_KEPT_DAYS = 7  # fired alerts whose events a restart remembers (walls and clusters end within days)
SCORES_KEPT_DAYS = 30  # the hit rate a restart restores: the last month of settled forecasts


def _to_dict(x: Any) -> Any:
    if hasattr(x, "to_dict"):
        return x.to_dict()
    if isinstance(x, (list, tuple)):
        return [_to_dict(i) for i in x]
    if isinstance(x, dict):
        return {k: _to_dict(v) for k, v in x.items()}
    return x


class PersistenceMixin:
    """Persistence (part of ``Engine``; ``store`` may be None: nothing is written)."""

    def _thin_oi(self, st: AssetState, oi: np.ndarray) -> np.ndarray:
        """One open-interest sample per venue per ``store.oi_every_seconds`` for the history: venues send one
        every second or three, which for 325 pairs would be millions of rows a day that no chart needs."""
        every = self.oi_every
        if not every > 0:
            return oi
        slot = np.floor(oi["ts"] / every).astype(np.int64)
        keep = np.zeros(len(oi), dtype=bool)
        for vid in np.unique(oi["venue"]):
            idx = np.flatnonzero(oi["venue"] == vid)
            s = slot[idx]
            last = st.oi_slot.get(int(vid), -1)
            first = np.ones(len(s), dtype=bool)
            first[1:] = s[1:] != s[:-1]  # rows are time-sorted: the first row of each slot
            ok = first & (s > last)
            keep[idx[ok]] = True
            if ok.any():
                st.oi_slot[int(vid)] = int(s[ok].max())
        return oi[keep]

    def _persist_reports(self, st: AssetState, now: float) -> None:
        """Finished sweeps and settled absorptions once each; a wall row whenever a wall's status changes."""
        for table, recs in st.reports.drain_history().items():
            rows = [_to_dict(r) for r in recs]
            if rows:
                self.store.append_records(table, st.name, rows)
        changes = []
        for w in st.report_dicts.get("walls") or ():
            key = (w.get("side"), w.get("bucket"), w.get("first_seen"))
            status = str(w.get("status", "active"))
            if st.wall_status.get(key) != status:
                st.wall_status[key] = status
                changes.append({"ts": now, **w})
        if len(st.wall_status) > 4000:  # walls end within minutes; forget the oldest keys
            st.wall_status = dict(list(st.wall_status.items())[-2000:])
        if changes:
            self.store.append_records("walls", st.name, changes)

    def _maybe_save(self, now: float, force: bool = False) -> None:
        if self.store is None or not (force or now - self._last_saved >= SNAPSHOT_SAVE_EVERY):
            return
        self._last_saved = now
        self.save_snapshots()

    def save_snapshots(self) -> int:
        """Write the latest snapshot of every follow-the-price view (the ones a restart shows at once);
        packed background snapshots are written as they are, without decoding."""
        if self.store is None:
            return 0
        n = 0
        for key, snap in list(self._latest.items()):
            if key[5] is not None or self._saved.get(key) == snap.version:
                continue
            if isinstance(snap, PackedSnapshot):
                self.store.save_snapshot_bytes(snap.asset, snap.mode, snap.timeframe, snap.venues, snap.blob)
            else:
                source = None
                built = self._built.get(key)
                if key[1] == "heatmap" and built is not None and built.version == snap.version and built.syn:
                    source = (*built.syn, self.params.heatmap_sigma_buckets * max(1, int(key[6])))
                self.store.save_snapshot(snap, heatmap=self._heat, heatmap_source=source)
            self._saved[key] = snap.version
            n += 1
        return n

    def encoded_snapshots(self, sent: dict[tuple, int]) -> list[tuple[str, str, str, tuple, bytes]]:
        """The latest snapshot of every follow-the-price view not in ``sent`` at its version, encoded as a
        snapshot file (the message bus's bucket); ``sent`` (view key → version) is updated. Packed background
        snapshots are passed as they are. Returns (asset, mode, timeframe, venues, blob) per view."""
        from .. import codec

        out = []
        for key, snap in list(self._latest.items()):
            if key[5] is not None or sent.get(key) == snap.version:
                continue
            if isinstance(snap, PackedSnapshot):
                what = (snap.asset, snap.mode, snap.timeframe, tuple(snap.venues), snap.blob)
            else:
                g = snap.grid
                what = (g.asset, g.mode, g.timeframe, tuple(g.venues), codec.encode(snap, heatmap=self._heat))
            sent[key] = snap.version
            out.append(what)
        return out

    def adopt_snapshots(self, snaps) -> int:
        """Snapshots made elsewhere (a collector's, through the bus) shown until this engine builds the view
        itself, exactly like the ones ``restore`` reads from disk."""
        n = 0
        for snap in snaps:
            g = snap.grid
            self._restored[(g.asset, g.mode, g.timeframe, tuple(g.venues))] = snap
            n += 1
        return n

    def restore(self) -> int:
        """Load history and the latest snapshots from the store so the map is full at once."""
        if self.store is None:
            return 0
        n = 0
        for snap in self.store.load_snapshots():
            g = snap.grid
            self._restored[(g.asset, g.mode, g.timeframe, tuple(g.venues))] = snap
            n += 1
        now = self.clock()
        self._restore_forecast_scores(now)
        if self.alerts is not None:  # an event alerted before the restart is not alerted again
            df = self.store.load("alerts", None, since=now - ALERT_KEYS_KEPT_DAYS * 86400.0)
            if df.height and "key" in df.columns:
                self.alerts.restore(df["key"].drop_nulls().to_list())
        horizon = self.columns * TIMEFRAMES["4h"]
        by_asset = self.store.load_events_by_asset("liquidations", since=now - horizon)
        for a in self.assets:
            liqs = by_asset.get(a)
            if liqs is not None and len(liqs):
                st = self.state(a)
                with st.lock:
                    self._ensure_step(st, float(liqs["price"][-1]))
                    for tf in TF_ORDER:
                        st.liqs[tf].merge(liqs, now, step=st.step)
                    st.exact_since = max(st.exact_since, now)  # these rows are in no ring
                    st.data_version += 1
        return n

    def _restore_forecast_scores(self, now: float) -> None:
        """The settled forecasts of the last ``SCORES_KEPT_DAYS`` days: the hit rate goes on after a restart."""
        from ..hitrate import Settled

        for st, rows in self._kept_rows("forecast_scores", now):
            with st.lock:
                st.hitrate.restore([Settled(float(r["ts"]), float(r["model_usd"]), float(r["base_usd"]),
                                            float(r["realized_usd"])) for r in rows.iter_rows(named=True)])
        self._restore_reach_scores(now)

    def _kept_rows(self, table: str, now: float):
        """Each asset's rows of a scores ``table`` from the last ``SCORES_KEPT_DAYS`` days, with its state."""
        df = self.store.load(table, None, since=now - SCORES_KEPT_DAYS * 86400.0)
        if df.height == 0:
            return
        for a in self.assets:
            rows = df.filter(df["asset"] == a) if "asset" in df.columns else df.clear()
            if rows.height:
                yield self.state(a), rows

    def _restore_reach_scores(self, now: float) -> None:
        """The settled NEXT 1H clusters (chance printed, reached) of the same days: the reliability table goes
        on after a restart (``liqmap.core.calibration.ReachLog``)."""
        for st, rows in self._kept_rows("reach_scores", now):
            with st.lock:
                st.reachlog.restore([(float(r["ts"]), float(r["reach"]), float(r["reach_raw"]),
                                      bool(r["reached"])) for r in rows.iter_rows(named=True)])
