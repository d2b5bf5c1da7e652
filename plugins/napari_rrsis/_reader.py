"""GeoTIFF reader: an RGB image layer placed at its map position, CRS and transform kept in metadata.

Layer data is the H×W×3 uint8 RGB composite the model sees (bands chosen 1-based, default 1, 2, 3;
non-uint8 rasters contrast-stretched 2–98 % per band, see :func:`rrsis_engine.imageio.to_rgb_uint8`).
``layer.metadata`` holds ``crs`` (string or None), ``transform`` (pixel-corner affine a..f or None),
``path``, ``bands``, ``band_count`` and ``source_dtype``; scale/translate (or affine) put pixel centres at
their map coordinates (see :mod:`napari_rrsis._geo`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_info, show_warning

from napari_rrsis._geo import layer_kwargs, orient_viewer
from rrsis_engine.imageio import RasterImage, read_image

GEOTIFF_SUFFIXES = (".tif", ".tiff", ".gtiff")

LayerData = tuple[Any, dict[str, Any], str]


def napari_get_reader(path: str | Sequence[str]) -> Callable[[Any], list[LayerData]] | None:
    """npe2 reader contribution: a reader function for (lists of) GeoTIFF paths, else None."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(str(p).lower().endswith(GEOTIFF_SUFFIXES) for p in paths):
        return None
    return read_geotiff_layers


def read_geotiff_layers(path: str | Sequence[str], bands: Sequence[int] | None = None) -> list[LayerData]:
    """Read one or more GeoTIFFs into napari image LayerData tuples (one per file)."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    out = []
    for p in paths:
        image = read_image(str(p), bands=tuple(bands) if bands else None)
        notify_image_conversion(image)
        out.append(image_layer_data(image))
        try:
            import napari

            orient_viewer(napari.current_viewer(), image.transform)
        except Exception:  # no viewer yet (reading from a script): nothing to orient
            pass
    return out


def image_layer_data(image: RasterImage, name: str | None = None) -> LayerData:
    """LayerData for a :class:`RasterImage`: RGB pixels, geo metadata and the map placement."""
    metadata = {
        "crs": image.crs,
        "transform": list(image.transform) if image.transform is not None else None,
        "path": image.path,
        "bands": list(image.bands),
        "band_count": image.band_count,
        "source_dtype": image.source_dtype,
    }
    kwargs: dict[str, Any] = {
        "name": name or (Path(image.path).stem if image.path else "image"),
        "rgb": True,
        "metadata": metadata,
    }
    kwargs.update(layer_kwargs(image.transform))
    return image.pixels, kwargs, "image"


def notify_image_conversion(image: RasterImage) -> None:
    """Tell the user what was done to show a multispectral / non-uint8 / non-georeferenced image."""
    name = Path(image.path).name if image.path else "The image"
    if image.band_count > 3 or image.source_dtype != "uint8":
        bands = ", ".join(str(b) for b in image.bands)
        stretched = ", contrast-stretched 2–98 % per band" if image.source_dtype != "uint8" else ""
        show_info(
            f"{name} has {image.band_count} band(s) of {image.source_dtype}: showing bands {bands} as RGB"
            f"{stretched}. Choose other bands (e.g. 4,1,2 for false colour) in the RRSIS dock's Bands box."
        )
    if image.crs is None or image.transform is None:
        show_warning(
            f"{name} has no CRS or geotransform: it stays in pixel coordinates and GeoJSON exports will "
            "use pixel (col, row) coordinates. Use a georeferenced GeoTIFF to export map coordinates."
        )
