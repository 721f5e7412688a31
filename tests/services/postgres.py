"""Fixtures for the postgres test service (see ../shared/TESTING.md)."""
