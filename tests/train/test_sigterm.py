"""SIGTERM ends `rrsis train` promptly: a checkpoint that `--resume` continues, and no calibration or promotion run
after it (they take minutes; the signal asked the run to end)."""

import os
import signal
import subprocess
import sys
import time

from rrsis_engine.model import load_checkpoint


def test_sigterm_writes_a_checkpoint_and_skips_calibration_and_promotion(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "rrsis_train", "--config", "rsam-tiny", "--image-size", "64", "--steps", "100000",
            "--source", "easy:1", "--threads", "1", "--ckpt-every", "0", "--log-every", "1", "--no-progress",
            "--warmup", "1", "--calibrate-size", "20", "--promote", "--models-dir", str(tmp_path / "models"),
            "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        deadline = time.monotonic() + 120
        while not (out / "log.csv").is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (out / "log.csv").is_file(), "training did not start"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    assert "stopped by SIGTERM" in output and "--resume" in output
    assert "calibrate:" not in output and "ambiguity flag calibrated" not in output
    assert not (tmp_path / "models").exists()  # no promotion
    step = int((out / "latest").read_text().strip().split("-")[1])
    assert 1 <= step < 100000
    load_checkpoint(out / "model.safetensors")
