"""``rrsis napari [IMAGE ...]``: open napari with the RRSIS dock, the images queued for Next image [N]."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "napari", help="label images in napari with the RRSIS dock (text, clicks, boxes)",
        description="Open napari with the RRSIS dock. IMAGEs (GeoTIFF, PNG, JPEG) are labelled in order; "
                    "Next image [N] moves on. Turns and accepted objects go to the session store.",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="images to label, in order")
    p.add_argument("--model", default=None,
                   help="model name (e.g. rsam-lite) or path to a .safetensors checkpoint (default: the demo model)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1...)")
    p.add_argument("--db", default=None, help="session store: SQLAlchemy URL or SQLite path "
                                                "(default: $RRSIS_DB or ./sessions.db)")
    p.add_argument("--bands", default=None, help="1-based bands shown as R,G,B for multispectral images, e.g. 4,1,2")
    p.add_argument("--annotator", default=None, help="your name or id, stored with each session")
    p.add_argument("--no-log", action="store_true", help="do not log turns to the session store")
    p.set_defaults(func=run)


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    from rrsis_engine.errors import ImageError

    try:
        bands = tuple(int(b) for b in text.replace(" ", "").split(",") if b)
    except ValueError:
        raise ImageError(f"--bands takes 1-based numbers separated by commas (e.g. 4,1,2), not '{text}'.") from None
    if len(bands) not in (1, 3):
        raise ImageError(f"--bands needs 1 or 3 bands (R,G,B), got {len(bands)}.")
    return bands


def launch(images: Sequence[str] = (), *, model=None, device="cpu", db=None, bands=None, annotator=None,
           log_sessions=True, predictor=None, show=True):
    """Create a viewer with the RRSIS dock and start on the first image. Returns (viewer, widget)."""
    import napari

    from napari_rrsis._widget import RRSISWidget

    viewer = napari.Viewer(title="rrsis — referring segmentation", show=show)
    widget = RRSISWidget(viewer, predictor=predictor, model=model, device=device, db=db, annotator=annotator,
                         log_sessions=log_sessions)
    viewer.window.add_dock_widget(widget, name="RRSIS", area="right")
    controller = widget.controller
    controller.bands = bands
    controller.set_queue(images)
    if images:
        controller.next_image()
    return viewer, widget


def run(args: argparse.Namespace) -> int:
    import napari

    viewer, widget = launch(args.images, model=args.model, device=args.device, db=args.db,
                            bands=parse_bands(args.bands), annotator=args.annotator, log_sessions=not args.no_log)
    try:
        napari.run()
    finally:
        widget.controller.close()
    return 0
