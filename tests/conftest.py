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
