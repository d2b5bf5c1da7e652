import json

import numpy as np
import pytest
from PIL import Image

from rrsis_engine.cli import main
from rrsis_engine.cli.demo import DEMO_IMAGE, samples_dir
from rrsis_engine.model import save_checkpoint


@pytest.fixture()
def checkpoint(tiny_model, tmp_path):
    return save_checkpoint(tiny_model, tmp_path / "tiny.safetensors")


def test_predict_writes_mask_overlay_and_geojson_in_the_crs(checkpoint, tmp_path, capsys):
    sample = samples_dir() / DEMO_IMAGE
    rc = main(["predict", str(sample), "--text", "the largest lake", "--point", "100,200,1", "--point", "300,40,0",
               "--model", str(checkpoint), "--out", str(tmp_path / "m.png"), "--overlay", str(tmp_path / "o.png"),
               "--geojson", str(tmp_path / "m.geojson"), "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["width"] == 512 and info["crs"] == "EPSG:26914" and info["turns"] == 3
    mask = np.asarray(Image.open(tmp_path / "m.png"))
    assert mask.shape == (512, 512) and set(np.unique(mask)) <= {0, 255}
    assert info["area_px"] == int((mask == 255).sum())
    assert info["suggests_confirmation"] in (True, False)  # whether suggested_click asks "is it this one?"
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (512, 512, 3)
    gj = json.loads((tmp_path / "m.geojson").read_text())
    assert gj["crs"]["properties"]["name"].endswith("26914")
    if gj["features"]:  # one feature for the object; coordinates are UTM metres inside the tile's footprint
        assert len(gj["features"]) == 1
        geometry = gj["features"][0]["geometry"]
        ring = geometry["coordinates"][0] if geometry["type"] == "Polygon" else geometry["coordinates"][0][0]
        x, y = ring[0]
        assert 488009 <= x <= 488009 + 512 * 5 and 5208191 - 512 * 5 <= y <= 5208191


def test_predict_bad_input_is_an_error_message_not_a_traceback(checkpoint, tmp_path, capsys):
    sample = samples_dir() / DEMO_IMAGE
    assert main(["predict", str(sample), "--point", "9999,1", "--model", str(checkpoint), "--out",
                 str(tmp_path / "m.png")]) == 2
    assert "outside the 512×512 image" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    assert main(["predict", str(bad), "--text", "x", "--model", str(checkpoint), "--out", str(tmp_path / "m.png")]) == 2
    assert "bad.jpg" in capsys.readouterr().err
    assert main(["predict", str(sample), "--out", str(tmp_path / "m.png"), "--model", str(checkpoint)]) == 2
    assert "nothing to segment" in capsys.readouterr().err
    assert main(["predict", str(sample), "--text", "x", "--model", "rsam-nope", "--out", str(tmp_path / "m.png")]) == 2
    assert "neither a known config" in capsys.readouterr().err


def test_no_trained_weights_is_said_plainly(tmp_path, monkeypatch, capsys):
    import rrsis_engine.predictor as predictor_module

    monkeypatch.setattr(predictor_module, "model_search_dirs", lambda: [tmp_path])
    assert main(["predict", str(samples_dir() / DEMO_IMAGE), "--text", "x", "--out", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert "No trained weights" in err and "rrsis train" in err
    assert main(["demo", "--headless"]) == 1
    assert "does not predict with random weights" in capsys.readouterr().out


def test_models_lists_the_registry(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"rsam-lite", "rsam-t", "rsam-b+", "rsam-tiny"} <= set(rows)
    lite = rows["rsam-lite"]
    assert lite["default"]
    if lite["weights"]:  # the input side of the installed weights
        from rrsis_engine.model.checkpoint import read_checkpoint_config

        assert lite["input"] == read_checkpoint_config(lite["weights"])[0].image_size
    else:
        assert lite["input"] == 512
    assert rows["rsam-b+"]["image_encoder"].startswith("sam2.1_hiera_b+")


def test_headless_demo_with_a_model(checkpoint, tmp_path):
    assert main(["demo", "--headless", "--model", str(checkpoint), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "demo_mask.png").is_file() and (tmp_path / "demo_overlay.png").is_file()


def test_engine_rule_flags_turn_off_one_predictor_rule_each():
    """`rrsis predict` and `rrsis eval` share the flags; each names a Predictor keyword and turns off only that."""
    import argparse
    import inspect

    from rrsis_engine.cli.engine_rules import ENGINE_RULES, add_engine_rule_switches, engine_rule_options
    from rrsis_engine.predictor import Predictor

    keywords = inspect.signature(Predictor).parameters
    parser = argparse.ArgumentParser()
    add_engine_rule_switches(parser)
    assert all(parser.parse_args([]).__dict__[f.lstrip("-").replace("-", "_")] is False for f, _, _ in ENGINE_RULES)
    for flag, keyword, _ in ENGINE_RULES:
        assert keyword in keywords and keywords[keyword].default is True, keyword
        options = engine_rule_options(parser.parse_args([flag]))
        assert options == {k: k != keyword for _, k, _ in ENGINE_RULES}
