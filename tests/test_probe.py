import torch
from torch_geometric.data import Data

from damgraph.probe import linear_probe


def _data(n=60, classes=3):
    y = torch.arange(n) % classes
    mask = lambda lo, hi: (torch.arange(n) >= lo) & (torch.arange(n) < hi)  # noqa: E731
    return Data(y=y, train_mask=mask(0, 30), val_mask=mask(30, 45), test_mask=mask(45, 60), num_nodes=n)


def test_separable_embeddings_are_classified_perfectly():
    data = _data()
    noise = torch.randn(60, 3, generator=torch.Generator().manual_seed(0))
    z = torch.nn.functional.one_hot(data.y, 3).float() + 0.01 * noise
    out = linear_probe(z, data)
    assert out["probe_acc"] == 1.0 and out["probe_val_acc"] == 1.0


def test_uninformative_embeddings_score_near_chance():
    data = _data(600)
    data.train_mask[:] = False
    data.train_mask[:300] = True
    data.val_mask[:] = False
    data.val_mask[300:450] = True
    data.test_mask[:] = False
    data.test_mask[450:] = True
    z = torch.randn(600, 4, generator=torch.Generator().manual_seed(1))
    # chance is 1/3; 150 test nodes give a standard error of 0.038 (measured 0.36)
    assert abs(linear_probe(z, data)["probe_acc"] - 1 / 3) < 0.12


def test_probe_on_cora_ranks_embeddings_by_what_they_carry(cora_normalized):
    """Cora's public split (140 training nodes, 7 classes, largest test class 32%): propagated
    features (A^2 X, what a 2-layer GCN sees) measured 0.672, raw bag-of-words 0.473, 16 random
    dimensions 0.134 (1000 test nodes: a standard error of ~0.015)."""
    from damgraph.propagation import propagate_features

    data = cora_normalized
    smoothed = propagate_features(data, hops=2)[:, -data.num_features:]
    good, raw = linear_probe(smoothed, data), linear_probe(data.x, data)
    noise = linear_probe(torch.randn(data.num_nodes, 16, generator=torch.Generator().manual_seed(0)), data)
    assert good["probe_acc"] > 0.62 and abs(raw["probe_acc"] - 0.473) < 0.05 and noise["probe_acc"] < 0.2
    assert good["probe_acc"] > raw["probe_acc"] + 0.1
    assert good["probe_C"] == 0.01 and abs(good["probe_val_acc"] - 0.678) < 0.05  # chosen on validation
