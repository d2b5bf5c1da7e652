"""Reader, writers and manifest of the napari plugin (no viewer needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from napari.layers import Image, Labels
from napari_rrsis._geo import layer_kwargs, transform_from_layer_state
from napari_rrsis._reader import napari_get_reader, read_geotiff_layers
from napari_rrsis._writer import ExportError, labels_to_geojson, write_labels_geojson, write_labels_geotiff
from rrsis_napari_testing import CRS, TRANSFORM, H, W


def test_manifest_is_package_data_and_npe2_validates():
    manifest = resources.files("napari_rrsis") / "napari.yaml"
    assert manifest.is_file()
    npe2 = Path(sys.executable).parent / "npe2"
    out = subprocess.run([str(npe2), "validate", "rrsis", "--imports"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("rrsis")
    assert {w.display_name for w in pm.contributions.widgets} == {"Referring segmentation"}
    assert {tuple(w.filename_extensions) for w in pm.contributions.writers} == {(".geojson",), (".tif", ".tiff")}


def test_reader_keeps_crs_transform_and_places_pixels_on_the_map(geotiff):
    assert napari_get_reader("a.png") is None
    reader = napari_get_reader(geotiff)
    assert reader is not None
    [(data, kwargs, kind)] = reader(geotiff)
    assert kind == "image" and data.shape == (H, W, 3) and data.dtype == np.uint8
    assert kwargs["metadata"]["crs"] == CRS
    assert kwargs["metadata"]["transform"] == list(TRANSFORM)
    layer = Image(data, **kwargs)
    # centre of pixel (row 7, col 11) in napari world coordinates == map (y, x) of that pixel centre
    a, b, c, d, e, f = TRANSFORM
    world = layer.data_to_world((7, 11))
    assert np.allclose(world, (f + e * 7.5, c + a * 11.5))
    assert transform_from_layer_state(layer._get_state()) == TRANSFORM
    # scale/translate alone (metadata dropped) give the same transform back
    state = layer._get_state()
    state["metadata"] = {}
    assert np.allclose(transform_from_layer_state(state), TRANSFORM)


def test_rotated_transform_round_trips_through_the_layer_affine():
    t = (4.0, 1.5, 1000.0, 1.0, -4.0, 2000.0)
    layer = Labels(np.zeros((5, 6), np.int32), **layer_kwargs(t))
    state = layer._get_state()
    assert np.allclose(transform_from_layer_state(state), t)
    col, row = 3, 2  # pixel centre -> map
    x = t[0] * (col + 0.5) + t[1] * (row + 0.5) + t[2]
    y = t[3] * (col + 0.5) + t[4] * (row + 0.5) + t[5]
    assert np.allclose(layer.data_to_world((row, col)), (y, x))


def test_band_selection_for_multispectral(geotiff_4band_uint16):
    [(rgb, kw, _)] = read_geotiff_layers(geotiff_4band_uint16)
    assert kw["metadata"]["bands"] == [1, 2, 3] and kw["metadata"]["band_count"] == 4
    assert kw["metadata"]["source_dtype"] == "uint16" and rgb.dtype == np.uint8
    [(false_colour, kw2, _)] = read_geotiff_layers(geotiff_4band_uint16, bands=(4, 1, 2))
    assert kw2["metadata"]["bands"] == [4, 1, 2]
    assert not np.array_equal(rgb, false_colour)


def _labels_state(labels, objects=None, with_metadata=True):
    kwargs = layer_kwargs(TRANSFORM)
    meta = {"crs": CRS, "transform": list(TRANSFORM), "objects": objects or {}} if with_metadata else {}
    return Labels(labels, metadata=meta, **kwargs)._get_state()


@pytest.mark.parametrize("with_metadata", [True, False])
def test_geojson_polygons_reproject_with_the_tif_transform(tmp_path, geotiff, with_metadata):
    labels = np.zeros((H, W), np.int32)
    labels[10:20, 20:30] = 1  # rows 10..19, cols 20..29
    labels[40:45, 5:8] = 2
    objects = {"1": {"expression": "the square", "model_version": "fake-1", "iou_score": 0.8}}
    state = _labels_state(labels, objects, with_metadata)
    if not with_metadata:
        state["metadata"] = {"crs": CRS, "objects": objects}  # transform from scale/translate
    out = tmp_path / "objects.geojson"
    assert write_labels_geojson(str(out), labels, state) == [str(out)]
    fc = json.loads(out.read_text())
    assert fc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::26914"
    feats = {f["properties"]["label"]: f for f in fc["features"]}
    assert set(feats) == {1, 2}
    ring = np.array(feats[1]["geometry"]["coordinates"][0])
    with rasterio.open(geotiff) as src:  # expected corners from the tif's own transform
        x0, y0 = src.transform * (20, 10)
        x1, y1 = src.transform * (30, 20)
    assert np.isclose(ring[:, 0].min(), min(x0, x1)) and np.isclose(ring[:, 0].max(), max(x0, x1))
    assert np.isclose(ring[:, 1].min(), min(y0, y1)) and np.isclose(ring[:, 1].max(), max(y0, y1))
    assert feats[1]["properties"]["expression"] == "the square"
    assert feats[1]["properties"]["model_version"] == "fake-1"
    assert feats[1]["properties"]["area_px"] == 100
    assert feats[1]["properties"]["area_map_units2"] == pytest.approx(100 * 25.0)


def test_geojson_without_transform_uses_pixel_corners():
    labels = np.zeros((8, 8), np.uint8)
    labels[2:4, 3:6] = 5
    fc = labels_to_geojson(labels, None, None)
    assert "crs" not in fc
    ring = np.array(fc["features"][0]["geometry"]["coordinates"][0])
    assert (ring[:, 0].min(), ring[:, 0].max(), ring[:, 1].min(), ring[:, 1].max()) == (3, 6, 2, 4)


def test_geotiff_writer_round_trip(tmp_path):
    labels = np.zeros((H, W), np.int32)
    labels[5:9, 6:10] = 3
    state = _labels_state(labels, {"3": {"expression": "x"}})
    out = tmp_path / "labels.tif"
    write_labels_geotiff(str(out), labels, state)
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 26914
        assert src.transform.almost_equals(Affine(*TRANSFORM))
        assert np.array_equal(src.read(1), labels)
        assert json.loads(src.tags()["rrsis_objects"]) == {"3": {"expression": "x"}}


def test_writers_reject_bad_labels(tmp_path):
    with pytest.raises(ExportError, match="2-D"):
        write_labels_geojson(str(tmp_path / "a.geojson"), np.zeros((2, 3, 4), np.int32), {})
    with pytest.raises(ExportError, match="writable"):
        write_labels_geojson(str(tmp_path / "missing" / "a.geojson"), np.ones((3, 3), np.int32), {})


def test_the_status_line_shows_the_estimated_iou_and_a_likely_off_mask():
    from napari_rrsis._controller import describe

    from rrsis_engine.prediction import Prediction

    mask = np.zeros((20, 20), bool)
    mask[2:8, 2:8] = True
    pred = Prediction(mask=mask, logits=mask.astype(np.float32), low_res_logits=None, iou_score=0.08,
                      object_score=1.0, latency_ms=3.0)
    assert "decoder IoU 0.08" in describe(pred) and "likely off" not in describe(pred)
    assert "object" not in describe(pred)  # the object score is said only when low
    pred.object_score = 0.3
    assert "object 0.30: is it there?" in describe(pred)
    pred.object_score = 1.0
    pred.quality = 0.93
    assert "estimated IoU 0.93" in describe(pred) and "likely off" not in describe(pred)
    pred.quality = 0.2
    assert "estimated IoU 0.20 · " in describe(pred) and "likely off: + click the object you mean" in describe(pred)


def test_the_status_line_claims_no_choice_for_a_flag_with_one_candidate():
    """A follow-up the geometry resolved ("the one on the left") shows one object, which the ambiguity head may still
    flag from its wording: "1 candidate region(s)" is no choice to offer."""
    from napari_rrsis._controller import describe

    from rrsis_engine.prediction import Candidate, Prediction

    mask = np.zeros((20, 20), bool)
    mask[2:8, 2:8] = True
    other = np.zeros((20, 20), bool)
    other[12:18, 12:18] = True
    pred = Prediction(mask=mask, logits=mask.astype(np.float32), low_res_logits=None, iou_score=0.8, object_score=1.0,
                      latency_ms=3.0, ambiguity=0.9, ambiguous=True,
                      candidates=[Candidate(mask, 0.9, (2, 2, 8, 8), (5.0, 5.0))])
    assert "ambiguous" not in describe(pred)
    pred.candidates.append(Candidate(other, 0.8, (12, 12, 18, 18), (15.0, 15.0)))
    assert "⚠ ambiguous (0.90): 2 candidate region(s) outlined" in describe(pred)
