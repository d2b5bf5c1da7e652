"""Alembic environment of the session store.

Run programmatically by :func:`rrsis_engine.store.db.migrate`, which passes an open connection (already
inside the write transaction that serialises concurrent migrations) in ``config.attributes``.
"""

from alembic import context

from rrsis_engine.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the programmatic path is supported
    raise RuntimeError("Run the store migrations through rrsis_engine.store.open_store().")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
