"""Engines, migrations and the one unit-of-work helper of the session store.

SQLite (the default, ``sessions.db``) runs in WAL mode with foreign keys, ``synchronous=NORMAL`` and
a busy timeout; every write transaction starts with ``BEGIN IMMEDIATE`` so writers queue on the busy
handler instead of failing on a lock upgrade, and "database is locked" is retried with backoff.
PostgreSQL URLs (``postgresql://...``) use psycopg 3.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from rrsis_engine.errors import StoreError

log = logging.getLogger("rrsis.store")

T = TypeVar("T")

DEFAULT_DB = "sessions.db"
BUSY_TIMEOUT_MS = 5000
#: How long a write keeps retrying "database is locked" before it gives up (seconds).
LOCK_DEADLINE_S = 60.0
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def resolve_url(url_or_path: str | os.PathLike | None) -> str:
    """None -> $RRSIS_DB or ./sessions.db; a plain path -> sqlite URL; any SQLAlchemy URL as is
    (``postgresql://`` is mapped to the psycopg 3 driver)."""
    if url_or_path is None:
        url_or_path = os.environ.get("RRSIS_DB") or DEFAULT_DB
    s = os.fspath(url_or_path)
    if "://" not in s:
        path = Path(s).expanduser()
        if path.is_dir():
            raise StoreError(f"{path} is a folder; give a database file path such as {path / DEFAULT_DB}.")
        if not path.parent.exists():
            raise StoreError(
                f"The folder of the session database {path} does not exist; create it or choose another --db."
            )
        return f"sqlite:///{path.resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if s.startswith(prefix):
            return "postgresql+psycopg://" + s[len(prefix) :]
    return s


def create_store_engine(url: str) -> Engine:
    """An engine with the store's connection settings (SQLite pragmas, pool pre-ping)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"Not a database URL or path: {url!r} ({exc}).") from None
    kwargs: dict = {"pool_pre_ping": True}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        hint = " Install it with: pip install 'rrsis[postgres]'." if "postgres" in url else ""
        raise StoreError(f"No database driver for {parsed.drivername!r} ({exc}).{hint}") from None
    if is_sqlite:
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no branch - trivial
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        try:
            cur.execute("PRAGMA journal_mode=WAL")
        except Exception as exc:  # a read-only file cannot switch modes; reads still work
            log.debug("cannot switch to WAL: %s", exc)
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection):
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_locked_error(exc: BaseException) -> bool:
    """SQLite "database is locked/busy" (worth waiting for)."""
    msg = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in msg or "database is busy" in msg or "database table is locked" in msg


def is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def write_transaction(engine: Engine, fn: Callable[[Connection], T], *, deadline_s: float = LOCK_DEADLINE_S) -> T:
    """Run ``fn(conn)`` in one short write transaction; commit, or roll back and raise.

    Lock contention ("database is locked") is retried with jittered backoff until ``deadline_s``; a
    dropped server connection is retried twice on a fresh connection. Other errors propagate (the
    caller decides how to report them).
    """
    start = time.monotonic()
    delay = 0.005
    reconnects = 0
    write_engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    while True:
        try:
            with write_engine.begin() as conn:
                return fn(conn)
        except DBAPIError as exc:
            if is_locked_error(exc) and time.monotonic() - start < deadline_s:
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)
                continue
            if is_disconnect(exc) and reconnects < 2:
                reconnects += 1
                time.sleep(0.05 * reconnects)
                continue
            raise


# ---- migrations --------------------------------------------------------------------------------------
def _alembic_config(connection: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def script_directory():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg)


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _check_known(rev: str | None, url: str) -> None:
    if rev is None:
        return
    script = script_directory()
    try:
        known = script.get_revision(rev) is not None
    except Exception:
        known = False
    if not known:
        head = script.get_current_head()
        raise StoreError(
            f"The session database {url} has schema version {rev!r}, which this rrsis does not know "
            f"(newest known: {head!r}). It was probably written by a newer rrsis: upgrade rrsis, or use "
            "another --db file."
        )


def migrate(engine: Engine, target: str = "head") -> str:
    """Bring the schema to ``target`` (default the newest revision); returns the revision now applied.

    Concurrent openers are serialised: SQLite by the ``BEGIN IMMEDIATE`` write lock, PostgreSQL by a
    transaction-level advisory lock. Raises StoreError for an unknown (newer) schema version.
    """
    from alembic import command

    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:  # keep `rrsis` output quiet; migrations are routine
        alembic_log.setLevel(logging.WARNING)
    url = engine.url.render_as_string(hide_password=True)
    head = script_directory().get_current_head()
    with engine.connect() as conn:
        rev = current_revision(conn)
    _check_known(rev, url)
    if rev == head and target == "head":
        return rev

    def _upgrade(conn: Connection) -> str:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(727174)"))
        now = current_revision(conn)  # someone may have migrated while we waited for the lock
        _check_known(now, url)
        if not (now == head and target == "head"):
            command.upgrade(_alembic_config(conn), target)
        return current_revision(conn) or ""

    return write_transaction(engine, _upgrade)


def describe_error(exc: BaseException) -> str:
    """A one-line, user-facing cause for a database error."""
    orig = getattr(exc, "orig", None) or exc
    msg = str(orig).strip().splitlines()[0] if str(orig).strip() else orig.__class__.__name__
    low = msg.lower()
    if "readonly" in low or "read-only" in low or "read only" in low:
        return f"the database is read-only ({msg})"
    if "disk is full" in low or "no space" in low or "disk full" in low:
        return f"the disk is full ({msg})"
    if "locked" in low:
        return f"the database stayed locked by other writers ({msg})"
    if "not a database" in low or "malformed" in low:
        return f"the database file is corrupt or not a SQLite database ({msg})"
    if "unable to open" in low:
        return f"the database file cannot be opened ({msg})"
    if isinstance(exc, SQLAlchemyError) and is_disconnect(exc):
        return f"the database server connection was lost ({msg})"
    return msg
