"""Alembic migrations of the metric store: ``env.py`` and ``versions/`` (run by ``store.schema.upgrade``)."""
