"""Shared fixtures: the Planetoid data root and small hand-made graphs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    """The first of ``$DAMGRAPH_DATA``, ``data/`` and ``../shared/data/graphs``
    that holds Cora; else the default root, where PyG downloads it (networked
    machines only)."""
    from damgraph.datasets import resolve_root

    candidates = [os.environ.get("DAMGRAPH_DATA"), REPO / "data", REPO.parent / "shared/data/graphs"]
    for root in candidates:
        if root and (Path(root) / "Cora" / "raw" / "ind.cora.graph").is_file():
            return Path(root)
    return resolve_root()


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    root = _data_root()
    # Data roots are processed through a cache copy: keep that inside pytest's tmp.
    os.environ.setdefault("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    return root


@pytest.fixture(scope="session")
def cora(data_root):
    from damgraph import load_dataset

    return load_dataset("cora", root=data_root)[0]


@pytest.fixture(scope="session")
def cora_normalized(data_root):
    from damgraph import load_dataset

    return load_dataset("cora", root=data_root, normalize_features=True)[0]


@pytest.fixture
def tiny_graph() -> Data:
    """Two triangles joined by an edge, 6 nodes with 5 random features."""
    gen = torch.Generator().manual_seed(0)
    edges = torch.tensor([[0, 1], [1, 2], [2, 0], [3, 4], [4, 5], [5, 3], [2, 3]]).t()
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    return Data(x=torch.randn(6, 5, generator=gen), edge_index=edge_index)


def write_ogb_link_folder(folder: Path, train, valid, test) -> Path:
    """A dataset folder in OGB's link-prediction layout (``raw/edge.csv.gz``,
    ``split/target/*.pt`` dicts of NumPy arrays): :obj:`train` an ``[E, 2]``
    array, :obj:`valid` and :obj:`test` ``(positives, negatives)`` pairs."""
    import gzip

    import numpy as np

    (folder / "raw").mkdir(parents=True)
    (folder / "split" / "target").mkdir(parents=True)
    with gzip.open(folder / "raw" / "edge.csv.gz", "wt") as f:
        f.write("".join(f"{a},{b}\n" for a, b in np.asarray(train)))
    torch.save({"edge": np.asarray(train)}, folder / "split" / "target" / "train.pt")
    for part, (pos, neg) in (("valid", valid), ("test", test)):
        torch.save({"edge": np.asarray(pos), "edge_neg": np.asarray(neg)}, folder / "split" / "target" / f"{part}.pt")
    return folder


@pytest.fixture(scope="session")
def small_ogb_root(tmp_path_factory) -> Path:
    """A data root holding a 300-node featureless graph as ``ogbl_ddi``:
    10% of its edges for validation, 10% for test, each against as many non-edges."""
    from damgraph.synthetic import community_graph

    data = community_graph(300, seed=0)
    edges = data.edge_index[:, data.edge_index[0] < data.edge_index[1]].t()
    edges = edges[torch.randperm(edges.size(0), generator=torch.Generator().manual_seed(0))]
    n = edges.size(0) // 10
    gen = torch.Generator().manual_seed(1)
    non_edges = torch.randint(300, (4 * n, 2), generator=gen)
    keys = set((edges[:, 0] * 300 + edges[:, 1]).tolist()) | set((edges[:, 1] * 300 + edges[:, 0]).tolist())
    non_edges = torch.stack([p for p in non_edges if p[0] != p[1] and int(p[0] * 300 + p[1]) not in keys][:2 * n])
    root = tmp_path_factory.mktemp("ogb")
    write_ogb_link_folder(root / "ogbl_ddi", edges[2 * n:].numpy(), (edges[:n].numpy(), non_edges[:n].numpy()),
                          (edges[n:2 * n].numpy(), non_edges[n:].numpy()))
    return root


#: The gate settings that short test runs were measured with: the gates and model selection together, the
#: paper's alpha and the earlier penalty weight (a run of 10-30 epochs is too short to settle a width).
EARLIER_GATES = dict(lam=0.03, gate_alpha=1.0, gate_delay=0, settle=0)
