"""Pure data: numpy/polars only. Never imports textual, the UI or the feeds (import-linter contract)."""
