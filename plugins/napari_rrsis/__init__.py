"""napari plugin for rrsis: refine masks by text, then clicks (npe2 manifest: ``napari.yaml``).

Thin Qt widgets (:mod:`napari_rrsis._widget`) over a controller (:mod:`napari_rrsis._controller`) that is
usable from Python; a GeoTIFF reader, GeoJSON/GeoTIFF writers and a NAIP sample tile.
"""

from __future__ import annotations

import os
import sys

__all__ = ["RRSISController", "RRSISWidget"]


def __getattr__(name: str):  # lazy: importing the package must not import Qt (npe2 reads the manifest)
    if name == "RRSISController":
        from napari_rrsis._controller import RRSISController

        return RRSISController
    if name == "RRSISWidget":
        from napari_rrsis._widget import RRSISWidget

        return RRSISWidget
    raise AttributeError(name)


def keep_triton_out() -> None:
    """Hide Triton from this (napari) process unless it is already loaded or RRSIS_ALLOW_TRITON=1.

    Called when the controller module is imported, i.e. only in processes that show a napari viewer.

    Mesa's software OpenGL (llvmpipe: Xvfb, VMs, remote desktops) and Triton each bring their own LLVM;
    importing Triton (which transformers and torch do lazily) after napari has created its GL context
    segfaults the process. Inference never needs Triton (no torch.compile), and torch/transformers treat
    a ``None`` entry in sys.modules as "not installed".
    """
    if "triton" not in sys.modules and os.environ.get("RRSIS_ALLOW_TRITON", "") != "1":
        sys.modules["triton"] = None  # type: ignore[assignment]

