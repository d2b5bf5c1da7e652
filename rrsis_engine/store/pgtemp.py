"""A throwaway local PostgreSQL server (initdb + pg_ctl on a temporary data folder), for the store's
tests and ``rrsis bench store``. Not for production: trust authentication on 127.0.0.1 only.

When running as root the server runs as the unprivileged ``postgres`` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from rrsis_engine.errors import StoreError


def find_pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin with pg_ctl, or the folder of pg_ctl on PATH."""
    env = os.environ.get("RRSIS_PG_BIN")
    if env and (Path(env) / "pg_ctl").exists():
        return Path(env)
    cands = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0
    )
    if cands:
        return Path(cands[-1]).parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TemporaryPostgres:
    """``with TemporaryPostgres() as pg: pg.create_database("x") -> URL``; stopped and removed on exit."""

    def __init__(self, user: str = "postgres"):
        self.bin = find_pg_bin()
        if self.bin is None:
            raise StoreError("No PostgreSQL server binaries (pg_ctl) found; install the postgresql package.")
        self.run_as = None
        if os.geteuid() == 0:
            import pwd

            try:
                self.run_as = pwd.getpwnam(user)
            except KeyError:
                raise StoreError(
                    f"Running as root but there is no {user!r} user to run PostgreSQL as; create one "
                    f"(useradd -r {user})."
                ) from None
        self.root = Path(tempfile.mkdtemp(prefix="rrsis-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.superuser = "rrsis"
        self._started = False

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.run_as is not None:
            kwargs["user"] = self.run_as.pw_uid
            kwargs["group"] = self.run_as.pw_gid
            kwargs["extra_groups"] = []
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        res = subprocess.run(
            [str(self.bin / args[0]), *args[1:]], capture_output=True, text=True, env=env, cwd=self.root,
            timeout=timeout, **kwargs,
        )
        if check and res.returncode != 0:
            raise StoreError(f"{args[0]} failed ({res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
        return res

    def start(self) -> TemporaryPostgres:
        if self.run_as is not None:
            os.chown(self.root, self.run_as.pw_uid, self.run_as.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.superuser, "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60 -c shared_buffers=64MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"), "-w",
                  "-t", "60", "start")
        self._started = True
        return self

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{self.superuser}@127.0.0.1:{self.port}/postgres"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.superuser} dbname={dbname}",
                             autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self._started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
            self._started = False

    def restart_later(self) -> None:
        """Start again after :meth:`stop` (same port and data)."""
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60 -c shared_buffers=64MB"
        )
        for _ in range(3):
            res = self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"),
                            "-w", "-t", "60", "start", check=False)
            if res.returncode == 0:
                self._started = True
                return
            time.sleep(0.5)
        raise StoreError(f"pg_ctl start failed: {res.stderr.strip()}")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TemporaryPostgres:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc) -> None:
        self.cleanup()
