"""rrsis train --since-last: nothing happens until enough new accepted pairs arrived; then it trains,
evaluates, registers (with the pair count) and promotes the first model."""

import json

from rrsis_engine.cli import main


def test_since_last_waits_for_enough_new_pairs_then_trains(tmp_path, capsys, session_db):
    db, accepted = session_db
    models = tmp_path / "models"
    base = ["train", "--since-last", "--db", db, "--models-dir", str(models), "--config", "rsam-tiny",
            "--image-size", "64", "--steps", "2", "--batch", "2", "--threads", "1", "--no-progress",
            "--val-size", "2", "--db-holdout", "0", "--ckpt-every", "0", "--calibrate-size", "16"]
    assert main([*base, "--min-new", "4", "--out", str(tmp_path / "r0")]) == 0
    assert "3 new accepted pair(s)" in capsys.readouterr().out
    assert not (tmp_path / "r0").exists() and not (models / "registry.json").exists()

    assert main([*base, "--min-new", "3", "--out", str(tmp_path / "r1")]) == 0
    assert "promoted" in capsys.readouterr().out
    reg = json.loads((models / "registry.json").read_text())
    assert reg["models"][0]["accepted_pairs"] == 3 and reg["models"][0]["promoted"]
    assert (models / "rsam-tiny.safetensors").is_file()
    # the promoted model carries the ambiguity calibration fitted after its training, on 16 validation scenes
    meta = json.loads((models / "rsam-tiny.json").read_text())["meta"]
    cal, quality = meta["ambiguity_calibration"], meta["quality_calibration"]
    assert cal["n"] == 16 and cal["data"] == "synthetic:val:16:256"
    assert quality["data"] == "synthetic:val:16:256" and quality["n"] >= 16  # and the estimated IoU, on their turns
    # no new pairs since: nothing to do
    assert main([*base, "--min-new", "1", "--out", str(tmp_path / "r2")]) == 0
    assert "0 new accepted pair(s)" in capsys.readouterr().out
