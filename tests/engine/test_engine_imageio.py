import numpy as np
import pytest
from PIL import Image

from rrsis_engine.errors import ImageError, ImageTooLargeError
from rrsis_engine.imageio import pixel_to_map, read_image, to_rgb_uint8


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((10, 12), np.uint8),
        np.zeros((10, 12, 3), np.uint8),
        np.zeros((10, 12, 4), np.uint8),
        np.arange(120, dtype=np.uint16).reshape(10, 12),
        np.random.default_rng(0).random((10, 12, 3)).astype(np.float32),
        np.zeros((10, 12, 6), np.float64),
    ],
)
def test_arrays_of_any_kind_become_rgb_uint8(array):
    img = read_image(array)
    assert img.pixels.shape == (10, 12, 3) and img.pixels.dtype == np.uint8


def test_uint16_is_stretched_not_truncated():
    arr = np.linspace(0, 4000, 100, dtype=np.uint16).reshape(10, 10)
    out = to_rgb_uint8(arr)
    assert out.min() == 0 and out.max() == 255


def test_png_and_pil(tmp_path, rgb_image):
    p = tmp_path / "a.png"
    Image.fromarray(rgb_image).save(p)
    assert np.array_equal(read_image(p).pixels, rgb_image)
    assert np.array_equal(read_image(Image.fromarray(rgb_image)).pixels, rgb_image)


def test_geotiff_keeps_crs_transform_and_selects_bands(geotiff):
    img = read_image(geotiff)
    assert img.crs == "EPSG:32633"
    assert img.transform == (2.0, 0.0, 500000.0, 0.0, -2.0, 4100000.0)
    assert img.band_count == 4 and img.bands == (1, 2, 3) and img.source_dtype == "uint16"
    nir = read_image(geotiff, bands=(4, 3, 2))
    assert nir.bands == (4, 3, 2) and not np.array_equal(nir.pixels, img.pixels)
    x, y = pixel_to_map(img.transform, 10, 5)
    assert (x, y) == (500020.0, 4099990.0)
    with pytest.raises(ImageError, match="has 4 bands"):
        read_image(geotiff, bands=(1, 2, 9))


@pytest.mark.parametrize("content", [b"", b"this is not an image"])
def test_unreadable_files_get_clear_errors(tmp_path, content):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageError, match="bad.png"):
        read_image(p)


def test_missing_and_huge(tmp_path, rgb_image):
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageTooLargeError, match="Crop or tile"):
        read_image(rgb_image, max_pixels=100)
    p = tmp_path / "big.png"
    Image.fromarray(rgb_image).save(p)
    with pytest.raises(ImageTooLargeError):
        read_image(p, max_pixels=100)
    with pytest.raises(ImageError, match="empty"):
        read_image(np.zeros((0, 5, 3), np.uint8))


def test_a_decompression_bomb_sized_png_gets_our_size_message(tmp_path):
    """A 20 000×20 000 PNG (tiny on disk) is refused from its header with our message, not PIL's."""
    import zlib

    w = h = 20_000
    p = tmp_path / "huge.png"

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])  # 1-bit grey
    row = b"\x00" + bytes((w + 7) // 8)
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * h))
                  + chunk(b"IEND", b""))
    with pytest.raises(ImageTooLargeError, match="20000×20000"):
        read_image(p)
