"""Alembic migrations of the remote's database (``script_location = ama_remote:migrations``)."""

HEAD = "0008_verification_failure_code"
"""The newest revision. Checked against Alembic's own view by a test, so that opening an
up-to-date database can skip loading Alembic (a few hundred milliseconds per command)."""
