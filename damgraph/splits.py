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
from torch_geometric.transforms import BaseTransform, RandomLinkSplit

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



def official_split(data: Data) -> Split:
    """``(train, val, test)`` of a dataset with a fixed split (OGB's, from
    :func:`~damgraph.ogb_link.read_ogb_link`): every part passes messages
    over the training graph (the protocol of OGB's ddi/ppa/citation2
    leaderboards); validation and test score their official positives
    against the official negatives. Where negatives are per positive
    (citation2), the test split keeps them for MRR (``mrr_neg_dst``) and
    both parts score AUC against all of them."""
    keep = {k: getattr(data, k) for k in ("x",) if getattr(data, k, None) is not None}
    train = Data(edge_index=data.edge_index, num_nodes=data.num_nodes, pos_edge_label_index=data.train_pos, **keep)
    parts = [train]
    for part in ("val", "test"):
        pos = getattr(data, f"{part}_pos")
        split = Data(edge_index=data.edge_index, num_nodes=data.num_nodes, pos_edge_label_index=pos, **keep)
        neg_dst = getattr(data, f"{part}_neg_dst", None)
        if getattr(data, f"{part}_neg", None) is not None:
            split.neg_edge_label_index = getattr(data, f"{part}_neg")
        else:
            split.neg_edge_label_index = torch.stack(
                [pos[0].view(-1, 1).expand_as(neg_dst).reshape(-1), neg_dst.reshape(-1)])
        if neg_dst is not None and part == "test":
            split.mrr_neg_dst = neg_dst
        parts.append(split)
    return tuple(parts)


def link_split(data: Data, seed: int, **kwargs) -> Split:
    """The dataset's fixed split where it has one (:func:`official_split`;
    the seed then varies only the training), else :func:`split_edges`
    under :obj:`seed` (:obj:`kwargs` go to it)."""
    if getattr(data, "train_pos", None) is not None:
        return official_split(data)
    return split_edges(data, seed, **kwargs)


class PerClassSplit(BaseTransform):
    """Node-classification masks of a graph without a public split, as
    Shchur et al. ("Pitfalls of graph neural network evaluation", 2018)
    draw them: :obj:`train_per_class` random nodes of every class for
    training, :obj:`val_per_class` for validation, the rest for test (a
    class with fewer nodes gives what it has, training first). The draw
    depends on :obj:`seed` alone, so the split is fixed and reproducible."""

    def __init__(self, train_per_class: int = 20, val_per_class: int = 30, seed: int = 0):
        self.train_per_class, self.val_per_class, self.seed = train_per_class, val_per_class, seed

    def forward(self, data: Data) -> Data:
        gen = torch.Generator().manual_seed(self.seed)
        y = data.y.view(-1)
        train, val = torch.zeros_like(y, dtype=torch.bool), torch.zeros_like(y, dtype=torch.bool)
        for c in range(int(y.max()) + 1):
            members = (y == c).nonzero().view(-1)
            members = members[torch.randperm(members.numel(), generator=gen)]
            train[members[:self.train_per_class]] = True
            val[members[self.train_per_class:self.train_per_class + self.val_per_class]] = True
        data.train_mask, data.val_mask, data.test_mask = train, val, ~(train | val)
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.train_per_class}, {self.val_per_class}, seed={self.seed})"


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
