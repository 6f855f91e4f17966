"""benchmarks.linkpred and benchmarks.nodeclf end to end: rows, resumption, bad input, outputs."""
import json

import pytest

from benchmarks import linkpred, nodeclf
from benchmarks.store import read_rows


def test_linkpred_writes_one_row_per_run_and_resumes(tmp_path, data_root, capsys):
    out = tmp_path / "lp"
    common = ["--datasets", "cora", "--dims", "8", "--methods", "fixed", "dam", "--lams", "0.03",
              "--data-root", str(data_root), "--out", str(out), "--quiet"]
    assert linkpred.main(common + ["--seeds", "0", "1", "--epochs", "5"]) == 0
    rows = read_rows(out / "linkpred.csv")
    assert len(rows) == 4  # 2 methods x 1 dim x 2 seeds
    required = "dataset,model,method,dim,width,seed,lam,test_auc,test_ap,val_auc,epochs,train_s".split(",")
    assert all(column in rows[0] for column in required)
    assert {(r["method"], r["seed"]) for r in rows} == {("fixed", "0"), ("fixed", "1"), ("dam", "0"), ("dam", "1")}
    assert all(r["width"] == "8" for r in rows if r["method"] == "fixed")
    assert all(0.5 < float(r["test_auc"]) <= 1 for r in rows)
    meta = json.loads((out / "linkpred.json").read_text())
    assert meta["config"]["epochs"] == 5 and "torch" in meta["environment"]
    table = (out / "linkpred.md").read_text()
    assert "| cora | gae | inner | dam | 8 | 0.03 | 2 |" in table

    # A second run with one more seed reuses the four stored runs.
    capsys.readouterr()
    assert linkpred.main(common + ["--seeds", "0", "1", "2", "--epochs", "5"]) == 0
    assert "reusing 4 finished run(s)" in capsys.readouterr().out
    again = read_rows(out / "linkpred.csv")
    assert len(again) == 6 and again[:4] == rows
    # Other settings (here the epochs) are other runs, not reused.
    assert linkpred.main(common + ["--seeds", "0", "1", "--epochs", "6"]) == 0
    assert len(read_rows(out / "linkpred.csv")) == 10


