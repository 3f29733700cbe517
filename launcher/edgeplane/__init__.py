"""edgeplane native launcher: the `edgeplane` command (see `edgeplane.cli`)."""
