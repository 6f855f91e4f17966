import math

import pytest

from benchmarks import linkpred
from benchmarks.curves import curve_points, format_validation_choice, plot_curves, summary
from benchmarks.curves import validation_choice as linkpred_choice


def _row(method, dim, seed, auc, used=None, train_s=1.0, shared=False):
    return {"dataset": "g", "method": method, "dim": dim, "lam": 0.0, "seed": seed, "test_auc": auc, "val_auc": 0.5,
            "width": used if used is not None else dim, "train_s": train_s, "shared_train": shared}


ROWS = [
    _row("fixed", 4, 0, 0.80), _row("fixed", 4, 1, 0.82),
    _row("fixed", 16, 0, 0.905), _row("fixed", 16, 1, 0.92),
    _row("fixed", 64, 0, 0.91), _row("fixed", 64, 1, 0.93, train_s=3.0),
    _row("dam", 64, 0, 0.915, used=7), _row("dam", 64, 1, 0.912, used=9, train_s=5.0),
    _row("pca", 4, 0, 0.85, train_s=2.0, shared=True), _row("pca", 4, 1, 0.85, train_s=2.0, shared=True),
    _row("pca", 64, 0, 0.92, train_s=2.0, shared=True), _row("pca", 64, 1, 0.92, train_s=2.0, shared=True),
]


def test_points_are_means_at_the_used_width():
    dam = curve_points(ROWS, "test_auc")["g"]["dam"]
    assert len(dam) == 1 and dam[0]["size"] == 8.0 and dam[0]["score"] == pytest.approx(0.9135)
    assert dam[0]["size_std"] == pytest.approx(2 ** 0.5)


def test_summary_by_hand():
    table = {t["method"]: t for t in summary(ROWS, "test_auc")}
    # the best fixed model (the largest here) scores 0.92 on average: within 1% means >= 0.9108
    assert table["fixed"]["smallest_within_1pct"] == 16 and table["fixed"]["best_at_8_or_fewer"] == pytest.approx(0.81)
    assert table["dam"]["smallest_within_1pct"] == 8.0 and table["dam"]["best_at_8_or_fewer"] == pytest.approx(0.9135)
    assert table["pca"]["smallest_within_1pct"] == 64
    # seconds per seed: fixed 1 + 1 + 2; dam 3; pca one shared model of 2 s
    assert table["fixed"]["curve_train_s"] == pytest.approx(4.0)
    assert table["dam"]["curve_train_s"] == pytest.approx(3.0)
    assert table["pca"]["curve_train_s"] == pytest.approx(2.0)
    # a larger fixed model that scores worse does not lower the bar: the best fixed size sets it
    worse = ROWS + [_row("fixed", 128, 0, 0.85), _row("fixed", 128, 1, 0.86)]
    table = {t["method"]: t for t in summary(worse, "test_auc")}
    assert table["dam"]["smallest_within_1pct"] == 8.0 and table["pca"]["smallest_within_1pct"] == 64


def test_plot_is_written(tmp_path):
    plot_curves(ROWS, "test_auc", tmp_path / "curve.png", "test")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_is_a_small_sweep():
    args = linkpred.parse_args(["--quick"])
    assert args.datasets == ["cora"] and args.seeds == [0, 1] and args.dims == [4, 16, 64]
    assert set(args.methods) == {"fixed", "dam", "pca", "matryoshka", "l1", "l0", "spectral", "dam-prefix",
                                 "dam-nested"}
    assert args.epochs == 200 and args.patience == 50
    given = linkpred.parse_args(["--quick", "--datasets", "photo", "cs", "--epochs", "7", "--methods", "dam"])
    assert given.datasets == ["photo", "cs"] and given.epochs == 7 and given.methods == ["dam"]
    assert given.seeds == [0, 1] and given.patience == 50