def test_missing_dataset_exits_2_with_one_line(tmp_path, capsys):
    code = linkpred.main(["--datasets", "pubmed", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("error: dataset PubMed not found") and "ind.pubmed.x" in err


def test_unwritable_output_exits_2(tmp_path, capsys, data_root):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = linkpred.main(["--datasets", "cora", "--data-root", str(data_root), "--out", str(blocker / "sub")])
    assert code == 2 and "cannot write to --out" in capsys.readouterr().err


@pytest.mark.parametrize("module, bad, message", [
    (linkpred, ["--epochs", "0"], "epochs must be >= 1, got 0"),
    (linkpred, ["--dims", "0"], "dim must be >= 1, got 0"),
    (linkpred, ["--lams", "-1"], "lam must be >= 0, got -1.0"),
    (linkpred, ["--dropout", "1"], "dropout must be in [0, 1), got 1.0"),
    (linkpred, ["--model", "gat"], "invalid choice: 'gat'"),
    (nodeclf, ["--parts", "probe", "probe"], "--parts lists probe more than once"),
    (linkpred, ["--jobs", "0"], "--jobs must be >= 1, got 0"),
    (linkpred, ["--jobs", "100000"], "--jobs 100000 is more than the"),
    (linkpred, ["--shard", "3/2"], "--shard 3/2: I must be between 1 and N"),
    (nodeclf, ["--shard", "one/2"], "--shard must be I/N with whole numbers, such as 1/4, got 'one/2'"),
    (linkpred, ["--merge", "no-such-folder"], "--merge no-such-folder: no linkpred.csv there"),
])
def test_bad_arguments_exit_2_with_one_line(module, bad, message, capsys):
    with pytest.raises(SystemExit) as info:
        module.parse_args(bad)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err and err.startswith("usage: ") is False


def test_nodeclf_runs_the_probe_and_the_supervised_part(tmp_path, data_root):
    out = tmp_path / "nc"
    assert nodeclf.main(["--datasets", "cora", "--dims", "4", "8", "--methods", "fixed", "dam", "pca",
                         "--lams", "0.03", "--gcn-lams", "0.05", "0.1", "--seeds", "0", "--epochs", "5",
                         "--data-root", str(data_root), "--out", str(out), "--quiet"]) == 0
    rows = read_rows(out / "nodeclf.csv")
    assert [(r["part"], r["method"], r["dim"], r["lam"]) for r in rows] == [
        ("probe", "fixed", "4", "0.0"), ("probe", "fixed", "8", "0.0"), ("probe", "dam", "8", "0.03"),
        ("probe", "pca", "4", "0.0"), ("probe", "pca", "8", "0.0"),
        ("supervised", "gcn-fixed", "4", "0.0"), ("supervised", "gcn-fixed", "8", "0.0"),
        ("supervised", "gcn-dam", "8", "0.05"), ("supervised", "gcn-dam", "8", "0.1")]
    # a supervised row is the run train_node_classifier gives with the same settings
    from damgraph import NodeClfConfig, load_dataset
    from damgraph.nodeclf import train_node_classifier

    data = load_dataset("cora", root=data_root, normalize_features=True)[0]
    direct = train_node_classifier(data, NodeClfConfig(hidden=8, lam=0.1, epochs=5, patience=5, seed=0))
    row = rows[-1]
    assert float(row["acc"]) == direct.test_acc and int(row["width"]) == direct.width
    # the probe's accuracy is the linear probe's; pca at 4 really gives 4 columns
    assert all(r["acc"] == r["probe_acc"] for r in rows if r["part"] == "probe")
    assert [r["width"] for r in rows if r["method"] == "pca"] == ["4", "8"]
    report = (out / "nodeclf.md").read_text()
    assert "probe:" in report and "supervised:" in report and (out / "nodeclf.png").stat().st_size > 0
    assert set(json.loads((out / "nodeclf.json").read_text())["config"]) == {"probe", "supervised"}


def test_nodeclf_reuses_the_runs_of_a_linkpred_sweep(tmp_path, data_root, capsys):
    common = ["--datasets", "cora", "--dims", "4", "--methods", "fixed", "--seeds", "0", "--epochs", "5",
              "--data-root", str(data_root), "--quiet"]
    assert linkpred.main(common + ["--out", str(tmp_path / "lp")]) == 0
    capsys.readouterr()
    argv = common + ["--parts", "probe", "--out", str(tmp_path / "nc")]
    assert nodeclf.main(argv + ["--reuse-linkpred", str(tmp_path / "lp" / "linkpred.csv")]) == 0
    out = capsys.readouterr().out
    assert "imported 1 probe run(s)" in out and "reusing 1 finished run(s)" in out
    (lp_row,), (nc_row,) = read_rows(tmp_path / "lp" / "linkpred.csv"), read_rows(tmp_path / "nc" / "nodeclf.csv")
    assert nc_row["acc"] == lp_row["probe_acc"] and nc_row["part"] == "probe"
    assert nodeclf.main(argv + ["--reuse-linkpred", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_linkpred_on_an_ogb_folder_uses_its_split_and_writes_every_output(tmp_path, small_ogb_root, capsys):
    out = tmp_path / "ogb"
    argv = ["--datasets", "ogbl-ddi", "--quick", "--dims", "8", "--seeds", "0", "--methods", "fixed", "dam",
            "dam-prefix", "--epochs", "3", "--val-metric", "hits@20", "--data-root", str(small_ogb_root),
            "--out", str(out), "--quiet"]
    assert linkpred.main(argv) == 0
    rows = read_rows(out / "linkpred.csv")
    assert {r["method"] for r in rows} == {"fixed", "dam", "dam-prefix"} and {r["dataset"] for r in rows} == {"ogbl-ddi"}
    assert all(r["epochs"] == "3" and r["val_metric"] == "hits@20" for r in rows)  # flags given with --quick win
    fixed = next(r for r in rows if r["method"] == "fixed")
    # measured (2 threads and 1 alike): 53 and 37 of 128 positives above the 20th-best negative; one step is 1/128
    assert float(fixed["val_hits@20"]) == pytest.approx(0.414, abs=0.008)
    assert float(fixed["test_hits@20"]) == pytest.approx(0.289, abs=0.008)
    # featureless: the learned 64-wide node inputs count as parameters
    assert int(fixed["num_params"]) == 300 * 64 + (64 * 16 + 16) + (16 * 8 + 8)
    assert "probe_acc" not in rows[0]  # no labels, no probe
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert files == ["linkpred.csv", "linkpred.json", "linkpred.md", "linkpred.png"]
    assert "test Hits@20" in (out / "linkpred.md").read_text()


def test_normalised_features_are_other_runs(tmp_path, data_root):
    out = tmp_path / "lp"
    common = ["--datasets", "cora", "--dims", "8", "--methods", "fixed", "--seeds", "0", "--epochs", "2",
              "--data-root", str(data_root), "--out", str(out), "--quiet"]
    assert linkpred.main(common) == 0 and linkpred.main(common + ["--features", "normalized"]) == 0
    rows = read_rows(out / "linkpred.csv")
    assert len(rows) == 2 and rows[1]["config_id"] == rows[0]["config_id"] + "|features=normalized"
    assert rows[0]["test_auc"] != rows[1]["test_auc"]
    assert json.loads((out / "linkpred.json").read_text())["args"]["features"] == "normalized"
