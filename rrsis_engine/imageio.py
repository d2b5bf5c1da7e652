"""Reading images into the RGB uint8 arrays the model sees, keeping geo metadata.

Coordinate frames: arrays are H×W×C, indexed ``[row, col]``; prompts everywhere in rrsis are (x, y) =
(col, row) pixel coordinates of the full-resolution image. ``transform`` is the GDAL/rasterio affine
(a, b, c, d, e, f) mapping pixel (col, row) to map (x, y): ``x = a*col + b*row + c``,
``y = d*col + e*row + f``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rrsis_engine.errors import ImageError, ImageTooLargeError

#: Default pixel limit (width × height). 8 192² fits comfortably in memory; larger rasters should be tiled.
MAX_IMAGE_PIXELS = int(os.environ.get("RRSIS_MAX_IMAGE_PIXELS", 8192 * 8192))

_GEOTIFF_SUFFIXES = {".tif", ".tiff", ".gtiff"}


@dataclass
class RasterImage:
    """An image ready for the model plus where it came from.

    pixels: H×W×3 uint8 RGB (display and model input).
    crs: CRS as WKT/EPSG string, or None for plain images.
    transform: affine (a, b, c, d, e, f) pixel (col, row) → map (x, y), or None.
    """

    pixels: np.ndarray
    crs: str | None = None
    transform: tuple[float, float, float, float, float, float] | None = None
    path: str | None = None
    band_count: int = 3
    source_dtype: str = "uint8"
    bands: tuple[int, ...] = (1, 2, 3)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def content_hash(self) -> str:
        """sha256 of the RGB pixels and shape (stable across file formats)."""
        return pixel_hash(self.pixels)


def pixel_hash(pixels: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


def _check_size(height: int, width: int, max_pixels: int) -> None:
    if height <= 0 or width <= 0:
        raise ImageError(f"The image is empty ({width}×{height} pixels). Choose an image with content.")
    if height * width > max_pixels:
        raise ImageTooLargeError(
            f"The image is {width}×{height} = {height * width / 1e6:.0f} M pixels, more than the limit of "
            f"{max_pixels / 1e6:.0f} M. Crop or tile it (e.g. gdal_translate -srcwin) or downsample it first, "
            "or raise RRSIS_MAX_IMAGE_PIXELS if you have the memory."
        )


def to_rgb_uint8(array: np.ndarray, bands: tuple[int, ...] | None = None) -> np.ndarray:
    """Convert grey / RGB / RGBA / multiband arrays of any numeric dtype to H×W×3 uint8.

    array: H×W, H×W×C (channels last). bands: 1-based band indices to use as R, G, B when C > 3
    (default the first three). uint8 is kept as is; other dtypes are stretched per band between the
    2nd and 98th percentile (NaN treated as 0).
    """
    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if not np.issubdtype(arr.dtype, np.number):
        raise ImageError(f"Unsupported pixel type {arr.dtype}; expected numbers (uint8, uint16 or float).")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ImageError(f"Expected an H×W or H×W×C image array, got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ImageError(f"The image is empty (shape {arr.shape}).")
    channels = arr.shape[2]
    if bands is not None:
        if any(b < 1 or b > channels for b in bands):
            raise ImageError(f"Band selection {bands} is out of range: the image has {channels} bands (1-based).")
        arr = arr[:, :, [b - 1 for b in bands]]
    elif channels == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif channels == 2:  # grey + alpha
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    else:  # RGB, RGBA (alpha dropped), multiband (first three)
        arr = arr[:, :, :3]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.shape[2] != 3:
        raise ImageError(f"Select 1 or 3 bands to display, got {arr.shape[2]}.")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    out = np.empty(arr.shape, dtype=np.uint8)
    for c in range(3):
        band = np.nan_to_num(arr[:, :, c].astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = np.percentile(band, (2, 98))
        if hi <= lo:
            lo, hi = float(band.min()), float(band.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        out[:, :, c] = np.clip((band - lo) * scale, 0, 255).astype(np.uint8)
    return out


def read_image(
    source: Any,
    bands: tuple[int, ...] | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> RasterImage:
    """Read a file path, PIL image, numpy array or :class:`RasterImage` into a :class:`RasterImage`.

    Files: PNG/JPEG/anything PIL reads; TIFF/GeoTIFF through rasterio (CRS and transform kept, 1-based
    ``bands`` selects R, G, B for multispectral rasters; default the first three).
    """
    if isinstance(source, RasterImage):
        return source
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_size(source.shape[0], source.shape[1], max_pixels)
        pixels = to_rgb_uint8(source, bands)
        channels = 1 if source.ndim == 2 else source.shape[2]
        return RasterImage(pixels, band_count=channels, source_dtype=str(source.dtype))
    try:
        from PIL import Image as PILImage

        if isinstance(source, PILImage.Image):
            _check_size(source.height, source.width, max_pixels)
            return read_image(np.asarray(source.convert("RGB")), bands, max_pixels)
    except ImportError:  # pragma: no cover - pillow is a hard dependency
        pass
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source), bands, max_pixels)
    raise ImageError(
        f"Cannot read an image from {type(source).__name__}; pass a file path, a numpy array or a PIL image."
    )


def _read_file(path: Path, bands: tuple[int, ...] | None, max_pixels: int) -> RasterImage:
    if not path.exists():
        raise ImageError(f"Image file not found: {path}. Check the path.")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image file.")
    if path.stat().st_size == 0:
        raise ImageError(f"Image file {path} is empty (0 bytes).")
    if path.suffix.lower() in _GEOTIFF_SUFFIXES:
        return _read_raster(path, bands, max_pixels)
    from PIL import Image as PILImage

    previous = PILImage.MAX_IMAGE_PIXELS
    PILImage.MAX_IMAGE_PIXELS = None  # our own limit (_check_size on the header) applies instead
    try:
        with PILImage.open(path) as im:
            _check_size(im.height, im.width, max_pixels)
            if im.mode in ("I;16", "I;16B", "I", "F"):
                array = np.asarray(im)
            else:
                array = np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
    except ImageError:
        raise
    except Exception as exc:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError...)
        # Fall back to rasterio for formats PIL does not know (e.g. JPEG2000, ENVI).
        try:
            return _read_raster(path, bands, max_pixels)
        except ImageError:
            pass
        raise ImageError(
            f"Cannot read {path.name} as an image ({exc.__class__.__name__}: {exc}). "
            "Use PNG, JPEG or (Geo)TIFF."
        ) from None
    finally:
        PILImage.MAX_IMAGE_PIXELS = previous
    image = read_image(array, bands, max_pixels)
    image.path = str(path)
    return image


def _read_raster(path: Path, bands: tuple[int, ...] | None, max_pixels: int) -> RasterImage:
    try:
        import rasterio
        from rasterio.errors import RasterioIOError
    except ImportError as exc:  # pragma: no cover
        raise ImageError("Reading GeoTIFF needs rasterio: pip install rasterio") from exc
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning for plain TIFFs
            with rasterio.open(path) as src:
                _check_size(src.height, src.width, max_pixels)
                count = src.count
                chosen = tuple(bands) if bands is not None else ((1, 2, 3) if count >= 3 else (1,))
                if any(b < 1 or b > count for b in chosen):
                    raise ImageError(
                        f"Band selection {chosen} is out of range: {path.name} has {count} bands (1-based)."
                    )
                data = src.read(list(chosen))  # C×H×W
                crs = src.crs.to_string() if src.crs else None
                t = src.transform
                georef = src.crs is not None or not t.is_identity
                transform = (t.a, t.b, t.c, t.d, t.e, t.f) if georef else None
                dtype = str(src.dtypes[0])
    except ImageError:
        raise
    except RasterioIOError as exc:
        raise ImageError(f"Cannot read {path.name} as a raster ({exc}). Use PNG, JPEG or (Geo)TIFF.") from None
    pixels = to_rgb_uint8(np.moveaxis(data, 0, -1))
    return RasterImage(
        pixels, crs=crs, transform=transform, path=str(path), band_count=count, source_dtype=dtype,
        bands=chosen,
    )


def pixel_to_map(transform, cols, rows):
    """Map pixel (col, row) coordinates to map (x, y) with an affine (a, b, c, d, e, f)."""
    a, b, c, d, e, f = transform
    cols = np.asarray(cols, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.float64)
    return a * cols + b * rows + c, d * cols + e * rows + f
