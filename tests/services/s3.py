"""Fixtures for the s3 test service (see ../shared/TESTING.md)."""
