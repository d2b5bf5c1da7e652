"""The RRSIS dock in a real napari viewer (Xvfb): keys, layers, undo, accept + session store, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import ErrorNotification, notification_manager
from napari_rrsis._controller import LAYER_NAMES, RRSISController
from napari_rrsis._widget import RRSISWidget
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest
from rrsis_napari_testing import CRS, SQUARE_A, SQUARE_B, TRANSFORM

pytestmark = pytest.mark.gui


@pytest.fixture
def dock(make_napari_viewer, fake_predictor, tmp_path):
    viewer = make_napari_viewer(show=True)
    widget = RRSISWidget(viewer, predictor=fake_predictor, db=str(tmp_path / "sessions.db"))
    viewer.window.add_dock_widget(widget, name="RRSIS", area="right")
    yield viewer, widget, widget.controller
    widget.controller.close()
    if widget.controller.store is not None:
        widget.controller.store.close()


def press(viewer, key, modifier=Qt.NoModifier):
    """Press a key on the canvas, as a user does with the mouse over the image."""
    QTest.keyClick(viewer.window._qt_viewer.canvas.native, key, modifier)


def messages_since(n):
    return [str(r.message) for r in notification_manager.records[n:]]


def open_and_wait(controller, qtbot, path):
    controller.open_image(path)
    qtbot.waitUntil(lambda: not controller.busy and controller.session is not None, timeout=20000)


def test_open_geotiff_keeps_transform_and_orients_north_up(dock, qtbot, geotiff):
    viewer, widget, c = dock
    layer = viewer.open(geotiff, plugin="rrsis")[0]
    assert layer.metadata["crs"] == CRS and tuple(layer.metadata["transform"]) == TRANSFORM
    a, _, x0, _, e, y0 = TRANSFORM
    assert np.allclose(layer.data_to_world((0, 0)), (y0 + e / 2, x0 + a / 2))
    # the dock adopts an image opened with File > Open and builds its layers in the same frame
    qtbot.waitUntil(lambda: c.session is not None and not c.busy, timeout=20000)
    assert c.image_layer is layer and c.image.transform == TRANSFORM
    assert np.allclose(c.layers["current"].scale, layer.scale)
    assert np.allclose(c.layers["points"].translate, layer.translate)
    assert viewer.camera.orientation2d[0] == "up"  # north on top


def test_text_then_negative_click_then_undo_redo_with_keys(dock, qtbot, geotiff):
    viewer, widget, c = dock
    open_and_wait(c, qtbot, geotiff)
    current = c.layers["current"]
    assert widget.segment_button.text() == "Segment [S]"
    qtbot.keyClicks(widget.expression_edit, "the bright roofs")
    press(viewer, Qt.Key_S)
    bright = np.zeros(current.data.shape, bool)
    bright[SQUARE_A] = bright[SQUARE_B] = True
    assert np.array_equal(current.data > 0, bright)
    # ambiguous: two candidates outlined and a suggested click in the first one
    assert set(np.unique(c.layers["candidates"].data)) == {0, 1, 2} and len(c.layers["candidate_numbers"].data) == 2
    assert len(c.layers["suggestion"].data) == 1
    assert "ambiguous" in widget.history.toPlainText()
    assert "a + click there keeps it alone" in widget.history.toPlainText()  # the suggestion asks "is it this one?"
    # T then a click on the prompts layer (what napari does in add mode) = a negative click turn
    press(viewer, Qt.Key_T)
    assert c.positive is False and "negative" in widget.toggle_button.text()
    before = current.data.copy()
    c.layers["points"].add([45.0, 55.0])  # (row, col) inside square B
    assert (current.data > 0).sum() < (before > 0).sum()
    assert not (current.data > 0)[45, 55]
    assert list(c.session.state.labels) == [0] and c.session.state.points == ((55.0, 45.0),)
    assert len(c.layers["points"].data) == 1
    press(viewer, Qt.Key_Z)  # undo: back to the text-only mask and no clicks shown
    assert np.array_equal(current.data, before) and len(c.layers["points"].data) == 0
    press(viewer, Qt.Key_Z, Qt.ShiftModifier)  # redo
    assert not (current.data > 0)[45, 55] and len(c.layers["points"].data) == 1


def test_typing_a_candidates_number_keeps_it_alone(dock, qtbot, geotiff):
    """The conversation names each outlined candidate's number and colour; typing the number in the expression box
    (S) keeps that region alone, the outlines go, and undo brings them back."""
    viewer, widget, c = dock
    open_and_wait(c, qtbot, geotiff)
    qtbot.keyClicks(widget.expression_edit, "the bright roofs")
    press(viewer, Qt.Key_S)
    assert "(1 yellow, 2 orange)" in widget.history.toPlainText()
    second = c.layers["candidates"].data == 2
    assert second.any()
    # the numbers are drawn on the canvas, each inside its region, ringed in its outline colour
    numbers = c.layers["candidate_numbers"]
    assert list(numbers.features["number"]) == [1, 2] and list(numbers.text.values) == ["1", "2"]
    for (row, col), n in zip(numbers.data, (1, 2), strict=True):
        assert c.layers["candidates"].data[int(round(row)), int(round(col))] == n
    widget.expression_edit.clear()
    qtbot.keyClicks(widget.expression_edit, "2")
    press(viewer, Qt.Key_S)
    assert np.array_equal(c.layers["current"].data > 0, second) and not c.layers["candidates"].data.any()
    assert len(c.layers["candidate_numbers"].data) == 0
    assert "kept candidate 2 alone" in widget.history.toPlainText()
    assert c.session.turns[-1].kind == "pick" and c.session.state.text == "the bright roofs"
    press(viewer, Qt.Key_Z)
    assert set(np.unique(c.layers["candidates"].data)) == {0, 1, 2} and len(c.layers["candidate_numbers"].data) == 2


def test_keys_work_with_a_prompt_layer_selected(dock, qtbot, geotiff):
    """napari#7302: layer key bindings shadow the viewer's, so the keys are bound on our layers too."""
    viewer, widget, c = dock
    open_and_wait(c, qtbot, geotiff)
    c.expression = "bright"
    for name in ("points", "box", "current"):
        viewer.layers.selection.active = c.layers[name]
        n = len(c.session.turns)
        press(viewer, Qt.Key_S)
        assert len(c.session.turns) == n + 1, name


