"""Alembic environment of the metric store. ``store.schema.upgrade`` runs it on a connection it has already
opened, locked and begun a transaction on (``config.attributes["connection"]``), so every revision of one upgrade
commits or rolls back together; there is no alembic.ini and no offline (``--sql``) mode."""

from alembic import context

from monitoring_pipelines.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the metric store migrations run through MetricStore.migrate(), which passes a connection")
context.configure(
    connection=connection,
    target_metadata=metadata,
    on_version_apply=config.attributes.get("on_version_apply", ()),
)
with context.begin_transaction():
    context.run_migrations()
