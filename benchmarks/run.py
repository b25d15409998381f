#!/usr/bin/env python3
"""Benchmarks: ``python benchmarks/run.py [NAME...]`` prints one JSON object per line.

Each line is ``{"name", "value", "unit", "target", "ok", "detail"}`` (docs/architecture.md §10–11).
Benchmarks live in ``benchmarks/bench_*.py``; each module exposes ``BENCHMARKS = {name: fn}`` where
``fn()`` returns a dict with at least ``value``, ``unit``, ``target`` and ``ok``, and in ``detail`` the
baseline measured in the same run wherever there is one. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def discover() -> dict[str, object]:
    found: dict[str, object] = {}
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(mod)
        for name, fn in getattr(mod, "BENCHMARKS", {}).items():
            found[name] = fn
    return found


def main(argv: list[str]) -> int:
    benches = discover()
    names = argv or list(benches)
    unknown = [n for n in names if n not in benches]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(benches)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        t0 = time.perf_counter()
        try:
            res = dict(benches[name]())
        except Exception as e:  # one broken benchmark must not hide the others
            traceback.print_exc()
            res = {"value": None, "unit": "", "target": None, "ok": False, "detail": {"error": repr(e)}}
            failed += 1
        out = {"name": name, "value": res.pop("value"), "unit": res.pop("unit", ""),
               "target": res.pop("target", None), "ok": bool(res.pop("ok", False)),
               "detail": {**res.pop("detail", {}), **res, "wall_s": round(time.perf_counter() - t0, 2)}}
        print(json.dumps(out), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
