"""Fixtures for the gcs test service (see ../shared/TESTING.md)."""
