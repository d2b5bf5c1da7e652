"""The RRSIS dock widget: a thin Qt view over :class:`napari_rrsis._controller.RRSISController`.

Every button calls exactly one controller method (the function twin); the same methods are bound to
keys on the viewer and on the rrsis layers. The widget only renders the controller's state.
"""

from __future__ import annotations

import html
from pathlib import Path

from napari.layers import Image
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from napari_rrsis._controller import (
    CURRENT_COLOR,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    RRSISController,
)

_ROLE_STYLE = {
    "user": ("you", "#9ecbff"),
    "assistant": ("rrsis", "#e6e6e6"),
    "system": ("·", "#8a8a8a"),
    "error": ("!", "#ff6b6b"),
}


class RRSISWidget(QWidget):
    """Dock widget: image picker, expression box, buttons advertising their keys, the conversation."""

    def __init__(self, napari_viewer, controller: RRSISController | None = None, **controller_kwargs):
        super().__init__()
        self.viewer = napari_viewer
        controller_kwargs.setdefault("background", True)
        self.controller = controller or RRSISController(napari_viewer, **controller_kwargs)
        c = self.controller
        self.setMinimumWidth(330)

        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #9a9a9a;")

        # image row
        self.image_combo = QComboBox()
        self.image_combo.setToolTip("Image layer to label; choosing one computes its embedding.")
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open a GeoTIFF / PNG / JPEG and label it")
        self.bands_edit = QLineEdit()
        self.bands_edit.setPlaceholderText("1,2,3")
        self.bands_edit.setFixedWidth(70)
        self.bands_edit.setToolTip("1-based bands shown as R,G,B for multispectral GeoTIFFs (e.g. 4,1,2 for "
                                   "false colour); Enter re-reads the image")
        self.image_info = QLabel()
        self.image_info.setStyleSheet("color: #9a9a9a;")
        image_row = QHBoxLayout()
        image_row.addWidget(QLabel("Image"))
        image_row.addWidget(self.image_combo, 1)
        image_row.addWidget(self.open_button)
        bands_row = QHBoxLayout()
        bands_row.addWidget(QLabel("Bands (R,G,B)"))
        bands_row.addWidget(self.bands_edit)
        bands_row.addWidget(self.image_info, 1)
        self.image_info.setWordWrap(True)

        self.expression_edit = QLineEdit()
        self.expression_edit.setPlaceholderText("Describe the object, e.g. “the largest field on the left”")
        self.expression_edit.setToolTip("Referring expression. Enter or S segments it; follow-ups like "
                                        "“no, the smaller one” refine the current object.")

        self.segment_button = QPushButton("Segment [S]")
        self.accept_button = QPushButton("Accept [A or C]")
        self.undo_button = QPushButton("Undo [Z]")
        self.redo_button = QPushButton("Redo [Shift+Z]")
        self.toggle_button = QPushButton()
        self.clear_button = QPushButton("Clear [Shift+C]")
        self.next_button = QPushButton("Next image [N]")
        self.export_button = QPushButton("Export…")
        self.segment_button.setToolTip("Segment the expression (a new turn; clicks and the previous mask are kept)")
        self.accept_button.setToolTip("Accept the current object: new label id + a row in the session database")
        self.undo_button.setToolTip("Undo the last turn")
        self.redo_button.setToolTip("Redo the undone turn")
        self.toggle_button.setToolTip("Next click in the image adds a positive (include) or negative (exclude) point")
        self.clear_button.setToolTip("Drop the current object's prompts and mask")
        self.next_button.setToolTip("Next image given on the command line")
        self.export_button.setToolTip("Write the accepted objects as GeoJSON polygons or a GeoTIFF (image CRS)")
        grid = QGridLayout()
        for i, b in enumerate([self.segment_button, self.accept_button, self.undo_button, self.redo_button,
                               self.toggle_button, self.clear_button, self.next_button, self.export_button]):
            grid.addWidget(b, i // 2, i % 2)
        self.segment_button.setStyleSheet("font-weight: bold;")

        self.help_label = QLabel(
            "Click in the image to add a point (T toggles +/−); select “rrsis box” and drag for a box. Keys "
            "act on the canvas (Esc leaves the text box).<br>"
            f"<span style='color:{CURRENT_COLOR}'>■</span> current object · coloured outlines: candidate "
            "regions when the expression is ambiguous · ★ suggested click · “rrsis uncertainty” layer "
            "(hidden): where the model is unsure"
        )
        self.help_label.setWordWrap(True)
        self.help_label.setStyleSheet("color: #9a9a9a; font-size: 11px;")

        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("computing the image embedding…")
        self.progress.setVisible(False)

        self.history = QTextBrowser()
        self.history.setMinimumHeight(180)
        self.history.setOpenLinks(False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addLayout(image_row)
        layout.addLayout(bands_row)
        layout.addWidget(QLabel("Expression"))
        layout.addWidget(self.expression_edit)
        layout.addLayout(grid)
        layout.addWidget(self.help_label)
        layout.addWidget(self.progress)
        layout.addWidget(QLabel("Conversation"))
        layout.addWidget(self.history, 1)

        # wiring: each control calls one controller method
        self.expression_edit.textChanged.connect(self._on_text)
        self.expression_edit.returnPressed.connect(c.segment)
        self.segment_button.clicked.connect(lambda: c.segment())
        self.accept_button.clicked.connect(lambda: c.accept())
        self.undo_button.clicked.connect(lambda: c.undo())
        self.redo_button.clicked.connect(lambda: c.redo())
        self.toggle_button.clicked.connect(lambda: c.toggle_polarity())
        self.clear_button.clicked.connect(lambda: c.clear())
        self.next_button.clicked.connect(lambda: c.next_image())
        self.export_button.clicked.connect(self._export_dialog)
        self.open_button.clicked.connect(self._open_dialog)
        self.bands_edit.returnPressed.connect(self._apply_bands)
        self.image_combo.activated.connect(self._on_combo)
        c.events.changed.connect(self.refresh)
        c.events.busy.connect(self._on_busy)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self._on_layers_changed()
        self.refresh()

    # ---- rendering -------------------------------------------------------------------------------
    def refresh(self) -> None:
        c = self.controller
        self.model_label.setText(c.model_label)
        img = c.image
        if img is not None:
            self.image_info.setText(f"of {img.band_count} · {img.width}×{img.height} px\n{img.crs or 'no CRS'}")
            if not self.bands_edit.hasFocus():
                self.bands_edit.setText(",".join(str(b) for b in img.bands))
        else:
            self.image_info.setText("")
        self._on_layers_changed()
        sign, color = ("positive (+)", POSITIVE_COLOR) if c.positive else ("negative (−)", NEGATIVE_COLOR)
        self.toggle_button.setText(f"Click: {sign} [T]")
        self.toggle_button.setStyleSheet(f"color: {color}; font-weight: bold;")
        s = c.session
        self.undo_button.setEnabled(bool(s and s.can_undo))
        self.redo_button.setEnabled(bool(s and s.can_redo))
        self.accept_button.setEnabled(bool(s and s.current is not None))
        self.next_button.setEnabled(c.queue_index + 1 < len(c.queue))
        lines = []
        for role, text in c.conversation[-200:]:
            who, col = _ROLE_STYLE.get(role, ("", "#cccccc"))
            body = html.escape(text).replace("\n", "<br>")
            if role == "system":
                body = f"<i>{body}</i>"
            lines.append(f'<div style="color:{col}; margin-bottom:3px"><b>{who}</b>&nbsp; {body}</div>')
        self.history.setHtml("".join(lines))
        bar = self.history.verticalScrollBar()
        bar.setValue(bar.maximum())
        QTimer.singleShot(0, lambda: bar.setValue(bar.maximum()))  # again once the new text is laid out

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        for b in (self.segment_button, self.accept_button, self.undo_button, self.redo_button,
                  self.clear_button, self.next_button, self.open_button):
            b.setEnabled(not busy)
        if not busy:
            self.refresh()

    def _on_text(self, text: str) -> None:
        self.controller.expression = text

    # ---- image picker ----------------------------------------------------------------------------
    def _candidate_layers(self) -> list[Image]:
        return [ly for ly in self.viewer.layers if isinstance(ly, Image) and not self.controller.is_rrsis_layer(ly)]

    def _on_layers_changed(self, event=None) -> None:
        layers = self._candidate_layers()
        current = self.controller.image_layer
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        for ly in layers:
            self.image_combo.addItem(ly.name)
        if current is not None and current in layers:
            self.image_combo.setCurrentIndex(layers.index(current))
        self.image_combo.blockSignals(False)

    def _on_combo(self, index: int) -> None:
        layers = self._candidate_layers()
        if 0 <= index < len(layers) and layers[index] is not self.controller.image_layer:
            self.controller.use_image_layer(layers[index])

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "",
                                              "Images (*.tif *.tiff *.png *.jpg *.jpeg);;All files (*)")
        if path:
            self.controller.open_image(path)

    def _apply_bands(self) -> None:
        text = self.bands_edit.text().replace(" ", "")
        try:
            bands = tuple(int(b) for b in text.split(",") if b)
        except ValueError:
            self.controller.report(f"Bands must be 1-based numbers separated by commas (e.g. 4,1,2), not '{text}'.")
            return
        if len(bands) not in (1, 3):
            self.controller.report("Give 1 or 3 bands (R,G,B), e.g. 1,2,3 or 4,1,2.")
            return
        self.controller.reload_bands(bands)

    def _export_dialog(self) -> None:
        c = self.controller
        start = ""
        if c.image is not None and c.image.path:
            start = str(Path(c.image.path).with_suffix(".rrsis.geojson"))
        path, _ = QFileDialog.getSaveFileName(self, "Export accepted objects", start,
                                              "GeoJSON (*.geojson);;GeoTIFF labels (*.tif)")
        if path:
            c.export(path)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        # Esc leaves the expression box so S/Z/T... act on the viewer again (napari forwards the
        # dock's unhandled keys to the viewer).
        if event.key() == Qt.Key_Escape:
            self.expression_edit.clearFocus()
        super().keyPressEvent(event)
