"""napari plugin for rrsis: refine masks by text, then clicks (npe2 manifest: ``napari.yaml``).

Thin Qt widgets (:mod:`napari_rrsis._widget`) over a controller (:mod:`napari_rrsis._controller`) that is
usable from Python; a GeoTIFF reader, GeoJSON/GeoTIFF writers and a NAIP sample tile.
"""

from __future__ import annotations

__all__ = ["RRSISController", "RRSISWidget"]


def __getattr__(name: str):  # lazy: importing the package must not import Qt (npe2 reads the manifest)
    if name == "RRSISController":
        from napari_rrsis._controller import RRSISController

        return RRSISController
    if name == "RRSISWidget":
        from napari_rrsis._widget import RRSISWidget

        return RRSISWidget
    raise AttributeError(name)
