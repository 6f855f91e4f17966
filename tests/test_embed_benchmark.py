"""benchmarks.embed: the user's path against spectral, heuristic and fast embedders."""
import pytest

from benchmarks.store import read_rows


def _block_model_file(tmp_path):
    """Three planted communities of 40 nodes, as an edge-list file: ``(graph, path)``."""
    import networkx as nx

    g = nx.stochastic_block_model([40, 40, 40], [[0.25, 0.01, 0.01], [0.01, 0.25, 0.01], [0.01, 0.01, 0.25]],
                                  seed=0)
    path = tmp_path / "sbm.txt"
    path.write_text("".join(f"{u} {v}\n" for u, v in g.edges))
    return g, path


def test_embed_benchmark_scores_every_method_on_held_out_edges(tmp_path, capsys):
    """The user-path benchmark on a small edge-list file: every method gets a
    row with AUCs in range, the spectral embedding takes damgraph's width,
    and a re-run reuses the rows."""
    from benchmarks import embed

    g, path = _block_model_file(tmp_path)
    argv = ["--graphs", str(path), "--seeds", "0", "--dim", "16", "--out", str(tmp_path / "out"), "--quiet"]
    assert embed.main(argv) == 0
    rows = {r["method"]: r for r in read_rows(tmp_path / "out" / "embed.csv")}
    assert set(rows) == {"damgraph", "spectral", "adamic-adar", "resource-allocation", "preferential-attachment"}
    assert rows["spectral"]["width"] == rows["damgraph"]["width"] and 1 <= int(rows["damgraph"]["width"]) <= 16
    for method, row in rows.items():
        # degrees say nothing in a block model of equal blocks: preferential attachment may fall below chance
        assert (0.0 if method == "preferential-attachment" else 0.5) < float(row["test_auc"]) <= 1.0
        assert float(row["seconds"]) >= 0
        assert int(row["test_pairs"]) == 2 * int(0.1 * g.number_of_edges())  # RandomLinkSplit floors
    assert float(rows["damgraph"]["test_auc"]) > 0.8  # three planted communities
    capsys.readouterr()
    assert embed.main(argv) == 0 and "reusing 5 finished run(s)" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")} == {
        "embed.csv", "embed.md", "embed.json", "embed.png"}


def test_embed_benchmark_passes_the_penalty_weight_to_damgraph(tmp_path, capsys):
    """``--lam 0`` trains damgraph without the gate's penalty, so no unit
    closes, and the run gets its own id beside the default's (the default,
    0.03, given explicitly is the default's run); the report records the
    weight each run used."""
    from benchmarks import embed
    from damgraph.config import model_config

    _, path = _block_model_file(tmp_path)
    argv = ["--graphs", str(path), "--seeds", "0", "--dim", "16", "--methods", "damgraph", "--out",
            str(tmp_path / "out"), "--quiet"]
    report = tmp_path / "out" / "embed.md"
    assert embed.main(argv) == 0
    assert f"'lam': {model_config('gae').lam}," in report.read_text()  # the weight used
    assert embed.main(argv + ["--lam", "0"]) == 0
    assert "'lam': 0.0," in report.read_text()
    rows = {r["config_id"]: r for r in read_rows(tmp_path / "out" / "embed.csv")}
    assert len(rows) == 2
    free = next(r for cid, r in rows.items() if "|lam=0.0" in cid)
    default = next(r for cid, r in rows.items() if "lam=" not in cid)
    assert int(free["width"]) == 16 and int(default["width"]) < 16
    capsys.readouterr()  # the default given explicitly is the default run, not a new one
    assert embed.main(argv + ["--lam", str(model_config("gae").lam)]) == 0
    assert "reusing 1 finished run(s)" in capsys.readouterr().out
    assert len(read_rows(tmp_path / "out" / "embed.csv")) == 2


def test_embed_benchmark_refuses_a_missing_peer_package(capsys):
    import importlib.util

    from benchmarks import embed

    if importlib.util.find_spec("nodevectors") is not None:
        pytest.skip("nodevectors is installed here")
    with pytest.raises(SystemExit) as info:
        embed.parse_args(["--methods", "prone"])
    assert info.value.code == 2
    assert "need nodevectors; install them with: pip install 'damgraph[peers]'" in capsys.readouterr().err


def test_embed_benchmark_scores_an_ogb_graph_on_its_official_test_pairs(tmp_path, small_ogb_root):
    from benchmarks import embed
    from damgraph import load_dataset

    argv = ["--graphs", "ogbl-ddi", "--data-root", str(small_ogb_root), "--methods", "damgraph", "spectral",
            "adamic-adar", "--seeds", "0", "--dim", "16", "--out", str(tmp_path / "out"), "--quiet"]
    assert embed.main(argv) == 0
    rows = {r["method"]: r for r in read_rows(tmp_path / "out" / "embed.csv")}
    test = load_dataset("ogbl-ddi", root=small_ogb_root)[0]
    for row in rows.values():
        assert int(row["test_pairs"]) == test.test_pos.size(1) + test.test_neg.size(1)
        assert int(row["edges"]) == test.train_pos.size(1)  # the training graph only
    # Adamic-Adar recomputed here with networkx on the training graph and scored by OGB's own Evaluator
    import networkx as nx
    import torch
    from ogb.linkproppred import Evaluator
    graph = nx.Graph(test.train_pos.t().tolist())
    graph.add_nodes_from(range(test.num_nodes))
    def adamic_adar(pairs):
        return torch.tensor([s for _, _, s in nx.adamic_adar_index(graph, pairs.t().tolist())])
    hits = Evaluator("ogbl-ddi").eval({"y_pred_pos": adamic_adar(test.test_pos),
                                       "y_pred_neg": adamic_adar(test.test_neg)})["hits@20"]
    assert float(rows["adamic-adar"]["test_hits@20"]) == pytest.approx(hits, abs=1e-9)
    # damgraph's row, as measured (2 threads and 1 alike); the spectral embedding's below it
    # (DAMEmbedding's defaults: projection inputs, random-walk positives, the width settled first; 4 of 16 units)
    assert int(rows["damgraph"]["width"]) == 4 == int(rows["spectral"]["width"])
    assert float(rows["damgraph"]["test_hits@20"]) == pytest.approx(0.680, abs=0.008)
    assert float(rows["damgraph"]["test_auc"]) == pytest.approx(0.813, abs=0.005)
    assert float(rows["spectral"]["test_hits@20"]) == pytest.approx(0.586, abs=0.008)
