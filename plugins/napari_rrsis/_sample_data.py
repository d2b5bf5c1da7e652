"""Sample data: a real NAIP aerial crop shipped in ``rrsis_engine/samples`` (USDA public domain).

Returns napari LayerData (see :func:`napari_rrsis._reader.image_layer_data`), placed in map coordinates
with CRS and transform in the layer metadata.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rrsis_engine.errors import ImageError

DEFAULT_SAMPLE = "naip_2020_lakes.tif"  # 512×512, 4 bands, EPSG:26914: lakes, fields and roads


def bundled_naip_paths() -> list[Path]:
    """The NAIP GeoTIFFs bundled with the engine, sorted by name (newest date last)."""
    try:
        root = resources.files("rrsis_engine") / "samples"
    except ModuleNotFoundError:  # pragma: no cover - the engine is a hard dependency
        return []
    if not root.is_dir():
        return []
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.lower().endswith((".tif", ".tiff")))


def naip_sample():
    """npe2 sample_data contribution: the bundled 2020 NAIP lakes tile as an RGB image layer."""
    from napari_rrsis._reader import read_geotiff_layers

    paths = bundled_naip_paths()
    if not paths:
        raise ImageError("No NAIP sample is bundled in rrsis_engine/samples; reinstall rrsis or open your own "
                         "GeoTIFF with File > Open.")
    preferred = [p for p in paths if p.name == DEFAULT_SAMPLE]
    return read_geotiff_layers(str((preferred or paths)[-1]))
