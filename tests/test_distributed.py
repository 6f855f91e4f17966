"""DDP under torchrun on localhost (gloo): one process trains exactly as the
full-batch path, two processes train to its quality, for every model."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _torchrun(nproc, out, data_root, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "damgraph.distributed", "--dataset", "cora", "--data-root", str(data_root), "--out", str(out),
           *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gae", "vgae", "maskgae"])
def test_one_process_trains_exactly_as_the_full_batch_path(tmp_path, cora, data_root, model):
    from damgraph import model_config, split_edges, train_link_prediction

    settings = dict(dim=32, epochs=25, patience=25)
    ddp = _torchrun(1, tmp_path / "one.json", data_root, "--model", model, "--dim", "32", "--epochs", "25",
                    "--patience", "25")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the torchrun process: the same order of floating-point sums
    try:
        result = train_link_prediction(split_edges(cora, 0), model_config(model, **settings))
    finally:
        torch.set_num_threads(threads)
    assert ddp["world_size"] == 1 and ddp["config"]["model"] == model
    assert ddp["test_auc"] == result.test_auc and ddp["val_auc"] == result.record.val_score
    assert ddp["width"] == result.width and ddp["best_epoch"] == result.record.best_epoch


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["--model", "maskgae", "--epochs", "60", "--patience", "60"],
                                   ["--mode", "precomputed", "--batch-size", "2048", "--beta-lr", "0.01",
                                    "--epochs", "30", "--patience", "30",  # too short to settle: the earlier gates
                                    "--lam", "0.03", "--gate-alpha", "1", "--gate-delay", "0", "--settle", "0"]],
                         ids=["maskgae", "precomputed"])
def test_two_processes_train_to_the_quality_of_one(tmp_path, data_root, extra):
    one = _torchrun(1, tmp_path / "one.json", data_root, "--dim", "32", *extra)
    two = _torchrun(2, tmp_path / "two.json", data_root, "--dim", "32", *extra)
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert one["test_auc"] > 0.85 and two["test_auc"] > 0.85, (one["test_auc"], two["test_auc"])
    assert abs(one["test_auc"] - two["test_auc"]) < 0.02, (one["test_auc"], two["test_auc"])


def test_refuses_to_run_outside_torchrun(capsys):
    from damgraph.distributed import main

    assert main(["--out", "x.json"]) == 2
    assert "torchrun" in capsys.readouterr().err


@pytest.mark.slow
def test_a_model_the_mode_cannot_train_is_refused_in_one_line(tmp_path, data_root):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           "-m", "damgraph.distributed", "--dataset", "cora", "--data-root", str(data_root),
           "--out", str(tmp_path / "x.json"), "--mode", "precomputed", "--model", "vgae"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode != 0 and not (tmp_path / "x.json").exists()
    assert "error: mode 'precomputed' trains a GAE on a SIGN encoder and supports model='gae' only, got 'vgae'" \
        in done.stderr