def test_default_plan_gated_methods_start_from_the_largest_size_over_their_grids():
    args = linkpred.parse_args([])
    assert args.dims == [2, 4, 8, 16, 32, 64, 128] and args.datasets == ["cora", "citeseer"]
    plan = linkpred.sweep_plan(args, linkpred.base_config(args))
    one = [e for e in plan if e["dataset"] == "cora" and e["seed"] == 0]
    assert args.lams == [0.1]  # DAM: one default run per seed, at the preset's weight
    for method, grid in (("dam", args.lams), ("l1", args.l1_lams), ("l0", args.l0_lams)):
        assert [(e["dim"], e["lam"]) for e in one if e["method"] == method] == [(128, lam) for lam in grid]
    for method in ("fixed", "pca", "matryoshka", "spectral", "dam-prefix", "dam-nested"):
        assert [e["dim"] for e in one if e["method"] == method] == args.dims
    # the one DAM model of dam-prefix and dam-nested: the smallest penalty of the dam grid, unless given
    assert {e["lam"] for e in one if e["method"] in ("dam-prefix", "dam-nested")} == {min(args.lams)}
    grid = linkpred.parse_args(["--lams", "0.03", "0.1", "0.3"])
    assert [e["lam"] for e in linkpred.sweep_plan(grid, linkpred.base_config(grid)) if e["method"] == "dam" and e["seed"] == 0
            and e["dataset"] == "cora"] == [0.03, 0.1, 0.3]
    # the methods without a gate carry the id without the gate settings (the ids stored before those settings)
    ids = {m: {e["config_id"] for e in one if e["method"] == m} for m in ("fixed", "pca", "dam", "l1")}
    # (and L1, trained over a grid of weights, keeps its weight as given on every graph: penalty_edges 0)
    assert ids["fixed"] == ids["pca"] and len(ids["fixed"] | ids["dam"] | ids["l1"]) == 3
    assert "settle=" not in next(iter(ids["fixed"])) and "|settle=50|" in next(iter(ids["dam"]))
    assert next(iter(ids["dam"])).replace("|penalty_edges=4096", "") == next(iter(ids["l1"]))
    prefix = linkpred.parse_args(["--prefix-lams", "0.1"])
    assert {e["lam"] for e in linkpred.sweep_plan(prefix, linkpred.base_config(prefix))
            if e["method"] == "dam-prefix"} == {0.1}


def _gated(method, seed, lam, val, auc, width, **extra):
    return {"dataset": "g", "method": method, "dim": 64, "lam": lam, "seed": seed, "val_auc": val, "test_auc": auc,
            "width": width, **extra}


def test_penalty_chosen_per_seed_on_validation_never_on_test():
    rows = ROWS + [
        # seed 0: lam 0.1 has the best validation AUC (its test AUC is the lower one)
        _gated("dam", 0, 0.03, 0.90, 0.95, 30), _gated("dam", 0, 0.1, 0.91, 0.90, 10),
        # seed 1: lam 0.03 wins on validation
        _gated("dam", 1, 0.03, 0.93, 0.92, 40), _gated("dam", 1, 0.1, 0.92, 0.99, 12),
        # selection on Hits@20 where the run says so
        _gated("l1", 0, 0.01, 0.5, 0.80, 20, val_metric="hits@20", **{"val_hits@20": 0.1}),
        _gated("l1", 0, 0.03, 0.4, 0.85, 10, val_metric="hits@20", **{"val_hits@20": 0.3}),
    ]
    table = {t["method"]: t for t in linkpred_choice(rows)}
    dam = table["dam"]
    assert dam["seeds"] == 2 and dam["lams"] == ["0.0", "0.03", "0.1"] and sorted(dam["chosen"]) == ["0.03", "0.1"]
    assert dam["width"][0] == pytest.approx(25.0) and dam["test_auc"][0] == pytest.approx(0.91)
    assert dam["test_auc"][1] == pytest.approx(0.02 / 2 ** 0.5)  # sample std of 0.90 and 0.92
    assert math.isnan(dam["test_hits@20"][0])  # no chosen run has it
    assert table["l1"]["chosen"] == ["0.03"] and table["l1"]["test_auc"] == (pytest.approx(0.85), 0.0)
    text = format_validation_choice(linkpred_choice(rows))
    assert "| g | dam | 2 | 0.0 0.03 0.1 | 0.03 (1), 0.1 (1) | 25.0 ± 21.2 | 0.9100 ± 0.0141 | – | – |" in text


def test_penalty_choice_leaves_out_incomplete_seeds_and_smaller_sizes():
    rows = [
        _gated("dam", 0, 0.03, 0.90, 0.95, 30), _gated("dam", 0, 0.1, 0.90, 0.90, 10),  # a tie: the smaller width
        _gated("dam", 1, 0.03, 0.93, 0.92, 40),  # lam 0.1 missing on seed 1
        _gated("dam", 2, 0.03, "", 0.92, 40), _gated("dam", 2, 0.1, 0.92, 0.99, 12),  # no validation score
        {**_gated("dam", 0, 0.3, 0.99, 0.5, 3), "dim": 16},  # not from the largest size
    ]
    (dam,) = linkpred_choice(rows)
    assert dam["lams"] == ["0.03", "0.1"] and dam["seeds"] == 1 and dam["incomplete"] == 2
    assert dam["chosen"] == ["0.1"] and dam["width"] == (10.0, 0.0) and dam["test_auc"] == (pytest.approx(0.90), 0.0)
    assert "| g | dam | 1 (2 incomplete left out) | 0.03 0.1 | 0.1 (1) | 10.0 ± 0.0 |" in format_validation_choice([dam])
