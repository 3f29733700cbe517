"""core-data's REST API (EdgeX v3 paths)."""
