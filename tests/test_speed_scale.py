"""The speed and scale benchmarks end to end on tiny graphs (their figures
come from the benchmark runs, not from here: no timing is asserted)."""
import csv
import json

import pytest

from benchmarks import scale, speed


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _speed(out, *flags):
    """``benchmarks.speed`` on a short run (seed 0, 2 blocks of 2 epochs, a 5-epoch reference): its rows."""
    assert speed.main([*flags, "--seeds", "0", "--repeats", "2", "--block", "2", "--reference-epochs", "5",
                       "--out", str(out)]) == 0
    return _rows(out / "speed.csv")


@pytest.mark.slow
def test_speed_writes_the_ratio_table(tmp_path):
    out = tmp_path / "speed"
    rows = _speed(out, "--datasets", "synthetic-400")
    assert [r["impl"] for r in rows] == ["pyg-reference", "damgraph", "damgraph-nogate"]
    for column in ("dataset", "impl", "s_per_epoch", "ratio", "test_auc", "peak_mb"):
        assert column in rows[0]
    reference = float(rows[0]["s_per_epoch"])
    for r in rows:  # per-epoch time relative to the reference's
        assert float(r["s_per_epoch"]) > 0
        assert float(r["ratio"]) == pytest.approx(float(r["s_per_epoch"]) / reference, rel=1e-9)
    # Test AUC of the seed-0 runs, the same on 1 and 2 threads: the reference after its 5 epochs
    # 0.834, damgraph at its learned width 8 of 16 0.837, without the gate 0.853
    assert float(rows[0]["width"]) == float(rows[2]["width"]) == 16.0
    assert abs(float(rows[1]["width"]) - 8.0) <= 2  # the gate's learned width: measured 8
    for r, auc in zip(rows, (0.834, 0.837, 0.853)):
        assert float(r["test_auc"]) == pytest.approx(auc, abs=0.02), r["impl"]
    assert "damgraph_config" in json.loads((out / "speed.json").read_text())
    assert "DAM gate overhead" in (out / "speed.md").read_text() and (out / "speed.png").stat().st_size > 0


@pytest.mark.slow
def test_speed_dim_ablations_and_a_graph_file(tmp_path):
    import networkx as nx

    graph = tmp_path / "graph.txt"
    nx.write_edgelist(nx.powerlaw_cluster_graph(300, 4, 0.3, seed=0), graph, data=False)
    out = tmp_path / "speed"
    rows = {r["impl"]: r for r in _speed(out, "--datasets", str(graph), "--dim", "8", "--ablations")}
    assert {r["dataset"] for r in rows.values()} == {str(graph)} and rows["damgraph"]["num_nodes"] == "300"
    assert list(rows) == ["pyg-reference", "damgraph", "damgraph-nogate", "damgraph-dense-x",
                          "damgraph-edge-index", "damgraph-full-width", "damgraph-two-passes"]
    assert float(rows["pyg-reference"]["width"]) == float(rows["damgraph-nogate"]["width"]) == 8.0
    assert json.loads((out / "speed.json").read_text())["damgraph_config"]["dim"] == 8
    assert all(r["test_auc"] == "nan" for impl, r in rows.items() if impl in speed.ABLATIONS)


@pytest.mark.slow
def test_speed_on_a_graph_without_features_gives_both_sides_learned_inputs(tmp_path, small_ogb_root):
    rows = _speed(tmp_path / "speed", "--datasets", "ogbl-ddi", "--data-root", str(small_ogb_root))
    assert [r["impl"] for r in rows] == ["pyg-reference", "damgraph", "damgraph-nogate"]
    assert all(0.5 < float(r["test_auc"]) <= 1 and float(r["s_per_epoch"]) > 0 for r in rows)


@pytest.mark.slow
def test_speed_times_maskgae_against_its_own_reference(tmp_path):
    out = tmp_path / "speed"
    rows = {r["impl"]: r for r in _speed(out, "--datasets", "synthetic-400", "--maskgae", "--maskgae-epochs", "5")}
    assert list(rows) == ["pyg-reference", "damgraph", "damgraph-nogate", "maskgae-reference", "damgraph-maskgae"]
    maskgae = float(rows["maskgae-reference"]["s_per_epoch"])
    assert float(rows["damgraph-maskgae"]["ratio"]) == pytest.approx(
        float(rows["damgraph-maskgae"]["s_per_epoch"]) / maskgae, rel=1e-9)
    assert float(rows["maskgae-reference"]["width"]) == 128.0 and 1 <= float(rows["damgraph-maskgae"]["width"]) <= 128
    assert all(0.5 < float(r["test_auc"]) <= 1 for r in rows.values())
    assert "| maskgae-reference |" in (out / "speed.md").read_text()


def test_speed_refuses_a_bad_synthetic_name(capsys):
    import pytest

    with pytest.raises(SystemExit) as err:
        speed.parse_args(["--datasets", "synthetic-many"])
    assert err.value.code == 2 and "synthetic-<nodes>" in capsys.readouterr().err


@pytest.mark.slow
def test_scale_runs_both_modes_in_fresh_processes(tmp_path):
    out = tmp_path / "scale"
    assert scale.main(["--sizes", "300", "600", "--epochs", "2", "--batch-size", "512", "--out", str(out)]) == 0
    rows = _rows(out / "scale.csv")
    assert [(r["mode"], r["num_nodes"], r["status"]) for r in rows] == [
        ("full", "300", "ok"), ("full", "600", "ok"), ("precomputed", "300", "ok"), ("precomputed", "600", "ok")]
    assert all(float(r["peak_rss_mb"]) > 0 and int(r["epochs"]) == 2 for r in rows)
    table = (out / "scale.md").read_text()
    assert "slope of log(s/epoch)" in table and "largest graph 600 nodes" in table


def test_scale_slope_is_the_log_log_fit():
    rows = [{"mode": "full", "status": "ok", "num_nodes": n, "num_edges": 5 * n, "s_per_epoch": 1e-6 * n ** 1.5}
            for n in (100_000, 300_000, 1_000_000)]
    assert abs(scale.slope(rows, "full") - 1.5) < 1e-9


def test_cuda_without_a_gpu_is_a_one_line_usage_error(capsys):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from benchmarks import linkpred, nodeclf

    for module in (speed, scale, linkpred, nodeclf):
        with pytest.raises(SystemExit) as err:
            module.parse_args(["--device", "cuda"])
        assert err.value.code == 2 and "no GPU is available" in capsys.readouterr().err
    from damgraph import LinkPredConfig, train_link_prediction

    with pytest.raises(ValueError, match="no GPU is available here; use device 'cpu'"):
        train_link_prediction(None, LinkPredConfig(device="cuda"))
