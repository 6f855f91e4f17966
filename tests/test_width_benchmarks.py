"""The width benchmarks: benchmarks.report's 1% rule, benchmarks.stability's changes, benchmarks.synthetic's graphs."""
import pytest


def _stored(dataset, model, method, dim, seed, width, auc, config_id, lam=0.0, epochs=100):
    return {"dataset": dataset, "model": model, "method": method, "dim": dim, "seed": seed, "lam": lam,
            "config_id": config_id, "width": width, "test_auc": auc, "best_epoch": epochs - 50, "epochs": epochs}


def _curve_rows():
    """Fixed 8/16/32 at 0.90/0.951/0.96 and DAM at 11 and 13 units, 0.955, on seeds 0 and 1: the line is 0.9504,
    the smallest fixed size within it 16; and the two config ids (fixed, DAM) of today's GAE."""
    from benchmarks.plan import PER_RUN
    from damgraph.config import config_id, gateless, model_config

    plain, gated = (config_id(c, PER_RUN) for c in (gateless(model_config("gae")), model_config("gae")))
    rows = [_stored("g", "gae", "fixed", d, s, d, auc, plain) for s in (0, 1) for d, auc in ((8, 0.90), (16, 0.951), (32, 0.96))]
    rows += [_stored("g", "gae", "dam", 128, s, w, 0.955, gated, lam=0.1) for s, w in ((0, 11), (1, 13))]
    return rows, plain, gated


