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
    assert linear_probe(z, data)["probe_acc"] < 0.5  # chance is 1/3
