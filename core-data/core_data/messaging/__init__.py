"""The bus side of core-data: ingestion from the events stream, publication of REST events."""