def test_accept_adds_a_new_label_and_a_database_row(dock, qtbot, geotiff, tmp_path):
    viewer, widget, c = dock
    open_and_wait(c, qtbot, geotiff)
    c.add_point(15.0, 20.0)  # positive click on square A only
    mask_a = c.layers["current"].data > 0
    assert mask_a[SQUARE_A].all() and not mask_a[SQUARE_B].any()
    press(viewer, Qt.Key_A)
    accepted = c.accepted_layer
    assert set(np.unique(accepted.data)) == {0, 1} and np.array_equal(accepted.data == 1, mask_a)
    assert not c.layers["current"].data.any() and len(c.layers["points"].data) == 0
    c.segment("the small bright square")
    c.set_box(48.0, 38.0, 64.0, 54.0)  # x0, y0, x1, y1 around square B
    press(viewer, Qt.Key_C)  # C accepts too
    assert set(np.unique(accepted.data)) == {0, 1, 2}
    assert accepted.metadata["objects"]["2"]["expression"] == "the small bright square"
    assert accepted.metadata["objects"]["2"]["model_version"] == "fake-1"
    assert c.flush_log()
    from rrsis_engine.store import open_store

    rows = open_store(str(tmp_path / "sessions.db")).list_annotations(status="accepted")
    assert len(rows) == 2
    by_expr = {tuple(r.expressions): r for r in rows}
    assert np.array_equal(by_expr[("the small bright square",)].mask, accepted.data == 2)
    # export of the accepted layer: GeoJSON in the image CRS
    out = c.export(tmp_path / "objects.geojson")
    assert out and (tmp_path / "objects.geojson").exists()


def test_bad_input_gives_notifications_not_tracebacks(
    dock, qtbot, geotiff_4band_uint16, tif_without_crs, tmp_path
):
    viewer, widget, c = dock
    n0 = len(notification_manager.records)
    # an expression before any image
    qtbot.keyClicks(widget.expression_edit, "the lake")
    press(viewer, Qt.Key_S)
    assert c.last_error and "No image is loaded yet" in c.last_error
    # a 4-band uint16 image: shown as stretched RGB with a note on the bands
    open_and_wait(c, qtbot, geotiff_4band_uint16)
    assert c.image_layer.data.dtype == np.uint8 and c.image.source_dtype == "uint16"
    assert any("4 band(s) of uint16" in m for m in messages_since(n0))
    widget.bands_edit.setText("4,1,2")
    QTest.keyClick(widget.bands_edit, Qt.Key_Return)
    qtbot.waitUntil(lambda: not c.busy and c.session is not None, timeout=20000)
    assert c.image.bands == (4, 1, 2)
    # an image without CRS
    n1 = len(notification_manager.records)
    open_and_wait(c, qtbot, tif_without_crs)
    assert any("no CRS" in m for m in messages_since(n1))
    # S with no prompt
    widget.expression_edit.clear()
    press(viewer, Qt.Key_S)
    assert "Nothing to segment yet" in c.last_error
    # Z/accept with nothing to undo/accept, a click outside the image
    press(viewer, Qt.Key_Z)
    assert "Nothing to undo" in c.last_error
    press(viewer, Qt.Key_A)
    assert "Nothing to accept" in c.last_error
    assert c.add_point(500.0, 5.0) is None and "is outside the 80×64 image" in c.last_error
    records = notification_manager.records[n0:]
    assert records and not any(isinstance(r, ErrorNotification) for r in records)  # no traceback anywhere
    assert "Nothing to segment yet" in widget.history.toPlainText()


