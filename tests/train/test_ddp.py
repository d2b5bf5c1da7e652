"""DDP through torchrun (gloo on CPU): two processes × batch 1 see the same samples as one process × batch 2,
give the same loss curve shape and a loadable checkpoint."""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ARGS = ["--config", "rsam-tiny", "--image-size", "64", "--steps", "3", "--source", "easy:1", "--threads", "1",
        "--ckpt-every", "0", "--log-every", "1", "--no-progress", "--warmup", "1", "--lr", "1e-3",
        "--calibrate-size", "0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(out: Path) -> list[dict]:
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, "-m", "rrsis_train", *ARGS, "--batch", "2", "--out", str(one)],
                   check=True, env=env, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                    str(_free_port()), "-m", "rrsis_train", *ARGS, "--batch", "1", "--out", str(two)],
                   check=True, env=env, timeout=300)
    a, b = _rows(one), _rows(two)
    assert [r["samples"] for r in a] == [r["samples"] for r in b] == ["2", "4", "6"]
    # step 1: identical weights and samples -> the same text-turn loss (averaged over the two ranks)
    assert float(a[0]["loss_text"]) == pytest.approx(float(b[0]["loss_text"]), rel=1e-4)
    for ra, rb in zip(a, b, strict=False):
        assert float(ra["loss"]) == pytest.approx(float(rb["loss"]), rel=0.15)
    assert float(a[-1]["loss"]) < float(a[0]["loss"]) and float(b[-1]["loss"]) < float(b[0]["loss"])
    from rrsis_engine.model import load_checkpoint

    model = load_checkpoint(two / "model.safetensors")
    assert model.checkpoint_meta["samples"] == 6


def _any_rank_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from rrsis_train.trainer import any_rank

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        # rank 1 alone was signalled; neither rank's clock has run out
        Path(out, f"rank{rank}").write_text(repr(any_rank(rank == 1, False)))
    finally:
        dist.destroy_process_group()


def test_ranks_agree_to_stop_when_one_is_signalled(tmp_path):
    """The training loop's stop (SIGTERM, --max-minutes) is agreed by all-reduce: a rank that stopped alone would
    leave the others waiting forever in DDP's next gradient all-reduce."""
    import torch.multiprocessing as mp

    mp.spawn(_any_rank_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == ["(True, False)", "(True, False)"]
