"""liqmap: a terminal liquidity map for crypto perpetuals."""

__version__ = "0.1.0"
