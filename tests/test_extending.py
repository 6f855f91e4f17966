"""Extending damgraph from outside the package: a sizing method added in one
file (here, this test module) runs through benchmarks.linkpred, its penalty
flag and plan derived from its entry (docs/extending.md)."""
import csv
from dataclasses import replace

import pytest


@pytest.fixture
def toy_method():
    """A gated toy method: DAM with the paper's gentler gate, one run per --toy-lams weight."""
    from benchmarks.sizing import METHODS, Penalty, SizingMethod, register, trained_row

    def run(job):
        return trained_row(job, replace(job.config, gate="dam", gate_alpha=1.0))

    method = register(SizingMethod("toy-dam", run, "DAM at alpha 1", gated=True,
                                   penalty=Penalty("toy_lams", "penalty weights of toy-dam", (0.05, 0.5))))
    yield method
    del METHODS["toy-dam"]


def test_a_sizing_method_added_outside_the_package_runs_through_the_harness(toy_method, tmp_path, data_root):
    from benchmarks import linkpred
    from benchmarks.plan import run_id

    args = linkpred.parse_args(["--methods", "toy-dam", "--datasets", "cora"])
    assert args.toy_lams == [0.05, 0.5]  # its flag, with its default grid
    with pytest.raises(SystemExit):
        linkpred.parse_args(["--methods", "toy-dam", "--toy-lams", "-1"])  # checked like the built-in grids
    argv = ["--datasets", "cora", "--data-root", str(data_root), "--methods", "toy-dam", "fixed", "--dims", "4", "8",
            "--seeds", "0", "--epochs", "3", "--toy-lams", "0.05", "0.5", "--out", str(tmp_path)]
    assert linkpred.main(argv) == 0
    with open(tmp_path / "linkpred.csv") as f:
        rows = list(csv.DictReader(f))
    toy = [r for r in rows if r["method"] == "toy-dam"]
    assert sorted(float(r["lam"]) for r in toy) == [0.05, 0.5] and {r["dim"] for r in toy} == {"8"}  # from the largest
    assert {r["gate_alpha"] for r in toy} == {"1.0"} and all(r["gate_widths"] for r in toy)
    base = linkpred.base_config(linkpred.parse_args(argv[:-2]))
    assert {r["config_id"] for r in toy} == {run_id(base, "toy-dam")} != run_id(base, "fixed")  # gated: its own id
    assert "toy-dam" in (tmp_path / "linkpred.md").read_text()


class GraphFree(__import__("torch").nn.Linear):
    """A toy layer kind: a linear map of each node's own input, no messages."""


@pytest.fixture
def toy_layer():
    """The layer kind 'graph-free', registered from outside the package in one entry."""
    from damgraph import config
    from damgraph.layers import LAYERS, LayerKind, register_layer, sliced_weight

    def cut(layer, out_index=None, out_scale=None, in_index=None, in_scale=None, bias_shift=None):
        weight = sliced_weight(layer.weight, in_index, in_scale, out_index)
        bias = layer.bias.detach() if out_index is None else layer.bias.detach()[out_index]
        if out_scale is not None:
            weight, bias = weight * out_scale.unsqueeze(1), bias * out_scale
        if bias_shift is not None:
            bias = bias + bias_shift
        new = GraphFree(weight.size(1), weight.size(0))
        with __import__("torch").no_grad():
            new.weight.copy_(weight)
            new.bias.copy_(bias)
        return new

    kind = register_layer(LayerKind("graph-free", (GraphFree,), GraphFree, lambda edges, n, w: edges,
                                    lambda layer, x, graph, w: layer(x), cut))
    yield kind
    del LAYERS["graph-free"]
    config.CONVS.remove("graph-free")


def test_a_layer_kind_added_outside_the_package_builds_trains_and_compacts(toy_layer, tmp_path, data_root):
    import torch

    from benchmarks import linkpred
    from damgraph import GNNEncoder, compact

    encoder = GNNEncoder(5, 4, hidden_channels=6, conv="graph-free", gate_hidden=True)
    assert all(isinstance(c, GraphFree) for c in [*encoder.convs, encoder.conv_out])
    with torch.no_grad():
        encoder.hidden_gates[0].beta.fill_(-2.0)
        encoder.out_gate.beta.fill_(-3.0)
    x, edges = torch.randn(7, 5), torch.tensor([[0, 1], [1, 0]])
    small = compact(encoder)
    encoder.eval(), small.eval()
    z = encoder(x, edges)
    torch.testing.assert_close(small(x, edges), z[:, encoder.out_gate.open_indices()], rtol=1e-5, atol=1e-6)
    assert small.convs[0].out_features == encoder.hidden_gates[0].num_open < 6
    argv = ["--datasets", "cora", "--data-root", str(data_root), "--methods", "dam", "fixed", "--dims", "8",
            "--seeds", "0", "--epochs", "3", "--conv", "graph-free", "--out", str(tmp_path)]
    assert linkpred.main(argv) == 0
    rows = (tmp_path / "linkpred.csv").read_text().splitlines()
    assert len(rows) == 3 and all("conv=graph-free" in row for row in rows[1:])


@pytest.fixture
def toy_dataset():
    """A dataset 'toy-rings' (two rings of 60 nodes joined by one edge, 8 random features, the ring as label),
    registered from outside the package in one entry."""
    import torch
    from torch_geometric.data import Data

    from damgraph.datasets import DATASET_NAMES, DATASETS, DatasetEntry, register_dataset

    def load(root, normalize_features, download):
        ring = torch.arange(60)
        edges = [torch.stack([ring, (ring + 1) % 60]), torch.stack([ring, (ring + 2) % 60])]
        edges = torch.cat(edges + [e + 60 for e in edges] + [torch.tensor([[0], [60]])], dim=1)
        x = torch.randn(120, 8, generator=torch.Generator().manual_seed(0))
        return [Data(x=x, edge_index=torch.cat([edges, edges.flip(0)], dim=1), y=(torch.arange(120) >= 60).long())]

    entry = register_dataset(DatasetEntry("toy-rings", load, lambda: [], labels=True))
    yield entry
    del DATASETS["toy-rings"]
    DATASET_NAMES.remove("toy-rings")


def test_a_dataset_added_outside_the_package_runs_through_the_harness(toy_dataset, tmp_path):
    from benchmarks import linkpred
    from damgraph import load_dataset

    assert load_dataset("TOY-RINGS")[0].num_nodes == 120  # by name, any case
    argv = ["--datasets", "toy-rings", "--methods", "fixed", "dam", "--dims", "4", "8", "--seeds", "0",
            "--epochs", "3", "--out", str(tmp_path)]
    assert linkpred.main(argv) == 0
    rows = list(csv.DictReader(open(tmp_path / "linkpred.csv")))
    assert len(rows) == 3 and {r["dataset"] for r in rows} == {"toy-rings"}
    assert all(0.0 <= float(r["test_auc"]) <= 1.0 for r in rows)
