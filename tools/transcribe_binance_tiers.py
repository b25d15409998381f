"""Transcribe Binance USD-M leverage brackets into liqmap's own compact table (liqmap/data/binance_tiers.json).

Input: a ccxt ``fetch_leverage_tiers()`` dump for Binance USD-M, such as freqtrade's
``freqtrade/exchange/binance_leverage_tiers.json`` (GPL-3.0: that file is never copied into liqmap; only
the exchange's numbers — bracket floor, cap, maintenance-margin ratio, initial leverage, cum — are
transcribed, for the default 65-asset universe).

    python tools/transcribe_binance_tiers.py /work/shared/data/real/binance-usdm/freqtrade_binance_leverage_tiers.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from liqmap.core.assets import DEFAULT_ASSETS, default_universe  # noqa: E402

OUT = ROOT / "liqmap" / "data" / "binance_tiers.json"

HEADER = {
    "source": (
        "Binance USD-M GET /fapi/v1/leverageBracket (brackets: notionalFloor, notionalCap, maintMarginRatio, "
        "initialLeverage, cum), as captured through ccxt fetch_leverage_tiers in freqtrade/freqtrade "
        "freqtrade/exchange/binance_leverage_tiers.json, commit 3d9514d2660c42dfdbde517f7b421d1a5cf4f196. "
        "Numbers transcribed by tools/transcribe_binance_tiers.py; the GPL file itself is not included."
    ),
    "as_of": "2024-10-24",
    "venue": "binance",
    "units": "notional in USDT; mmr as a fraction; cum in USDT (MM = notional*mmr - cum)",
    "columns": ["floor", "cap", "mmr", "max_leverage", "cum"],
}


def _num(x: str) -> float | int:
    f = float(x)
    return int(f) if f.is_integer() else f


def transcribe(src: Path) -> dict:
    data = json.loads(src.read_text(encoding="utf-8"))
    uni = default_universe()
    symbols: dict[str, dict] = {}
    missing = []
    for asset in DEFAULT_ASSETS:
        sym = uni[asset].markets["binance"].symbol
        key = f"{sym[:-4]}/USDT:USDT"
        tiers = data.get(key)
        if not tiers:
            missing.append(sym)
            continue
        rows = []
        for t in sorted(tiers, key=lambda t: float(t["info"]["notionalFloor"])):
            info = t["info"]
            rows.append([_num(info["notionalFloor"]), _num(info["notionalCap"]), _num(info["maintMarginRatio"]),
                         _num(info["initialLeverage"]), _num(info["cum"])])
        symbols[sym] = {"asset": asset, "brackets": rows}
    if missing:
        print("not in source:", ", ".join(missing), file=sys.stderr)
    return {**HEADER, "symbols": symbols}


def dump(doc: dict) -> str:
    """One symbol per line block, one bracket per line: diffable and readable."""
    head = {k: v for k, v in doc.items() if k != "symbols"}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    lines.append('  "symbols": {')
    items = list(doc["symbols"].items())
    for i, (sym, entry) in enumerate(items):
        lines.append(f'    {json.dumps(sym)}: {{"asset": {json.dumps(entry["asset"])}, "brackets": [')
        rows = entry["brackets"]
        for j, r in enumerate(rows):
            lines.append("      " + json.dumps(r) + ("," if j < len(rows) - 1 else ""))
        lines.append("    ]}" + ("," if i < len(items) - 1 else ""))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    doc = transcribe(Path(argv[0]))
    OUT.write_text(dump(doc), encoding="utf-8")
    print(f"wrote {OUT} ({len(doc['symbols'])} symbols)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
