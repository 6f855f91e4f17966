"""The ogbl-ddi presets through the harness, benchmarks.ogb_report and benchmarks.ogb_speed, on a small
graph in OGB's layout."""
import csv

import pytest


@pytest.fixture(scope="module")
def ogb_rows(tmp_path_factory, small_ogb_root):
    """benchmarks.linkpred with sage-mlp, fixed 8 and 16 and DAM from 16, 6 epochs (scored at 5 and 6)."""
    from benchmarks import linkpred

    out = tmp_path_factory.mktemp("ogb-rows")
    argv = ["--datasets", "ogbl-ddi", "--data-root", str(small_ogb_root), "--model", "sage-mlp", "--methods",
            "fixed", "dam", "--dims", "8", "16", "--seeds", "0", "--epochs", "6", "--pos-batch-size", "512",
            "--out", str(out)]
    assert linkpred.main(argv) == 0
    with open(out / "linkpred.csv") as f:
        return out, list(csv.DictReader(f))


def test_the_preset_runs_through_the_harness_with_its_protocol(ogb_rows):
    _, rows = ogb_rows
    by_method = {(r["method"], r["dim"]): r for r in rows}
    fixed = by_method[("fixed", "16")]
    assert fixed["val_trajectory"].split()[0].startswith("5:") and fixed["val_trajectory"].split()[1].startswith("6:")
    assert fixed["val_metric"] == "hits@20" and fixed["conv"] == "sage" and fixed["tie_widths"] == "True"
    # a 16-wide table of 300 nodes, two SAGE layers and the predictor, all 16 wide: OGB's counting
    assert int(fixed["num_params"]) == 300 * 16 + 2 * (2 * 16 * 16 + 16) + (16 * 16 + 16 + 16 + 1)
    dam = by_method[("dam", "16")]
    assert dam["gate_widths"].split()[0].startswith("inputs.gate=")  # the node table is gated
    assert int(dam["num_params_compact"]) <= int(dam["num_params"])


def test_ogb_report_tabulates_the_runs_beside_the_leaderboard(ogb_rows, capsys):
    from benchmarks import ogb_report

    out, rows = ogb_rows
    assert ogb_report.main(["--folder", str(out)]) == 0
    text = (out / "ogb_report.md").read_text()
    fixed = next(r for r in rows if r["method"] == "fixed" and r["dim"] == "16")
    hits = 100 * float(fixed["test_hits@20"])
    # the pos_batch_size given departs from the preset
    assert (f"| sage-mlp | fixed | pos_batch_size=512 | 16 | 1 | {int(fixed['epochs'])} (6) | – | {hits:.2f} | "
            f"{int(fixed['num_params']):,} |") in text
    assert "| GraphSAGE (OGB's example, sage-mlp) | 53.90 ± 4.74 | 1,421,057 |" in text
    assert (out / "ogb_curves.png").stat().st_size > 0
    assert ogb_report.main(["--folder", str(out / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ogb_speed_times_both_sides_on_the_same_parameters(tmp_path, small_ogb_root):
    from benchmarks import ogb_speed

    argv = ["--data-root", str(small_ogb_root), "--convs", "gcn", "--widths", "8", "--repeats", "1", "--block", "1",
            "--dam", "--out", str(tmp_path)]
    assert ogb_speed.main(argv) == 0
    with open(tmp_path / "ogb_speed.csv") as f:
        rows = {r["impl"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"ogb-reference", "damgraph", "damgraph-dam"}
    assert rows["ogb-reference"]["num_params"] == rows["damgraph"]["num_params"]  # the same model
    assert int(rows["damgraph-dam"]["num_params"]) == int(rows["damgraph"]["num_params"]) + 3  # three betas
    assert float(rows["ogb-reference"]["ratio"]) == 1.0
    ratio = float(rows["damgraph"]["s_per_step"]) / float(rows["ogb-reference"]["s_per_step"])
    assert float(rows["damgraph"]["ratio"]) == pytest.approx(ratio)


@pytest.mark.parametrize("change, variant", [({}, "preset"), (dict(gate_inputs=False), "gate_inputs=False"),
                                             (dict(val_every=1), "val_every=1"), (dict(lr=0.01), "lr=0.01"),
                                             (dict(rewind_epochs="all"), "rewind_epochs=all")])
def test_ogb_report_names_every_setting_that_departs_from_the_preset(change, variant):
    """A run that sets a preset's setting back to its neutral value (which
    the config id leaves out) is not counted as the preset."""
    from benchmarks.ogb_report import with_budget
    from benchmarks.plan import run_id
    from damgraph.config import model_config

    row = {"model": "sage-mlp", "method": "dam", "config_id": run_id(model_config("sage-mlp", **change), "dam")}
    assert with_budget([row])[0]["variant"] == variant


def test_ogb_report_keeps_each_penalty_weight_of_a_grid_apart():
    """An L1 run at a weight of its grid is its own row, named by the weight
    (the config id leaves the weight out); DAM at the preset's weight is the preset."""
    from benchmarks.ogb_report import with_budget
    from benchmarks.plan import run_id
    from damgraph.config import model_config

    rows = [{"model": "sage-mlp", "method": method, "lam": lam,
             "config_id": run_id(model_config("sage-mlp", gate=gate, lam=float(lam)), method)}
            for method, gate, lam in (("l1", "l1", "0.003"), ("l1", "l1", "0.03"), ("dam", "dam", "0.1"))]
    assert [r["variant"] for r in with_budget(rows)] == ["lam=0.003", "lam=0.03", "preset"]


@pytest.mark.parametrize("model, given, applied", [
    ("gae", (), {"val_metric": "hits@20", "pos_batch_size": 65536}),
    ("gae", ("pos_batch_size",), {"val_metric": "hits@20"}),  # a flag wins
    ("maskgae", (), {"val_metric": "hits@20"}),  # it trains on its masked edges, not on mini-batches of them
    ("sage-mlp", (), {}),  # its preset is OGB's protocol already
])
def test_an_ogb_dataset_sets_its_protocol_where_no_flag_does_and_the_model_takes_it(model, given, applied):
    from benchmarks.plan import dataset_config
    from damgraph.config import model_config

    base = model_config(model)
    config, changed = dataset_config(base, "ogbl-ddi", given)
    assert changed == applied
    assert all(getattr(config, k) == v for k, v in applied.items())
    assert dataset_config(base, "cora", given) == (base, {})
    assert dataset_config(base, "my-graph.txt", given) == (base, {})  # no entry, no protocol


def test_the_gae_on_an_ogb_dataset_runs_its_protocol_without_flags(tmp_path, small_ogb_root, capsys):
    """No --val-metric or --pos-batch-size: the rows select on Hits@20, mini-batch the training edges, say so,
    and are the report's current runs, compared on Hits@20."""
    from benchmarks import linkpred, report

    argv = ["--datasets", "ogbl-ddi", "--data-root", str(small_ogb_root), "--methods", "fixed", "--dims", "4", "8",
            "--seeds", "0", "--out", str(tmp_path)]
    assert linkpred.main(argv) == 0
    assert ("ogbl-ddi: val_metric hits@20, pos_batch_size 65536 (the dataset's protocol); --val-metric, "
            "--pos-batch-size override") in capsys.readouterr().err
    with open(tmp_path / "linkpred.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["val_metric"], r["pos_batch_size"]) for r in rows} == {("hits@20", "65536")}
    assert len(report.current_rows(rows)) == 2
    assert report.dataset_score("ogbl-ddi") == "test_hits@20" and report.dataset_score("cora") == "test_auc"
