"""Fault tests with real processes: SIGKILL mid-burst, concurrent writers, a read-only database file,
a full disk (SQLite's max_page_count gives the real "database or disk is full" error) and a PostgreSQL
server that goes away; the session goes on in memory and flushes when the database is back."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, text

from rrsis_engine.imageio import RasterImage
from rrsis_engine.session import PromptState, Turn, TurnEvent
from rrsis_engine.store import StoreWarning, open_store

from .conftest import make_prediction

WRITER = str(Path(__file__).with_name("writer.py"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def check_integrity(url: str) -> None:
    store = open_store(url)
    assert store.integrity_check() == "ok"
    store.close()


def committed_turns(url: str) -> set[tuple[str, int]]:
    store = open_store(url)
    with store.engine.connect() as c:
        rows = {(s, q) for s, q in c.execute(text("SELECT session_id, seq FROM turns")).all()}
    store.close()
    return rows


def test_sigkill_mid_burst_loses_no_committed_turn(db_url):
    open_store(db_url).close()  # migrate first, so the kill lands in the turn burst
    proc = subprocess.Popen([sys.executable, WRITER, "burst", db_url, "100000"], stdout=subprocess.PIPE,
                            text=True, env=ENV)
    seen = []
    for line in proc.stdout:
        seen.append(line.split())
        if len(seen) >= 60:
            break
    proc.send_signal(signal.SIGKILL)
    rest = proc.stdout.read()  # lines printed between our read and the kill are committed too
    proc.wait(timeout=30)
    seen += [ln.split() for ln in rest.splitlines() if ln.strip()]
    assert proc.returncode == -signal.SIGKILL
    check_integrity(db_url)
    stored = committed_turns(db_url)
    assert {(s, int(q)) for s, q in seen} <= stored
    assert len(stored) >= len(seen)


def run_writers(url: str, n: int, seconds: float) -> list[dict]:
    open_store(url).close()
    procs = [subprocess.Popen([sys.executable, WRITER, "timed", url, str(seconds), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for i in range(n)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=seconds + 120)
        assert p.returncode == 0, err[-2000:] + out
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def check_nothing_lost(url: str, results: list[dict]) -> None:
    assert all(r["pending"] == 0 and r["ok"] and not r["warnings"] for r in results), results
    check_integrity(url)
    store = open_store(url)
    with store.engine.connect() as c:
        per = dict(c.execute(text("SELECT session_id, count(*) FROM turns GROUP BY session_id")).all())
        ended = c.execute(text("SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL")).scalar_one()
    store.close()
    assert per == {r["session"]: r["logged"] for r in results}
    assert ended == len(results)


def test_concurrent_writers_short(db_url):
    results = run_writers(db_url, 4, 3.0)
    check_nothing_lost(db_url, results)
    assert all(r["logged"] > 0 for r in results)


@pytest.mark.slow
def test_eight_writers_twenty_seconds(db_url):
    results = run_writers(db_url, 8, 20.0)
    check_nothing_lost(db_url, results)


# ---- read-only file ---------------------------------------------------------------------------------
@pytest.fixture
def unprivileged_dir():
    """A temporary folder the writer process can write to; as root the writer runs as `nobody`, since
    root ignores file permissions."""
    d = Path(tempfile.mkdtemp(prefix="rrsis-ro-"))
    user = None
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody")
        os.chown(d, user.pw_uid, user.pw_gid)
    yield d, user
    shutil.rmtree(d, ignore_errors=True)


def _repl_as(user, db: str, conn) -> None:
    """Forked child: drop to ``user`` (root ignores file modes), then log turns on command."""
    import warnings

    if user is not None:
        os.setgroups([])
        os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
        os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = open_store(db)
        lg = store.start_session(RasterImage(np.zeros((96, 128, 3), np.uint8)), client="cli", retry_interval=0.0)
        n = 0
        while True:
            cmd = conn.recv().split()
            if cmd[0] == "quit":
                break
            if cmd[0] == "turn":
                for _ in range(int(cmd[1])):
                    pred = make_prediction(np.eye(96, 128, dtype=bool))
                    lg(TurnEvent(lg.id, Turn(n, "click", PromptState("r", ((2.0, 3.0),), (1,)), pred, n > 0)))
                    n += 1
            elif cmd[0] == "flush":
                lg.flush()
            elif cmd[0] == "close":
                lg.close()
            st = lg.status
            conn.send({"state": st.state, "pending": st.pending, "error": st.last_error, "message": st.message,
                       "warnings": [str(w.message) for w in caught]})
    conn.close()


def test_read_only_file_keeps_session_in_memory_then_flushes(unprivileged_dir):
    import multiprocessing as mp

    d, user = unprivileged_dir
    db = d / "sessions.db"
    open_store(db).close()
    if user is not None:
        for f in d.iterdir():
            os.chown(f, user.pw_uid, user.pw_gid)
    for f in d.iterdir():
        f.chmod(0o444)
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_repl_as, args=(user, str(db), child))
    proc.start()

    def ask(cmd: str) -> dict:
        parent.send(cmd)
        assert parent.poll(60), "writer process did not answer"
        return parent.recv()

    try:
        st = ask("turn 5")
        assert st["state"] == "degraded" and st["pending"] == 6  # the session row + 5 turns
        assert "read-only" in st["error"] and "kept in memory" in st["message"]
        assert any("read-only" in w for w in st["warnings"])
        for f in d.iterdir():
            f.chmod(0o644)
        st = ask("flush")
        assert st["state"] == "ok" and st["pending"] == 0, st
        assert ask("turn 2")["pending"] == 0
        assert ask("close")["pending"] == 0
        parent.send("quit")
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0
    assert len(committed_turns(str(db))) == 7
    check_integrity(str(db))


# ---- full disk --------------------------------------------------------------------------------------
def test_full_disk_keeps_session_in_memory_then_flushes(tmp_path, image):
    db = tmp_path / "sessions.db"
    store = open_store(db)
    with store.engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()

    def limit(dbapi_conn, _rec):
        dbapi_conn.execute(f"PRAGMA max_page_count={pages + 8}")

    event.listen(store.engine, "connect", limit)
    store.engine.pool.dispose()
    lg = store.start_session(image, client="cli", retry_interval=0.0)
    rng = np.random.default_rng(1)
    with pytest.warns(StoreWarning, match="disk is full"):
        for i in range(40):  # noise masks: ~2.5 kB RLE each, the 8 spare pages fill up quickly
            pred = make_prediction(rng.random((64, 80)) < 0.5)
            lg(TurnEvent(lg.id, Turn(i, "click", PromptState("n", ((1.0, 1.0),), (1,)), pred, i > 0)))
    st = lg.status
    assert st.state == "degraded" and st.pending > 0 and "disk is full" in st.message
    event.remove(store.engine, "connect", limit)
    assert lg.flush() and lg.status.state == "ok"
    assert lg.close()
    with store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM turns")).scalar_one() == 40
        assert c.execute(text("SELECT max(seq) FROM turns")).scalar_one() == 39
    assert store.integrity_check() == "ok"
    store.close()


# ---- server down ------------------------------------------------------------------------------------
@pytest.mark.postgres
def test_postgres_server_down_keeps_session_in_memory_then_flushes(pg_server, image):
    url = pg_server.create_database("t_down")
    store = open_store(url)
    lg = store.start_session(image, client="web", retry_interval=0.0)
    pg_server.stop()
    try:
        with pytest.warns(StoreWarning):
            for i in range(3):
                lg(TurnEvent(lg.id, Turn(i, "text", PromptState(f"t{i}"), make_prediction(np.ones((64, 80), bool)), False)))
        assert lg.status.state == "degraded" and lg.status.pending == 3
    finally:
        pg_server.restart_later()
    assert lg.flush() and lg.close()
    with store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM turns")).scalar_one() == 3
    store.close()
    time.sleep(0)
