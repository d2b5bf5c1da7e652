"""Fixtures of the store tests: a database URL for each backend (a SQLite file, and a fresh database on
a REAL PostgreSQL server started here with initdb/pg_ctl, run as the unprivileged `postgres` user when
we are root), plus a fake predictor that drives a real RefinementSession without the model."""

from __future__ import annotations

import uuid

import fake_predictor
import numpy as np
import pytest

from rrsis_engine.imageio import RasterImage
from rrsis_engine.prediction import Prediction
from rrsis_engine.store.pgtemp import TemporaryPostgres, find_pg_bin


@pytest.fixture(scope="session")
def pg_server():
    if find_pg_bin() is None:
        pytest.skip("no PostgreSQL server binaries (pg_ctl in /usr/lib/postgresql/*/bin); run scripts/setup-system.sh")
    with TemporaryPostgres() as pg:
        yield pg


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "sessions.db")
        return
    pg = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:12]
    url = pg.create_database(name)
    yield url
    pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def blob(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """H×W bool disc centred at (x=cx, y=cy)."""
    return fake_predictor.disk(h, w, cx, cy, r)


def make_prediction(mask: np.ndarray, iou: float = 0.9, quality: float | None = None) -> Prediction:
    return fake_predictor.fake_prediction(mask, low_res=False, iou_score=iou, object_score=0.95, latency_ms=3.0,
                                          ambiguity=0.1, quality=quality)


class FakePredictor(fake_predictor.FakePredictor):
    """Masks are discs around the last click (the box's centre, or the image's), growing with the clicks, whose
    estimated quality falls with them."""

    def answer(self, image, text, points, labels, box):
        h, w = image.height, image.width
        if points is not None and len(points):
            cx, cy = points[-1]
        elif box is not None:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        else:
            cx, cy = w / 2, h / 2
        n_points = 0 if points is None else len(points)
        return make_prediction(blob(h, w, cx, cy, 6 + 2 * n_points), quality=1.0 - 0.01 * n_points)

    def prediction_from_mask(self, mask, image=None):
        return make_prediction(np.asarray(mask, bool), iou=1.0)


@pytest.fixture
def image(tmp_path):
    """A 64×80 RGB image with a file path and a UTM transform (0.5 m pixels)."""
    rng = np.random.default_rng(0)
    px = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    from PIL import Image

    Image.fromarray(px).save(path)
    return RasterImage(px, crs="EPSG:32614", transform=(0.5, 0.0, 500000.0, 0.0, -0.5, 4100000.0), path=str(path))


@pytest.fixture
def predictor():
    return FakePredictor()
