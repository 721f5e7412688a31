"""Alembic migrations of the remote's database (``script_location = ama_remote:migrations``)."""
