"""Fixtures for the web app tests: small NAIP-like images, services with a fake or real predictor."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakePredictor  # noqa: E402
from rrsis_app import state as S  # noqa: E402


def write_geotiff(path: Path, pixels: np.ndarray, origin=(485900.0, 5209247.0), res=5.0) -> Path:
    """An H×W×3 uint8 GeoTIFF in EPSG:26914 (the NAIP tiles' CRS)."""
    import rasterio
    from rasterio.transform import from_origin

    h, w, _ = pixels.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8",
                       crs="EPSG:26914", transform=from_origin(origin[0], origin[1], res, res)) as dst:
        dst.write(np.moveaxis(pixels, -1, 0))
    return path


def scene(h=160, w=200, seed=0) -> np.ndarray:
    """Dark background with two bright blobs (left and right half), H×W×3 uint8."""
    rng = np.random.default_rng(seed)
    img = (rng.random((h, w, 3)) * 40 + 20).astype(np.uint8)
    yy, xx = np.ogrid[:h, :w]
    for cx, cy, r in ((w * 0.25, h * 0.5, h * 0.2), (w * 0.75, h * 0.4, h * 0.15)):
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (200, 190, 170)
    return img


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width×height (RGB) followed by a truncated image stream: what a huge
    upload looks like to a reader that checks the header before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * min(width, 4096)) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


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
