"""Edge splits and negative sampling: the standard GAE split of a graph's
edges, the validation-only split of a user's graph, and the uniform sampler
of non-edges that training draws from every step."""
from __future__ import annotations

import copy
import random
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import RandomLinkSplit

Split = Tuple[Data, Data, Data]


def split_edges(
    data: Data, seed: int, val_ratio: float = 0.05, test_ratio: float = 0.10, undirected: bool = True,
    mrr_negatives: int = 100,
) -> Tuple[Data, Data, Data]:
    """The standard GAE split (Kipf and Welling, 2016) with PyG's
    :class:`~torch_geometric.transforms.RandomLinkSplit`: undirected edges,
    5% validation and 10% test, each with as many fixed negatives. For MRR,
    the test split also gets :obj:`mrr_negatives` random tail corruptions
    per positive (``test.mrr_neg_dst``, shape ``[P, mrr_negatives]``,
    unfiltered, as OGB's ``ogbl-citation2``; ``mrr_negatives=0`` for none,
    which large graphs need). The split depends on
    :obj:`seed` alone (the global RNG state is left untouched), so every
    method trained under a seed sees the same split."""
    transform = RandomLinkSplit(
        num_val=val_ratio, num_test=test_ratio, is_undirected=undirected,
        add_negative_train_samples=False, split_labels=True)
    # PyG's negative sampling draws from Python's `random` as well as torch.
    py_state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            train, val, test = transform(copy.copy(data))
            if test_ratio > 0 and mrr_negatives > 0:
                test.mrr_neg_dst = torch.randint(
                    data.num_nodes, (test.pos_edge_label_index.size(1), mrr_negatives))
            return train, val, test
    finally:
        random.setstate(py_state)



class NegativeSampler:
    """Uniform random node pairs that are neither self-loops nor edges of
    :obj:`edge_index` (in either direction): the negatives of the GAE
    reconstruction loss. PyG's :func:`~torch_geometric.utils.negative_sampling`
    draws the same distribution; this one builds its edge lookup once (a
    bit table of all pairs for graphs up to :attr:`TABLE_NODES` nodes, else
    sorted pair keys), so a step costs one lookup per pair; rejected pairs
    (about 2|E|/N^2 of them) are drawn again."""

    TABLE_NODES = 4096

    def __init__(self, edge_index: Tensor, num_nodes: int, max_rounds: int = 20):
        self.num_nodes = int(num_nodes)
        self.max_rounds = max_rounds
        src, dst = edge_index
        keys = torch.cat([src * num_nodes + dst, dst * num_nodes + src])
        self.table: Optional[Tensor] = None
        if self.num_nodes <= self.TABLE_NODES:
            self.table = torch.zeros(self.num_nodes * self.num_nodes, dtype=torch.bool, device=edge_index.device)
            self.table[keys] = True
            self.table[torch.arange(self.num_nodes, device=edge_index.device) * (self.num_nodes + 1)] = True
        else:
            self.keys = torch.unique(keys)  # sorted

    def _rejected(self, pairs: Tensor) -> Tensor:
        keys = pairs[0] * self.num_nodes + pairs[1]
        if self.table is not None:
            return self.table[keys]
        if self.keys.numel() == 0:
            return pairs[0] == pairs[1]
        # Sorted queries walk the sorted keys in order: 3x faster than random probes.
        sorted_keys, order = keys.sort()
        at = torch.searchsorted(self.keys, sorted_keys).clamp(max=self.keys.numel() - 1)
        hit = torch.empty_like(keys, dtype=torch.bool)
        hit[order] = self.keys[at] == sorted_keys
        return hit | (pairs[0] == pairs[1])

    def __call__(self, num_samples: int) -> Tensor:
        device = self.table.device if self.table is not None else self.keys.device
        pairs = torch.randint(self.num_nodes, (2, num_samples), device=device)
        bad = self._rejected(pairs).nonzero().flatten()
        for _ in range(self.max_rounds):  # redraw the rejected pairs only, and check only those
            if bad.numel() == 0:
                break
            pairs[:, bad] = torch.randint(self.num_nodes, (2, bad.numel()), device=device)
            bad = bad[self._rejected(pairs[:, bad])]
        return pairs



def same_graph(a: Data, b: Data) -> bool:
    """Whether two splits pass messages over the same (weighted) edges."""
    wa, wb = getattr(a, "edge_weight", None), getattr(b, "edge_weight", None)
    return (a.edge_index.shape == b.edge_index.shape and torch.equal(a.edge_index, b.edge_index)
            and (wa is None) == (wb is None) and (wa is None or torch.equal(wa, wb)))




def holdout_split(data: Data, seed: int, val_fraction: float, directed: bool = False) -> Tuple[Data, Optional[Data]]:
    """``(train, val)`` of a graph without a test split: :func:`split_edges`
    with :obj:`val_fraction` of the edges for validation and none for test,
    as :class:`~damgraph.DAMEmbedding` trains. With ``val_fraction=0`` every
    edge trains (once per undirected pair) and ``val`` is ``None``."""
    if val_fraction == 0:
        train = copy.copy(data)
        train.pos_edge_label_index = data.edge_index if directed else \
            data.edge_index[:, data.edge_index[0] < data.edge_index[1]]
        return train, None
    with warnings.catch_warnings():  # RandomLinkSplit warns about an empty test split
        warnings.simplefilter("ignore")
        train, val, _ = split_edges(data, seed, val_fraction, 0.0, undirected=not directed)
    return train, val
