"""The damgraph command end to end (bad input: tests/test_bad_inputs.py)."""
import json
import subprocess
import sys

import networkx as nx
import numpy as np
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
    assert code == 0 and "learned width" in stdout and "(penalty weight 0.1: lam 0.1)" in stdout  # a small graph
    z, ids = load_embeddings(out)
    meta = json.loads((tmp_path / "emb.txt.json").read_text())
    assert z.shape == (30, meta["learned_width"]) and ids == meta["node_ids"]
    assert meta["config"]["dim"] == 8 and "torch" in meta["versions"]


def test_embed_with_hits_selection_reports_both_scores(tmp_path, edge_file, capsys):
    out = tmp_path / "emb.npy"
    code, stdout, _ = _run(capsys, "embed", edge_file, "--out", out, "--dim", 8, "--epochs", 20, "--quiet",
                           "--val-metric", "hits@20")
    meta = json.loads((tmp_path / "emb.npy.json").read_text())
    assert code == 0 and meta["val_metric"] == "hits@20" and meta["config"]["val_metric"] == "hits@20"
    assert 0 <= meta["val_score"] <= 1 and 0 <= meta["val_auc"] <= 1
    assert f"val AUC {meta['val_auc']:.4f} (selected on val hits@20 {meta['val_score']:.4f})" in stdout


def test_info(edge_file, capsys):
    code, stdout, _ = _run(capsys, "info", edge_file)
    assert code == 0 and "nodes        30" in stdout and "weights      yes" in stdout


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
    from damgraph import DAMEmbedding
    from damgraph.config import ESTIMATOR_SETTINGS, MODEL_FAMILIES, USER_DEFAULTS

    embed = build_parser()._subparsers._group_actions[0].choices["embed"]
    flags = {a.dest: a for a in embed._actions}
    for name in ESTIMATOR_SETTINGS:
        if name not in USER_DEFAULTS:
            assert flags[name].default is None, name  # unset: the model's preset
    assert flags["decoder"].default == "inner"  # embeddings whose inner product is the model's score
    assert flags["inputs"].default == "projection" and flags["val_tolerance"].default == 0.01
    assert {k: getattr(DAMEmbedding(), k) for k in USER_DEFAULTS} == USER_DEFAULTS  # the estimator's own
    assert tuple(flags["model"].choices) == tuple(MODEL_FAMILIES)
    assert "maskgae 800" in flags["epochs"].help and "(default: 0.1)" in flags["lam"].help  # one lam for every model
    from damgraph.datasets import DATASET_NAMES

    assert flags["input"].help.endswith("a dataset name: " + ", ".join(DATASET_NAMES))  # every registered name