def test_missing_weights_become_a_notification(make_napari_viewer, qtbot, geotiff, monkeypatch):
    from rrsis_engine.errors import NoTrainedWeightsError

    def no_weights(model=None, device="cpu"):
        raise NoTrainedWeightsError("No trained weights for rsam-lite: run `rrsis train` first.")

    import rrsis_engine

    predictor_mod = pytest.importorskip("rrsis_engine.predictor")
    monkeypatch.setattr(predictor_mod, "load_predictor", no_weights)
    viewer = make_napari_viewer()
    c = RRSISController(viewer, model="rsam-lite", log_sessions=False, background=True)
    c.open_image(geotiff)
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    assert c.session is None and "rrsis train" in c.last_error
    assert rrsis_engine  # imported for the monkeypatch target's package


def test_layer_names_and_uncertainty_hidden(dock, qtbot, geotiff):
    viewer, widget, c = dock
    open_and_wait(c, qtbot, geotiff)
    names = [ly.name for ly in viewer.layers]
    for role in ("points", "box", "current", "uncertainty", "candidates", "candidate_numbers", "suggestion"):
        assert LAYER_NAMES[role] in names
    assert c.layers["uncertainty"].visible is False
    pred = c.segment("bright")
    assert c.layers["uncertainty"].data.max() == 0  # filled only when shown (saves an upload per turn)
    c.layers["uncertainty"].visible = True
    assert np.array_equal(c.layers["uncertainty"].data, pred.uncertainty)
    c.undo()  # while shown it follows the turns
    assert c.layers["uncertainty"].data.max() == 0


def test_box_drawn_and_brush_paint_become_turns(dock, qtbot, geotiff):
    viewer, widget, c = dock
    open_and_wait(c, qtbot, geotiff)
    c.segment("bright")
    # a rectangle drawn on the box layer (what the rectangle tool does) keeps only square B
    c.layers["box"].add_rectangles(np.array([[38.0, 48.0], [54.0, 64.0]]))  # (row, col) corners
    assert c.session.turns[-1].kind == "box" and c.session.state.box == (48.0, 38.0, 64.0, 54.0)
    mask = c.layers["current"].data > 0
    assert mask[SQUARE_B].all() and not mask[SQUARE_A].any()
    assert len(c.layers["box"].data) == 1
    # a brush stroke on the current-object layer is an edit turn whose mask becomes the prior
    c.layers["current"].paint((5, 5), 1, refresh=True)
    qtbot.waitUntil(lambda: c.session.turns[-1].kind == "mask", timeout=5000)
    assert c.session.current.mask[5, 5] and c.session.current.mask[SQUARE_B].all()
    assert "brush edit" in widget.history.toPlainText()


class SlowEmbedding:
    """Wraps a predictor so that set_image takes ``seconds`` (sleeping, as torch releases the GIL)."""

    def __init__(self, inner, seconds):
        self.inner, self.seconds = inner, seconds

    def set_image(self, image, bands=None):
        import time

        time.sleep(self.seconds)
        return self.inner.set_image(image, bands=bands)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_embedding_runs_off_the_ui_thread(make_napari_viewer, fake_predictor, geotiff, qtbot, tmp_path):
    """While the embedding is computed the Qt event loop keeps running and the dock shows progress."""
    from qtpy.QtCore import QTimer

    viewer = make_napari_viewer(show=True)
    widget = RRSISWidget(viewer, predictor=SlowEmbedding(fake_predictor, 1.0), log_sessions=False)
    viewer.window.add_dock_widget(widget)
    c = widget.controller
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(c.busy))
    timer.start(20)
    c.open_image(geotiff)
    assert c.busy and widget.progress.isVisibleTo(widget) and not widget.segment_button.isEnabled()
    assert c.segment("bright") is None  # actions while busy are refused with a notification
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    timer.stop()
    assert sum(ticks) >= 10, ticks  # the UI thread ticked during the 1 s embedding
    assert c.session is not None and widget.segment_button.isEnabled()
    assert c.segment("bright") is not None


def test_locked_database_never_blocks_labelling(dock, qtbot, geotiff, tmp_path, monkeypatch):
    """Another process holds the database: turns go on (logging runs off the UI thread), the dock warns,
    and the events kept in memory are written once the lock is gone."""
    import functools
    import sqlite3

    from rrsis_engine.store import db as store_db
    from rrsis_engine.store import logger as store_logger

    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 100)  # give up on the lock quickly in this test
    monkeypatch.setattr(store_logger, "write_transaction",
                        functools.partial(store_db.write_transaction, deadline_s=0.3))
    viewer, widget, c = dock
    open_and_wait(c, qtbot, geotiff)
    c.segment("bright")
    assert c.flush_log()
    lock = sqlite3.connect(str(tmp_path / "sessions.db"), timeout=0.1)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        n = len(notification_manager.records)
        c.add_point(15.0, 20.0)
        assert c.layers["current"].data[15, 20]  # the turn happened while the database was locked
        qtbot.waitUntil(lambda: any("not saved yet" in m for m in messages_since(n)), timeout=20000)
        assert "not saved yet" in widget.history.toPlainText()
    finally:
        lock.rollback()
        lock.close()
    assert c.accept() == 1
    assert c.flush_log()  # everything kept in memory is written now
    assert len(c.store.list_annotations(status="accepted")) == 1
