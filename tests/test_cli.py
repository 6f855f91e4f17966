"""The damgraph command: end to end, and every bad input as one line with exit code 2."""
import json
import subprocess
import sys

import networkx as nx
import pytest

from damgraph.cli import main
from damgraph.io import load_embeddings


@pytest.fixture
def edge_file(tmp_path):
    g = nx.stochastic_block_model([15, 15], [[0.4, 0.03], [0.03, 0.4]], seed=0)
    path = tmp_path / "edges.txt"
    path.write_text("".join(f"n{u} n{v} {1 + (u + v) % 2}\n" for u, v in g.edges))
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_embed_end_to_end(tmp_path, edge_file, capsys):
    out = tmp_path / "emb.txt"
    code, stdout, _ = _run(capsys, "embed", edge_file, "--out", out, "--dim", 8, "--epochs", 30, "--quiet")
    assert code == 0 and "learned width" in stdout
    z, ids = load_embeddings(out)
    meta = json.loads((tmp_path / "emb.txt.json").read_text())
    assert z.shape == (30, meta["learned_width"]) and ids == meta["node_ids"]
    assert meta["config"]["dim"] == 8 and "torch" in meta["versions"]


def test_info(edge_file, capsys):
    code, stdout, _ = _run(capsys, "info", edge_file)
    assert code == 0 and "nodes        30" in stdout and "weights      yes" in stdout


def _features(tmp_path, rows):
    path = tmp_path / "feats.csv"
    path.write_text("id,a,b\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


BAD = {
    "missing file": (lambda t, e: ["embed", t / "nope.txt"], "nope.txt: no such file or dataset"),
    "empty file": (lambda t, e: ["embed", _write(t / "empty.txt", "")], "the file is empty"),
    "malformed line": (lambda t, e: ["embed", _write(t / "m.txt", "a b\nb c d e\n")], "line 2: expected 'u v'"),
    "non-numeric weight": (lambda t, e: ["embed", _write(t / "w.txt", "a b 1\nb c x\n")],
                           "line 2: weight 'x' is not a number"),
    "features rows do not match": (lambda t, e: ["embed", e, "--features", _features(t, [["n0", 1, 2]])],
                                   "features are missing for 29 of 30 node(s)"),
    "features hold NaN": (lambda t, e: ["embed", e, "--features",
                                        _features(t, [[f"n{i}", 1, "nan" if i == 3 else 0] for i in range(30)])],
                          "features hold NaN or inf"),
    "unknown dataset": (lambda t, e: ["embed", "cora2"], "cora2: no such file or dataset"),
    "too small for validation": (lambda t, e: ["embed", _write(t / "s.txt", "a b\nb c\nc d\n")],
                                 "too few for a 5% validation split (at least 20 needed)"),
    "unwritable output": (lambda t, e: ["embed", e, "--out", t / "no" / "dir" / "z.npy"],
                          "folder " ),
    "every dimension closes": (lambda t, e: ["embed", e, "--lam", "1e4", "--epochs", "150", "--dim", "4",
                                             "--val-fraction", "0"], "closed every dimension"),
    "loss becomes NaN": (lambda t, e: ["embed", e, "--lr", "1e30"], "became NaN or inf; lower the learning rate"),
}


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, edge_file, capsys, case):
    make, message = BAD[case]
    argv = make(tmp_path, edge_file)
    if "--out" not in argv:
        argv += ["--out", tmp_path / "out.npy"]
    before = set(tmp_path.rglob("*"))
    code, stdout, err = _run(capsys, *argv, "--quiet")
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err
    assert set(tmp_path.rglob("*")) == before  # nothing written, no temp file left


@pytest.mark.slow
def test_the_installed_command_exits_2_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "damgraph", "embed", str(tmp_path / "x.txt"), "--out",
                             str(tmp_path / "z.npy")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("error:") and "Traceback" not in result.stderr
    help_text = subprocess.run([sys.executable, "-m", "damgraph", "embed", "--help"], capture_output=True,
                               text=True).stdout
    assert "examples:" in help_text


def test_embed_flags_are_the_estimator_settings():
    from damgraph.cli import build_parser
    from damgraph.config import ESTIMATOR_SETTINGS, MODELS

    embed = build_parser()._subparsers._group_actions[0].choices["embed"]
    flags = {a.dest: a for a in embed._actions}
    for name in ESTIMATOR_SETTINGS:
        assert flags[name].default is None, name  # unset: the model's preset
    assert tuple(flags["model"].choices) == MODELS
    assert "maskgae 800" in flags["epochs"].help and "maskgae 0.1" in flags["lam"].help
