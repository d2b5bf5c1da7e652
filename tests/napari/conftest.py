"""Fixtures for the napari plugin tests (helpers in rrsis_napari_testing.py)."""

from __future__ import annotations

import pytest
from rrsis_napari_testing import FakePredictor, geotiff, geotiff_4band_uint16, tif_without_crs  # noqa: F401 (fixtures)


@pytest.fixture
def fake_predictor():
    return FakePredictor()
