"""Alembic revisions of the metric store, numbered like the sql/NNN_*.sql files they replace (001..005)."""
