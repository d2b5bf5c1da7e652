"""Render screenshots of the RRSIS dock in use (run under Xvfb): ``python -m napari_rrsis._screenshots DIR``.

Opens the bundled NAIP tile, plays a short labelling session through the controller (the function twins of
the dock's buttons) and saves the whole napari window: ``napari-dock.png`` (text turn, negative click
(undone when it wiped the mask), an accepted object, a positive click, candidates and the suggested click) and
``napari-uncertainty.png`` (the uncertainty layer shown) and ``napari-candidates.png`` ("a lake": the look-alikes
outlined and numbered). ``--model`` picks the model as ``rrsis napari --model`` does; ``--random-tiny``
uses an untrained rsam-tiny (UI demo only: its masks are meaningless, and the dock says which model ran).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _save(viewer, path: Path) -> None:
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(path)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNGs (e.g. docs)")
    parser.add_argument("--model", default=None, help="model name or checkpoint path (default: the demo model)")
    parser.add_argument("--random-tiny", action="store_true", help="use an untrained rsam-tiny (UI demo only)")
    parser.add_argument("--image", default=None, help="GeoTIFF to use (default: the bundled NAIP lakes tile)")
    args = parser.parse_args(argv)

    import napari
    import napari._qt.qt_main_window as qt_main_window
    from qtpy.QtWidgets import QApplication

    qt_main_window.SHOW_QT_WARNING = False  # the one-off PyQt5 deprecation toast would cover the canvas

    from napari_rrsis._sample_data import DEFAULT_SAMPLE, bundled_naip_paths
    from napari_rrsis._widget import RRSISWidget

    predictor = None
    if args.random_tiny:
        import torch

        from rrsis_engine.model import build_rsam
        from rrsis_engine.predictor import Predictor

        torch.manual_seed(0)
        predictor = Predictor(build_rsam("rsam-tiny"), device="cpu", disk_cache=False)
        predictor.model_name = "rsam-tiny, UNTRAINED (UI demo: masks are meaningless)"
    image = args.image or str(next(p for p in bundled_naip_paths() if p.name == DEFAULT_SAMPLE))
    args.out.mkdir(parents=True, exist_ok=True)

    viewer = napari.Viewer(title="rrsis — referring segmentation", show=True)
    viewer.window._qt_window.resize(1500, 940)
    widget = RRSISWidget(viewer, predictor=predictor, model=args.model, log_sessions=False, background=False)
    viewer.window.add_dock_widget(widget, name="RRSIS", area="right")
    c = widget.controller
    c.open_image(image)
    if c.session is None:
        print(f"no session: {c.last_error}", file=sys.stderr)
        return 2
    viewer.reset_view()
    h, w = c.image.height, c.image.width
    widget.expression_edit.setText("the largest lake")
    first = c.segment()
    if first is not None and first.mask.any():  # a negative click inside the mask, away from its centre
        import numpy as np

        rows, cols = np.nonzero(first.mask)
        i = int(np.argmax(cols))
        c.toggle_polarity()
        after = c.add_point(float(cols[i]) - 2, float(rows[i]))
        c.toggle_polarity()
        if after is not None and after.mask.sum() < 0.1 * first.mask.sum():  # it wiped the mask: the labeler undoes it
            c.undo()
    c.accept()
    widget.expression_edit.setText("the small pond near the road")
    c.segment()
    c.add_point(w * 0.3, h * 0.62)
    viewer.layers.selection.active = c.layers["points"]
    QApplication.processEvents()
    _save(viewer, args.out / "napari-dock.png")
    c.layers["uncertainty"].visible = True
    c.layers["current"].visible = False
    viewer.layers.selection.active = c.layers["uncertainty"]
    _save(viewer, args.out / "napari-uncertainty.png")
    # an ambiguous sentence: its look-alikes outlined and numbered (typing a number keeps that one)
    c.layers["uncertainty"].visible = False
    c.layers["current"].visible = True
    c.accept()
    widget.expression_edit.setText("a lake")
    c.segment()
    viewer.layers.selection.active = c.layers["points"]
    _save(viewer, args.out / "napari-candidates.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
