"""Two processes on localhost (gloo) train to the quality of one."""
import json
import os
import subprocess
import sys

import pytest

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _torchrun(nproc, out, data_root, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "damgraph.distributed", "--dataset", "cora", "--data-root", str(data_root),
           "--epochs", "200", "--patience", "50", "--dim", "32", "--out", str(out), *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("mode", ["full", "precomputed"])
def test_two_processes_match_one(tmp_path, data_root, mode):
    extra = ["--mode", mode] + (["--batch-size", "1024"] if mode == "precomputed" else [])
    one = _torchrun(1, tmp_path / "one.json", data_root, *extra)
    two = _torchrun(2, tmp_path / "two.json", data_root, *extra)
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert one["test_auc"] > 0.85 and two["test_auc"] > 0.85, (one["test_auc"], two["test_auc"])
    assert abs(one["test_auc"] - two["test_auc"]) < 0.02, (one["test_auc"], two["test_auc"])


def test_refuses_to_run_outside_torchrun(capsys):
    from damgraph.distributed import main

    assert main(["--out", "x.json"]) == 2
    assert "torchrun" in capsys.readouterr().err
