"""``liqmap replay FILE --headless --report OUT.json``: push a recording through the live parsers (and the
engine: synthetic model + reports, stepped in recording time) and write the JSON report of
``docs/replay-report.md``. Without ``--headless`` the map runs on the recording (same as ``liqmap --replay
FILE``).

Exit 0 when the whole file was processed; 2 when it is truncated, corrupt or not a recording — after
processing every frame before the damage, and after writing the report (with ``"complete": false``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson


def write_report(report: dict[str, Any], path: str) -> None:
    """Atomically (temp file + rename), so a reader never sees half a report."""
    from ..core.store import atomic_write
    from ..feeds.replay import _plain

    from .export import check_target

    check_target(Path(path))  # only a regular file is replaced (never a device, pipe or symlink)
    data = orjson.dumps(_plain(report), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    atomic_write(Path(os.path.abspath(path)), data, durable=False)  # a report: atomic for readers, no fsync


def summary(report: dict[str, Any]) -> list[str]:
    lines = [f"replay {report['file']} ({report.get('format') or '?'}): {report['frames']:,} frames over "
             f"{report.get('duration_s') or 0.0:,.1f} s of recording in {report.get('elapsed_s', 0)} s"]
    gaps = report.get("gaps") or {}
    if gaps.get("count"):
        lines.append(f"  {gaps['count']} quiet gap(s) skipped, {gaps['skipped_s'] / 3600:.2f} h in all "
                     f"(longest {gaps['longest']['seconds'] / 3600:.2f} h)")
    for venue, v in report.get("venues", {}).items():
        ev = ", ".join(f"{n:,} {k}" for k, n in v.get("events", {}).items()) or "no events"
        lines.append(f"  {venue}: {v.get('frames', 0):,} frames, {ev}, {v.get('book_updates', 0):,} book updates, "
                     f"{v.get('errors', 0):,} errors")
    for asset, a in report.get("assets", {}).items():
        lt = a.get("liquidation_totals", {})
        syn = a.get("synthetic")
        syn_txt = (f", synthetic {len(syn['levels'])} levels" if syn else "")
        lines.append(f"  {asset}: step {a.get('step')}, last {a.get('last_price')}, {a['trades']['count']:,} trades, "
                     f"{lt.get('count', 0)} liquidations{syn_txt}")
        ex = a.get("exact")
        if ex:
            lines.append(f"    {ex.get('label')}; {ex.get('accuracy_text')}")
    return lines


def main(args, cfg: dict[str, Any]) -> int:
    path = args.file
    report_path = getattr(args, "report", None)
    if not getattr(args, "headless", False):
        if report_path:
            print("liqmap: replay: --report needs --headless", file=sys.stderr)
            return 2
        from . import run

        args.replay = path
        return run.main(args, cfg)

    from ..feeds.replay import replay_headless

    report = asyncio.run(replay_headless(path, cfg))
    if report_path:
        from .export import ExportError

        try:
            write_report(report, report_path)
        except ExportError as e:
            print(f"liqmap: --report {e}", file=sys.stderr)
            return 2
        except OSError as e:
            print(f"liqmap: {report_path}: cannot write the report: {e.strerror or e}", file=sys.stderr)
            return 2
    for line in summary(report):
        print(line)
    if report.get("error"):
        print(f"liqmap: {report['error']}", file=sys.stderr)
        return 2
    return 0
