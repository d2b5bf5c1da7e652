"""Session store API against SQLite and a real PostgreSQL server: a whole RefinementSession logged
turn by turn, read back, and the schema migrated from empty and from the previous revision."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import inspect, text

from rrsis_engine.errors import StoreError
from rrsis_engine.session import RefinementSession
from rrsis_engine.store import models as m
from rrsis_engine.store import open_store
from rrsis_engine.store.db import create_store_engine, migrate, resolve_url


def count(store, table: str) -> int:
    with store.engine.connect() as c:
        return c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_whole_session_is_logged_and_read_back(db_url, image, predictor):
    store = open_store(db_url)
    session = RefinementSession(predictor, image)
    logger = store.start_session(session.image, client="web", annotator="ann", model_version="fake-1")
    session.subscribe(logger)
    session.text("the red roof")
    session.click(20, 30)
    session.click(40, 10)
    session.undo()  # the (40, 10) click is undone...
    session.click(50, 20, positive=False)  # ...and dropped from the history by a new turn
    final = session.box(10, 10, 60, 50)
    session.accept()
    assert logger.status.pending == 0 and logger.status.state == "ok"

    recs = store.list_annotations(status="accepted")
    assert len(recs) == 1
    rec = recs[0]
    assert rec.expressions == ["the red roof"]
    assert rec.mask.shape == (64, 80) and np.array_equal(rec.mask, final.mask)
    assert rec.image_hash == image.content_hash()
    assert rec.image_path == image.path
    assert rec.crs == "EPSG:32614" and rec.transform[2] == 500000.0
    assert (rec.client, rec.annotator, rec.model_version) == ("web", "ann", "fake-1")
    # the trace: the active turns in order, not the undone one
    assert [t.kind for t in rec.turns] == ["text", "click", "click", "box"]
    assert rec.turns[2].labels == [1, 0] and rec.turns[2].points == [[20.0, 30.0], [50.0, 20.0]]
    assert rec.turns[3].box == [10.0, 10.0, 60.0, 50.0]
    assert np.array_equal(rec.turns[-1].mask, final.mask)
    # each turn's estimated IoU as shown (the fake predictor's: 1 − 0.01 per click), beside the decoder's IoU head
    assert [t.quality for t in rec.turns] == pytest.approx([1.0, 0.99, 0.98, 0.98])
    assert all(t.iou_score == 0.9 for t in rec.turns)

    detail = store.get_session(logger.id[:8])
    assert len(detail["turns"]) == 5  # every turn, including the undone one
    undone = [t for t in detail["turns"] if t.undone]
    assert [t.points[-1] for t in undone] == [[40.0, 10.0]]
    # prior turns: the click after the undo follows the first click, not the undone one
    with store.engine.connect() as c:
        rows = c.execute(text("SELECT seq, id, prior_turn_id FROM turns ORDER BY seq")).all()
    ids = {seq: i for seq, i, _ in rows}
    priors = {seq: p for seq, _, p in rows}
    assert priors[0] is None and priors[1] == ids[0] and priors[2] == ids[1] and priors[3] == ids[1]
    assert priors[4] == ids[3]
    assert detail["ended_at"] is None
    logger.close()
    assert store.get_session(logger.id)["ended_at"] is not None
    store.close()


def test_several_objects_statuses_and_clear(db_url, image, predictor):
    store = open_store(db_url)
    session = RefinementSession(predictor, image)
    logger = store.start_session(session.image, client="napari", model_version="fake-1")
    session.subscribe(logger)
    session.text("pool")
    session.clear()
    session.text("the pool")
    session.accept()
    session.click(5, 5)
    session.accept(status="rejected")
    session.accept(status="skipped")
    logger.close()
    assert len(store.list_annotations()) == 1
    assert [a.status for a in store.list_annotations(status=None)] == ["accepted", "rejected", "skipped"]
    acc = store.list_annotations()[0]
    assert [t.kind for t in acc.turns] == ["text", "text"]  # the clear turn is logged but not in the trace
    skipped = store.list_annotations(status="skipped")[0]
    assert skipped.area == 0 and skipped.turns == []
    st = store.stats()
    assert st["turns"] == 4 and st["annotations"] == {"accepted": 1, "rejected": 1, "skipped": 1}
    with store.engine.connect() as c:
        assert sorted(c.execute(text("SELECT object_index FROM annotations")).scalars()) == [0, 1, 2]
    store.close()


def test_no_pixels_unless_asked(db_url, image):
    store = open_store(db_url)
    a = store.start_session(image, client="cli")
    a.close()
    assert store.image_pixels_png(1) is None
    b = store.start_session(image, client="cli", store_images=True)  # same image: pixels added
    b.close()
    png = store.image_pixels_png(1)
    from io import BytesIO

    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(BytesIO(png))), image.pixels)
    assert count(store, "images") == 1 and count(store, "sessions") == 2
    store.close()


def test_since_filter_and_training_runs(db_url, image, predictor):
    store = open_store(db_url)
    session = RefinementSession(predictor, image)
    lg = store.start_session(session.image, client="cli")
    session.subscribe(lg)
    session.text("a")
    session.accept()
    lg.close()
    assert len(store.list_annotations(since="2000-01-01")) == 1
    assert store.list_annotations(since="2999-01-01") == []
    with pytest.raises(StoreError, match="not a date"):
        store.list_annotations(since="yesterday")
    ids = [r.id for r in store.list_annotations()]
    run = store.record_training_run("run-1", ids, base_model="fake-1", output_model="fake-2", metrics={"miou": 0.5})
    assert run >= 1 and count(store, "training_run_annotations") == 1 and count(store, "model_versions") == 1 + 1
    store.close()


def test_schema_from_empty_matches_models(db_url):
    store = open_store(db_url)
    assert store.revision == "0003"
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as c:
        diffs = compare_metadata(MigrationContext.configure(c), m.Base.metadata)
        tables = set(inspect(c).get_table_names())
    assert not diffs, diffs
    assert {"images", "sessions", "turns", "annotations", "annotation_turns", "model_versions",
            "training_runs", "training_run_annotations"} <= tables
    store.close()
    assert open_store(db_url).revision == "0003"  # re-opening is a no-op


def test_upgrade_from_previous_revision_keeps_data(db_url):
    from rrsis_engine import rle

    empty = rle.encode(np.zeros((4, 5), bool))["counts"]
    engine = create_store_engine(resolve_url(db_url))
    assert migrate(engine, "0001") == "0001"
    with engine.begin() as c:
        assert "training_runs" not in inspect(c).get_table_names()
        c.execute(text("INSERT INTO images (content_hash, height, width, band_count, created_at) "
                       "VALUES ('h1', 4, 5, 3, '2024-01-01 00:00:00')"))
        c.execute(text("INSERT INTO sessions (id, image_id, client, started_at) "
                       "VALUES ('s1', 1, 'cli', '2024-01-01 00:00:00')"))
        c.execute(text("INSERT INTO annotations (session_id, image_id, object_index, status, expressions, "
                       "mask_counts, mask_height, mask_width, mask_area, created_at) VALUES "
                       "('s1', 1, 0, 'accepted', '[\"old\"]', :c, 4, 5, 0, '2024-01-01 00:00:00')"), {"c": empty})
    engine.dispose()
    store = open_store(db_url)
    assert store.revision == "0003"
    recs = store.list_annotations()
    assert [r.expressions for r in recs] == [["old"]] and recs[0].mask.shape == (4, 5)
    store.record_training_run("after-upgrade", [recs[0].id])
    store.close()


def test_upgrade_to_0003_keeps_logged_turns_and_adds_an_empty_quality(db_url):
    from rrsis_engine import rle

    mask = rle.encode(np.ones((4, 5), bool))["counts"]
    engine = create_store_engine(resolve_url(db_url))
    assert migrate(engine, "0002") == "0002"
    with engine.begin() as c:
        assert "quality" not in {col["name"] for col in inspect(c).get_columns("turns")}
        c.execute(text("INSERT INTO images (content_hash, height, width, band_count, created_at) "
                       "VALUES ('h1', 4, 5, 3, '2024-01-01 00:00:00')"))
        c.execute(text("INSERT INTO sessions (id, image_id, client, started_at) "
                       "VALUES ('s1', 1, 'cli', '2024-01-01 00:00:00')"))
        c.execute(text("INSERT INTO turns (session_id, seq, object_index, turn_index, kind, text, used_prior, "
                       "mask_counts, mask_height, mask_width, mask_area, iou_score, ambiguous, undone, created_at) "
                       "VALUES ('s1', 0, 0, 0, 'text', 'the pool', false, :c, 4, 5, 20, 0.7, false, false, "
                       "'2024-01-01 00:00:00')"), {"c": mask})
    engine.dispose()
    store = open_store(db_url)
    assert store.revision == "0003"
    (turn,) = store.get_session("s1")["turns"]
    assert (turn.text, turn.iou_score, turn.quality) == ("the pool", 0.7, None) and turn.mask.all()
    store.close()


def test_unknown_schema_version_is_refused_untouched(db_url):
    store = open_store(db_url)
    with store.engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    store.close()
    with pytest.raises(StoreError, match="0099_future.*upgrade rrsis"):
        open_store(db_url)
    engine = create_store_engine(resolve_url(db_url))
    with engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0099_future"
    engine.dispose()


def test_bad_paths_and_urls(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "nope" / "x.db")
    with pytest.raises(StoreError, match="folder"):
        open_store(tmp_path)
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="corrupt or not a SQLite"):
        open_store(bad)
    with pytest.raises(StoreError, match="driver"):
        open_store("nosuchdb://x/y")


def test_default_location_and_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RRSIS_DB", raising=False)
    open_store().close()
    assert (tmp_path / "sessions.db").exists()
    monkeypatch.setenv("RRSIS_DB", str(tmp_path / "other.db"))
    s = open_store()
    with s.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    s.close()
    assert (tmp_path / "other.db").exists()
