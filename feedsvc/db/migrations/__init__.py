"""Alembic migrations for the feedsvc database (run with `feedsvc db upgrade`)."""
