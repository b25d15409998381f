"""Venue adapters (cryptofeed subclasses), collectors, metadata, recording/replay and the demo market."""
