from dataclasses import replace

import pytest
import torch

from benchmarks.sizing import METHODS, Job
from conftest import EARLIER_GATES
from damgraph import LinkPredConfig, split_edges


@pytest.fixture(scope="module")
def cora_job(cora):
    return lambda dim, cache: Job(split_edges(cora, 0), LinkPredConfig(dim=dim, epochs=25, patience=25, **EARLIER_GATES),
                                  [4, 16], "cora", cache)


def test_pca_points_use_k_columns_and_share_one_model(cora_job):
    cache = {}
    low = METHODS["pca"].run(cora_job(4, cache))
    full = METHODS["pca"].run(cora_job(16, cache))
    assert len(cache) == 1  # one base model for the whole curve
    assert low["width"] == 4 and full["width"] == 16 and low["shared_train"]
    assert low["num_params"] - full["num_params"] == (4 - 16) * 16  # 16-dim components dropped
    # all 16 components reconstruct the embedding: the same scores as the fixed 16-dim model
    fixed = METHODS["fixed"].run(cora_job(16, {}))
    assert full["test_auc"] == pytest.approx(fixed["test_auc"], abs=1e-6)
    assert low["test_auc"] < full["test_auc"]


def test_dam_and_fixed_report_the_width_they_use(cora_job):
    dam = METHODS["dam"].run(cora_job(16, {}))
    assert dam["width"] <= 16 and dam["gate_widths"] == f"encoder.out_gate={dam['width']}"
    assert METHODS["fixed"].run(cora_job(4, {}))["width"] == 4


# Measured scores of these short runs (Cora, split seed 0). Test AUC moved by at most 1.3e-4 and probe
# accuracy (1000 test nodes, 7 classes, largest class 32%) by at most 0.006 between 1 and 2 threads; the
# margins, AUC 0.02 and probe 0.05, leave room for other BLAS builds while catching a broken method.
AUC, PROBE = dict(abs=0.02), dict(abs=0.05)


@pytest.mark.parametrize("method, auc, probe", [("l1", 0.910, 0.742), ("l0", 0.901, 0.750)])
def test_l1_and_l0_report_the_width_they_use(cora_job, method, auc, probe):
    row = METHODS[method].run(cora_job(16, {}))
    assert row["gate"] == method
    assert row["width"] == int(row["gate_widths"].split("=")[1]) <= 16
    assert row["test_auc"] == pytest.approx(auc, **AUC) and row["probe_acc"] == pytest.approx(probe, **PROBE)
    assert row["probe_C"] in (0.01, 0.1, 1.0, 10.0, 100.0)


def test_matryoshka_prefixes_and_points(cora_job):
    from damgraph.linkpred import matryoshka_prefixes

    assert matryoshka_prefixes(16) == [2, 4, 8, 16] and matryoshka_prefixes(12) == [2, 4, 8, 12]
    assert matryoshka_prefixes(2) == [2]
    cache = {}
    low = METHODS["matryoshka"].run(cora_job(4, cache))
    full = METHODS["matryoshka"].run(cora_job(16, cache))
    assert len(cache) == 1 and low["width"] == 4 and full["width"] == 16 and low["matryoshka"]
    # measured 0.838 and 0.866: the 4-dim prefix scores below the whole embedding
    assert low["test_auc"] == pytest.approx(0.838, **AUC) and full["test_auc"] == pytest.approx(0.866, **AUC)
    assert low["test_auc"] < full["test_auc"]


@pytest.mark.parametrize("method, auc", [("pca", 0.792), ("matryoshka", 0.749), ("l0", 0.702), ("l1", 0.785)])
def test_every_method_runs_on_vgae_and_reports_its_width(cora, method, auc):
    job = Job(split_edges(cora, 0), LinkPredConfig(model="vgae", dim=8, epochs=10, patience=10, **EARLIER_GATES), [4, 8], "cora", {})
    row = METHODS[method].run(job)
    assert row["model"] == "vgae" and row["test_auc"] == pytest.approx(auc, **AUC)
    if method in ("pca", "matryoshka"):
        assert row["width"] == 8
        small = METHODS[method].run(Job(job.split, LinkPredConfig(model="vgae", dim=4, epochs=10, patience=10, **EARLIER_GATES),
                                    [4, 8], "cora", job.cache))
        assert small["width"] == 4 and len(job.cache) == 1
    else:
        assert 1 <= row["width"] <= 8 and row["gate_widths"] == f"encoder.out_gate={row['width']}"


MASKGAE_SCORES = {  # measured (test AUC, probe accuracy) at 8 dimensions; test AUC at 4
    "fixed": (0.815, 0.588), "dam": (0.820, 0.599), "pca": (0.815, 0.574, 0.803),
    "matryoshka": (0.854, 0.709, 0.762), "l0": (0.853, 0.714), "l1": (0.812, 0.578)}


