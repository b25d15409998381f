"""Grid paths that only the benchmarks (and their tests) run: ``GridState`` (an incremental 1m view over ring
cursors) and ``build_all`` (every asset × timeframe in one pass). Both are held equal to
``liqmap.core.grids.build_view`` by tests/test_grids.py; the app's engine uses neither."""

from .state import GridState
from .universe import AssetRows, build_all

__all__ = ["AssetRows", "GridState", "build_all"]