def test_report_keeps_the_current_defaults_runs_and_applies_the_one_percent_rule(tmp_path, capsys):
    """DAM at 12 units and 0.955 passes; a DAM run of another config id (an earlier protocol) is left out."""
    from benchmarks import report
    from benchmarks.store import write_csv

    rows, _, gated = _curve_rows()
    rows += [_stored("g", "gae", "dam", 128, 0, 40, 0.5, gated + "|old", lam=0.1)]
    write_csv(tmp_path / "linkpred.csv", rows)
    assert report.main(["--folders", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| g | gae | test_auc | 2 | 32: 0.9600 ± 0.0000 | 0.9504 | 16 (0.9510) | 12.0 ± 1.4 | 0.9550 ± 0.0000 | yes | 0 of 8 |" \
        in text
    assert (tmp_path / "out" / "g-gae.png").is_file()
    rows[-2]["test_auc"] = rows[-3]["test_auc"] = 0.94  # below the line now
    write_csv(tmp_path / "linkpred.csv", rows)
    assert report.main(["--folders", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert "| no: score below the line |" in (tmp_path / "out" / "report.md").read_text()
    assert report.main(["--folders", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_compares_on_the_seeds_where_dam_and_every_fixed_size_ran(tmp_path, capsys):
    """A sweep stopped midway: seed 2 has the fixed 8 (at 0.99) and 16 (0.95) only; counted, they would move the
    8's mean to 0.93, the 16's to 0.9507 and the runs to 10. They are left out, and said so."""
    from benchmarks import report
    from benchmarks.store import write_csv

    rows, plain, _ = _curve_rows()
    rows += [_stored("g", "gae", "fixed", d, 2, d, auc, plain) for d, auc in ((8, 0.99), (16, 0.95))]
    write_csv(tmp_path / "linkpred.csv", rows)
    assert report.main(["--folders", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert "| g | gae | test_auc | 2 | 32: 0.9600 ± 0.0000 | 0.9504 | 16 (0.9510) | 12.0 ± 1.4 | 0.9550 ± 0.0000 | yes | 0 of 8 |" \
        in (tmp_path / "out" / "report.md").read_text()
    assert "g gae: 2 runs of seeds without every fixed size and DAM left out (seeds 2)" in capsys.readouterr().err


def test_report_compares_dam_at_a_setting_under_study_against_the_same_fixed_curve(tmp_path, capsys):
    """--dam-setting penalty_edges=0: the DAM runs with that setting replace the preset's, the fixed curve stays."""
    from benchmarks import report
    from benchmarks.plan import PER_RUN
    from benchmarks.store import write_csv
    from damgraph.config import config_id, gateless, model_config

    plain, gated = (config_id(c, PER_RUN) for c in (gateless(model_config("gae")), model_config("gae")))
    scaled = config_id(model_config("gae", penalty_edges=0), PER_RUN)
    assert scaled != gated and config_id(gateless(model_config("gae", penalty_edges=0)), PER_RUN) == plain
    rows = [_stored("g", "gae", "fixed", d, 0, d, auc, plain) for d, auc in ((8, 0.90), (16, 0.951), (32, 0.96))]
    rows += [_stored("g", "gae", "dam", 128, 0, 11, 0.94, gated, lam=0.1),
             _stored("g", "gae", "dam", 128, 0, 14, 0.955, scaled, lam=0.1)]
    write_csv(tmp_path / "linkpred.csv", rows)
    out = str(tmp_path / "out")
    assert report.main(["--folders", str(tmp_path), "--out", out]) == 0
    assert "| 11.0 ± 0.0 | 0.9400 ± 0.0000 | no: score below the line |" in (tmp_path / "out" / "report.md").read_text()
    assert report.main(["--folders", str(tmp_path), "--dam-setting", "penalty_edges=0", "--out", out]) == 0
    assert "| 14.0 ± 0.0 | 0.9550 ± 0.0000 | yes |" in (tmp_path / "out" / "report.md").read_text()
    assert report.main(["--folders", str(tmp_path), "--dam-setting", "penalty_edges=many", "--out", out]) == 2
    assert "penalty_edges must be an integer, got 'many'" in capsys.readouterr().err


def test_stability_changes_multiply_one_setting_and_keep_the_schedule():
    from benchmarks.stability import SCHEDULES, changed
    from damgraph.config import model_config

    base = model_config("gae")
    assert changed(base, "beta_lr / 4").beta_lr == pytest.approx(base.beta_lr / 4)
    longer = changed(base, "epochs x 4")
    assert (longer.epochs, longer.patience) == (4 * base.epochs, 4 * base.patience) and longer.lr == base.lr
    joint = changed(model_config("gae", **SCHEDULES["joint"]), "lr x 4")
    assert (joint.settle, joint.gate_delay, joint.gate_alpha, joint.lr) == (0, 0, 1.0, 4 * base.lr)


def test_synthetic_graphs_by_name_and_the_knee_rule():
    from benchmarks import synthetic

    assert synthetic.make_graph("sbm-4").num_nodes == synthetic.make_graph("rdpg-2").num_nodes == 2048
    with pytest.raises(ValueError, match="use sbm-<communities> or rdpg-<rank>"):
        synthetic.make_graph("ring-4")
    rows = [{"graph": "sbm-8", "method": "fixed", "dim": d, "test_auc": a} for d, a in ((4, 0.80), (8, 0.85), (16, 0.852))]
    rows.append({"graph": "sbm-8", "method": "dam", "dim": 128, "width": 9, "test_auc": 0.849})
    (s,) = synthetic.summary(rows)
    assert (s["knee"], s["in_range"], s["within"], s["at_knee"]) == (8, True, True, True)


def test_report_gives_the_other_methods_a_point_per_size_or_per_penalty_weight():
    """PCA at 8 and 16 is a curve of two points; L1 at two weights is two points, each its seeds' mean and std;
    fixed and DAM are not among them, nor a row without the score."""
    from benchmarks.report import other_methods

    rows = [_stored("g", "gae", "pca", d, s, d, auc, "x") for s in (0, 1) for d, auc in ((8, 0.8), (16, 0.9))]
    rows += [_stored("g", "gae", "l1", 128, s, w, auc, "x", lam=lam)
             for lam, s, w, auc in ((0.01, 0, 30, 0.90), (0.01, 1, 34, 0.92), (0.03, 0, 10, 0.85))]
    rows += [_stored("g", "gae", "fixed", 8, 0, 8, 0.9, "x"), _stored("g", "gae", "dam", 128, 0, 12, 0.9, "x"),
             _stored("g", "gae", "l0", 128, 0, 12, "", "x", lam=0.01)]
    points = other_methods(rows, "test_auc")
    assert points["pca"] == [(8.0, 0.0, 0.8, 0.0), (16.0, 0.0, 0.9, 0.0)]
    (w, w_std, auc, auc_std), = points["l1 lam=0.01"]
    assert (w, auc) == pytest.approx((32.0, 0.91)) and (w_std, auc_std) == pytest.approx((2 ** 1.5, 0.02 ** 0.5 * 0.1))
    assert points["l1 lam=0.03"] == [(10.0, 0.0, 0.85, 0.0)]
    assert set(points) == {"pca", "l1 lam=0.01", "l1 lam=0.03"}


def test_the_sweeps_record_the_datasets_feature_decision(data_root, capsys):
    """The helper benchmarks.linkpred and benchmarks.stability load through records whether the features
    were row-normalised (Photo's count rows by its entry's decision), which decides the ids' suffix."""
    import torch

    from benchmarks.plan import load_for_sweep

    if not (data_root / "Photo" / "raw").is_dir():
        pytest.skip(f"photo is not in the data root {data_root}")
    normalized = {}
    photo = load_for_sweep("photo", data_root, "auto", normalized)
    load_for_sweep("cora", data_root, "auto", normalized)
    load_for_sweep("citeseer", data_root, "normalized", normalized)
    assert normalized == {"photo": True, "cora": False, "citeseer": True}
    mass = photo.x.sum(1)[photo.x.sum(1) > 0]
    assert torch.allclose(mass, torch.ones_like(mass))  # rows of mass one
    assert "photo: node features row-normalised" in capsys.readouterr().err


@pytest.mark.parametrize("features, suffixed", [("normalized", True), ("raw", False)])
def test_stability_runs_on_normalised_features_get_their_own_ids(data_root, tmp_path, monkeypatch, features,
                                                                  suffixed):
    from benchmarks import stability
    from benchmarks.plan import NORMALIZED_FEATURES

    class Planned(Exception):
        pass

    def capture(path, plan, *args, **kwargs):
        raise Planned(plan)

    monkeypatch.setattr(stability, "run_sweep", capture)
    with pytest.raises(Planned) as planned:
        stability.main(["--datasets", "cora", "--seeds", "0", "--features", features, "--data-root", str(data_root),
                        "--out", str(tmp_path)])
    ids = [entry["config_id"] for entry in planned.value.args[0]]
    assert ids and all(i.endswith(NORMALIZED_FEATURES) == suffixed for i in ids)