@pytest.mark.parametrize("method", ["fixed", "dam", "pca", "matryoshka", "l0", "l1"])
def test_every_method_runs_on_maskgae_with_its_mlp_decoder(cora, method):
    from damgraph import model_config

    config = lambda dim: model_config("maskgae", dim=dim, epochs=10, patience=10, **{**EARLIER_GATES, "lam": 0.1})  # noqa: E731
    job = Job(split_edges(cora, 0), config(8), [4, 8], "cora", {})
    row = METHODS[method].run(job)
    assert row["model"] == "maskgae" and row["decoder"] == "mlp" and row["masking"] == "path"
    auc, probe, *small_auc = MASKGAE_SCORES[method]
    assert row["test_auc"] == pytest.approx(auc, **AUC) and row["probe_acc"] == pytest.approx(probe, **PROBE)
    if method in ("pca", "matryoshka"):
        small = METHODS[method].run(Job(job.split, config(4), [4, 8], "cora", job.cache))
        assert small["width"] == 4 and small["test_auc"] == pytest.approx(small_auc[0], **AUC)
    elif method != "fixed":
        assert 1 <= row["width"] <= 8 and row["gate_widths"] == f"encoder.out_gate={row['width']}"


@pytest.mark.parametrize("method, learned, auc_low, auc_full", [("dam-prefix", 11, 0.878, 0.907),
                                                                 ("dam-nested", 7, 0.889, 0.898)])
def test_dam_prefix_scores_the_top_gates_of_one_model(cora, method, learned, auc_low, auc_full):
    split, cache = split_edges(cora, 0), {}
    config = LinkPredConfig(dim=16, epochs=25, patience=25, **{**EARLIER_GATES, "lam": 0.01})
    job = lambda dim: Job(split, replace(config, dim=dim), [4, 16], "cora", cache)  # noqa: E731
    low, full = METHODS[method].run(job(4)), METHODS[method].run(job(16))
    assert len(cache) == 1 and low["shared_train"]  # one DAM model for the whole curve
    assert low["learned_width"] == full["learned_width"] == learned and low["base_dim"] == 16
    assert low["width"] == 4 and full["width"] == learned  # above the learned width: the whole learned embedding
    assert low["test_auc"] == pytest.approx(auc_low, **AUC) and full["test_auc"] == pytest.approx(auc_full, **AUC)
    assert low["matryoshka"] == (method == "dam-nested") and low["gate"] == "dam"
    # the whole learned block scores as the dam model itself (its closed units are zeros)
    model = next(iter(cache.values()))
    assert full["test_auc"] == pytest.approx(model.result.test_auc, abs=1e-6)


def test_dam_blocks_are_the_top_columns():
    from damgraph.linkpred import matryoshka_prefix

    z = torch.arange(12.0).view(2, 6)
    assert matryoshka_prefix(z, 2, top=True).tolist() == [[4.0, 5.0], [10.0, 11.0]]
    assert matryoshka_prefix(z, 2).tolist() == [[0.0, 1.0], [6.0, 7.0]]
    padded = matryoshka_prefix(z, 2, decoder="mlp", top=True)
    assert padded.tolist() == [[0.0, 0.0, 0.0, 0.0, 4.0, 5.0], [0.0, 0.0, 0.0, 0.0, 10.0, 11.0]]


def test_the_grid_baselines_take_their_weight_as_given_on_every_graph(cora, monkeypatch):
    """L1 and L0 pick a weight of their grid per seed on validation, so their runs and ids keep penalty_edges 0;
    DAM's one run is scaled by the graph's training edges."""
    from benchmarks import linkpred, plan
    from damgraph.config import model_config

    preset = model_config("gae")
    assert "penalty_edges=4096" in plan.run_id(preset, "dam")
    for name in ("l1", "l0"):
        assert plan.run_id(preset, name) == plan.run_id(replace(preset, penalty_edges=0), name)
        assert "penalty_edges" not in plan.run_id(preset, name)
    seen = {}
    for name in ("l1", "dam"):
        monkeypatch.setitem(METHODS, name, replace(METHODS[name], run=lambda job, name=name: seen.setdefault(
            name, job.config) and {}))
    args = linkpred.parse_args(["--datasets", "cora", "--methods", "l1", "dam", "--dims", "16"])
    runner = plan.sweep_runner(args, plan.base_config(args), {"cora": cora})
    for name in ("l1", "dam"):
        runner({"dataset": "cora", "seed": 0, "method": name, "dim": 16, "lam": 0.01})
    assert seen["l1"].penalty_edges == 0 and seen["dam"].penalty_edges == 4096