def test_ctrl_c_says_truthfully_what_was_written(tmp_path, edge_file, capsys, monkeypatch):
    import damgraph.estimator
    from damgraph.io import OutputSet

    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # Ctrl-C while training: no file
        patch.setattr(damgraph.estimator.DAMEmbedding, "fit", interrupted_fit)
        code, _, err = _run(capsys, "embed", edge_file, "--out", tmp_path / "o.npy", "--quiet")
    assert code == 130 and err == "error: interrupted; nothing was written\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edges.txt"]

    commit = OutputSet.commit

    def commit_then_ctrl_c(self):  # Ctrl-C held back during the renames, delivered right after
        commit(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(OutputSet, "commit", commit_then_ctrl_c)
    code, _, err = _run(capsys, "embed", edge_file, "--out", tmp_path / "o.npy", "--epochs", 5, "--quiet")
    assert code == 130 and err.startswith(f"error: interrupted; after writing {tmp_path / 'o.npy'}, ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edges.txt", "o.npy", "o.npy.ids.json", "o.npy.json"]


def test_a_detected_header_is_said(tmp_path, capsys):
    path = tmp_path / "h.csv"
    path.write_text("source,target\n" + "".join(f"{i},{(i + 1) % 9}\n" for i in range(9)))
    code, stdout, _ = _run(capsys, "info", path)
    assert code == 0 and "header       line 1 ('source target') skipped; pass --no-header" in stdout
    assert "nodes        9\n" in stdout


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(edge_file):
    # head -n 0 exits at once, so every line damgraph prints meets a closed pipe
    process = subprocess.run(f"{sys.executable} -m damgraph info {edge_file} | head -n 0; exit ${{PIPESTATUS[0]}}",
                             shell=True, executable="/bin/bash", capture_output=True, text=True)
    assert process.stderr == "" and process.returncode == 141


def test_predict_scores_pairs_and_lists_new_neighbours(tmp_path, edge_file, capsys):
    from damgraph.estimator import DAMEmbedding

    model = tmp_path / "m.pt"
    for decoder in ("inner", "mlp"):
        code, stdout, _ = _run(capsys, "embed", edge_file, "--out", tmp_path / "e.npy", "--dim", 8, "--epochs", 20,
                               "--decoder", decoder, "--save-model", model, "--quiet")
        assert code == 0 and ("MLP decoder" in stdout) == (decoder == "mlp")
        est = DAMEmbedding.load(model)
        (tmp_path / "pairs.txt").write_text("n0 n1\nn3 n20\n")
        code, stdout, _ = _run(capsys, "predict", model, "--pairs", tmp_path / "pairs.txt")
        lines = stdout.splitlines()
        assert code == 0 and lines[0] == "source,target,probability" and len(lines) == 3
        expected = est.edge_scores([("n0", "n1"), ("n3", "n20")])
        assert [float(line.split(",")[2]) for line in lines[1:]] == pytest.approx(expected, rel=1e-5)
        if decoder == "inner":  # the written embeddings alone give the model's score
            z, ids = load_embeddings(tmp_path / "e.npy")
            logit = z[ids.index("n0")] @ z[ids.index("n1")]
            assert expected[0] == pytest.approx(1 / (1 + np.exp(-logit)), rel=1e-5)

        code, stdout, _ = _run(capsys, "predict", model, "--nodes", "n0", "--top", 3, "--out", tmp_path / "top.csv")
        rows = (tmp_path / "top.csv").read_text().splitlines()
        assert code == 0 and rows[0] == "node,rank,candidate,probability" and len(rows) == 4
        neighbours = {line.split()[1] for line in edge_file.read_text().splitlines() if line.split()[0] == "n0"}
        neighbours |= {line.split()[0] for line in edge_file.read_text().splitlines() if line.split()[1] == "n0"}
        candidates = [row.split(",")[2] for row in rows[1:]]
        assert not set(candidates) & (neighbours | {"n0"})  # only new neighbours
        scores = est.edge_scores([("n0", c) for c in candidates])
        assert [float(row.split(",")[3]) for row in rows[1:]] == pytest.approx(scores, rel=1e-5)
        assert list(scores) == sorted(scores, reverse=True)
        others = [node for node in est.node_ids_ if node not in neighbours | {"n0"} | set(candidates)]
        assert est.edge_scores([("n0", o) for o in others]).max() <= scores.min() + 1e-7


@pytest.mark.slow
def test_help_answers_without_loading_torch():
    script = ("import sys\nfrom damgraph.cli import main\n"
              "try:\n    main(['embed', '--help'])\nexcept SystemExit:\n    pass\n"
              "print('torch' in sys.modules, 'torch_geometric' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "False False"




def test_every_flag_has_one_shape_across_commands(monkeypatch):
    """A flag name means one number (or word) everywhere, or a list everywhere. (argparse still reads a
    benchmark's ``--lam 0.1`` as a prefix of ``--lams``, so commands written before the rename still run.)"""
    import argparse
    import importlib

    from damgraph.cli import build_parser

    class Parsed(Exception):
        pass

    import pkgutil

    import benchmarks

    commands = ["damgraph.distributed"] + [f"benchmarks.{m.name}" for m in pkgutil.iter_modules(benchmarks.__path__)
                                           if not m.ispkg and m.name != "__main__"]
    commands = [c for c in commands if hasattr(importlib.import_module(c), "parse_args")]
    parsers = {f"damgraph {name}": sub for name, sub in build_parser()._subparsers._group_actions[0].choices.items()}

    def catch(self, *args, **kwargs):
        raise Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    for command in commands:
        with pytest.raises(Parsed) as caught:
            importlib.import_module(command).parse_args([])
        parsers[command] = caught.value.args[0]
    shapes = {}
    for command, parser in parsers.items():
        for action in parser._actions:
            shape = "list" if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1) \
                else "one"
            for flag in action.option_strings:
                shapes.setdefault(flag, {}).setdefault(shape, []).append(command)
    assert {"damgraph embed", "benchmarks.linkpred", "benchmarks.nodeclf", "benchmarks.embed"} <= set(parsers)
    assert {shape: sorted(where) for shape, where in shapes["--lam"].items()} == \
        {"one": ["benchmarks.embed", "damgraph embed", "damgraph.distributed"]}
    assert set(shapes["--lams"]) == {"list"}
    mixed = {flag: by_shape for flag, by_shape in shapes.items() if len(by_shape) > 1}
    assert not mixed, mixed
    monkeypatch.undo()
    assert importlib.import_module("benchmarks.linkpred").parse_args(["--lam", "0.03", "0.1"]).lams == [0.03, 0.1]


def test_the_summary_says_how_the_penalty_weight_was_set():
    from damgraph import LinkPredConfig
    from damgraph.cli import penalty_text

    assert penalty_text(LinkPredConfig(), 0.1) == "lam 0.1"
    assert penalty_text(LinkPredConfig(), 0.05) == ("lam 0.1 lowered for a graph of more than 4,096 training edges; "
                                                   "--penalty-edges 0 keeps lam")
