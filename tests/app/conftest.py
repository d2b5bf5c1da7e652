"""Fixtures for the web app tests: small NAIP-like images, services with a fake or real predictor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rrsis_app import state as S  # noqa: E402
from rrsis_app_testing import FakePredictor, scene, write_geotiff  # noqa: E402


@pytest.fixture
def sample_dir(tmp_path) -> Path:
    d = tmp_path / "samples"
    d.mkdir()
    write_geotiff(d / "scene_a.tif", scene(seed=1))
    write_geotiff(d / "scene_b.tif", scene(seed=2)[:, ::-1].copy())
    return d


@pytest.fixture
def services(tmp_path, sample_dir) -> S.Services:
    sv = S.Services(FakePredictor(), workdir=tmp_path / "work")
    sv.samples = S.discover_samples(sample_dir, sv.workdir / "thumbs")
    return sv
