"""The Dagster graph: declarations only. The monitoring logic lives in the plain modules beside ``defs/``."""
