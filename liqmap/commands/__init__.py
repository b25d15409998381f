"""One module per CLI command, each with main(args, cfg) -> exit code. A missing module means "not built yet"."""
