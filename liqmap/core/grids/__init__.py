"""Grid builders for the four map modes (docs/architecture.md §4) and the price trace.

- ``window``: which cells a view covers (rows around a price, the timeframe's column window).
- ``layers``: the numeric pieces (liquidation binning with optional decay, trace/high/low, Gaussian
  smoothing along price, 0–1 normalization, forward profile), pure numpy.
- ``modes``: one builder per mode over plain arrays, and ``build_view`` (one ``core.view.View`` from the
  market, placed at the rows the engine chose).

Two more paths over the rings, run only by the benchmarks, live in ``benchmarks/grid_paths`` (``GridState``,
``build_all``).
"""

from .layers import (
    ColumnPrices,
    column_prices,
    gaussian_kernel,
    liquidation_layers,
    normalize,
    price_range,
    price_trace,
    profile_rows,
    smooth_rows,
)
from .modes import (
    GridParams,
    SyntheticModel,
    build_heatmap,
    build_hybrid,
    build_raw,
    build_synthetic,
    build_view,
    drawn_layers,
    model_layers,
    model_levels,
    report_levels,
)
from .window import Window, make_window, rows_around, view_window, window_around

__all__ = [
    "ColumnPrices", "GridParams", "SyntheticModel", "Window",
    "build_heatmap", "build_hybrid", "build_raw", "build_synthetic", "build_view",
    "column_prices", "drawn_layers", "gaussian_kernel", "liquidation_layers", "make_window", "model_layers",
    "model_levels",
    "normalize", "price_range", "price_trace", "profile_rows", "report_levels", "rows_around", "smooth_rows",
    "view_window", "window_around",
]
