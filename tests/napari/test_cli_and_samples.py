"""`rrsis napari` launcher, Next image [N] through the queue, the bundled NAIP sample, a real RSAM model."""

from __future__ import annotations

import numpy as np
import pytest
from napari_rrsis.cli import launch, parse_bands
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest
from rrsis_napari_testing import H, W, scene_rgb, write_tif

from rrsis_engine.cli import build_parser
from rrsis_engine.errors import ImageError


def test_cli_parser_has_napari_command():
    args = build_parser().parse_args(["napari", "a.tif", "b.tif", "--model", "rsam-lite", "--db", "x.db",
                                      "--bands", "4,1,2"])
    assert args.images == ["a.tif", "b.tif"] and args.model == "rsam-lite" and args.db == "x.db"
    assert parse_bands(args.bands) == (4, 1, 2) and args.func.__module__ == "napari_rrsis.cli"
    with pytest.raises(ImageError, match="1 or 3 bands"):
        parse_bands("1,2")


@pytest.mark.gui
def test_launch_docks_the_widget_and_next_image_walks_the_queue(
    make_napari_viewer, monkeypatch, fake_predictor, tmp_path, qtbot
):
    import napari

    monkeypatch.setattr(napari, "Viewer", lambda **kw: make_napari_viewer(**kw))
    first = write_tif(tmp_path / "one.tif", np.moveaxis(scene_rgb(), -1, 0))
    second = write_tif(tmp_path / "two.tif", np.moveaxis(scene_rgb()[::-1].copy(), -1, 0))
    viewer, widget = launch([first, second], predictor=fake_predictor, db=str(tmp_path / "s.db"), show=True)
    c = widget.controller
    qtbot.waitUntil(lambda: c.session is not None and not c.busy, timeout=20000)
    assert "RRSIS" in viewer.window._dock_widgets
    assert c.image_layer.name == "one" and widget.next_button.isEnabled()
    c.segment("bright")
    QTest.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key_N)
    qtbot.waitUntil(lambda: c.session is not None and not c.busy and c.image_layer.name == "two", timeout=20000)
    names = [ly.name for ly in viewer.layers]
    assert "one" not in names  # the launcher's own image layer was reused for the next image
    assert names.count("rrsis current object") == 1 and names.count("rrsis clicks (+ green / − red)") == 1
    previous = viewer.layers["rrsis accepted objects · one"]  # kept for saving, hidden
    assert not previous.visible and viewer.layers["rrsis accepted objects"].visible
    assert not c.layers["current"].data.any()
    assert not widget.next_button.isEnabled()
    QTest.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key_N)
    assert "No next image" in c.last_error
    c.close()
    c.store.close()
    from rrsis_engine.store import open_store

    skipped = open_store(str(tmp_path / "s.db")).list_annotations(status="skipped")
    assert len(skipped) == 1 and skipped[0].expressions == ["bright"]


def test_bundled_naip_sample_is_georeferenced():
    from napari_rrsis._sample_data import bundled_naip_paths, naip_sample

    assert bundled_naip_paths(), "rrsis_engine/samples should ship NAIP GeoTIFFs"
    [(data, kwargs, kind)] = naip_sample()
    assert kind == "image" and data.ndim == 3 and data.shape[2] == 3 and data.dtype == np.uint8
    meta = kwargs["metadata"]
    assert meta["crs"] == "EPSG:26914" and meta["band_count"] == 4
    assert meta["transform"][0] == 5.0 and meta["transform"][4] == -5.0
    assert kwargs["scale"] == (-5.0, 5.0)


@pytest.fixture(scope="module")
def tiny_predictor():
    model_mod = pytest.importorskip("rrsis_engine.model")
    from rrsis_engine.predictor import Predictor

    return Predictor(model_mod.build_rsam("rsam-tiny"), device="cpu", disk_cache=False)


@pytest.mark.gui
@pytest.mark.slow
def test_real_rsam_tiny_model_end_to_end(make_napari_viewer, tiny_predictor, geotiff, tmp_path, qtbot):
    """The dock with the real engine (random weights): masks come back in the image frame and get logged."""
    from napari_rrsis._controller import RRSISController

    viewer = make_napari_viewer()
    c = RRSISController(viewer, tiny_predictor, db=str(tmp_path / "s.db"), background=True)
    c.open_image(geotiff)
    qtbot.waitUntil(lambda: c.session is not None and not c.busy, timeout=60000)
    pred = c.segment("the bright square on the upper left")
    assert pred is not None and pred.mask.shape == (H, W)
    assert np.array_equal(c.layers["current"].data > 0, pred.mask)
    second = c.add_point(15.0, 20.0, positive=False)
    assert second is not None and c.session.turns[-1].used_prior
    c.edit_mask(np.pad(np.ones((4, 4), bool), ((10, H - 14), (10, W - 14))))
    new_id = c.accept()
    assert new_id == 1 and (c.accepted_layer.data == 1).sum() == 16
    assert c.flush_log()
    rows = c.store.list_annotations(status="accepted")
    assert len(rows) == 1 and rows[0].expressions == ["the bright square on the upper left"]
    c.close()
    c.store.close()
