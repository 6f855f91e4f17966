"""Random-walk contexts: node pairs that co-occur on short random walks.

The GAE's usual positives are the training edges; DeepWalk (Perozzi et al.,
KDD 2014) and GraphSAGE's unsupervised loss (Hamilton et al., NeurIPS 2017)
take instead the pairs that appear within a window of each other on random
walks, which rewards nodes a few hops apart for being close. On graphs
without features this is what lets the GAE rank held-out edges (whose ends
are usually 2-3 hops apart in the training graph) above random pairs
(docs/results.md, "Graphs without features").

PyG's :class:`~torch_geometric.nn.Node2Vec` draws its walks with
``torch-cluster`` or ``pyg-lib``, neither of which installs with every torch
build; the first-order walk here is a few tensor operations per step.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from damgraph.propagation import pairs_csr


class ContextSampler:
    """Draws one uniform random walk of ``2 * window`` steps from every node
    with an edge (or from as many of them, drawn without replacement, as
    :obj:`max_pairs` allows) and returns the pairs ``(walk[i], walk[i + k])``
    for ``k = 1 .. window`` (repeats kept: they weigh frequent contexts, as in
    DeepWalk; pairs of a node with itself dropped), afresh at every call.

    Args:
        edge_index (Tensor): The graph the walks follow (``[2, E]``; an
            undirected graph lists both directions).
        num_nodes (int): Number of nodes.
        window (int): Largest number of steps between the two ends of a pair.
        max_pairs (int, optional): At most about this many pairs per call
            (walks from a random subset of the nodes); ``None``: a walk from
            every node.
        generator (torch.Generator, optional): The draws' source (default:
            torch's global generator, which :func:`torch.manual_seed` seeds).
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, window: int = 5, max_pairs: Optional[int] = None,
                 generator: Optional[torch.Generator] = None):
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if max_pairs is not None and max_pairs < 1:
            raise ValueError(f"max_pairs must be at least 1 or None, got {max_pairs}")
        self.num_nodes, self.window, self.generator = int(num_nodes), int(window), generator
        self.rowptr, self.col, _ = pairs_csr(edge_index[0], edge_index[1], self.num_nodes)
        self.degree = self.rowptr.diff()
        self.starts = torch.nonzero(self.degree > 0).flatten()
        #: Pairs of one walk: 2w steps give 2w + 1 - k pairs k steps apart, k = 1 .. w.
        self.pairs_per_walk = self.window * (3 * self.window + 1) // 2
        #: Walks per call: one per node with an edge, or fewer under max_pairs.
        self.num_walks = self.starts.numel()
        if max_pairs is not None:
            self.num_walks = min(self.num_walks, -(-int(max_pairs) // self.pairs_per_walk))

    def walks(self) -> Tensor:
        """``[num_walks, 2 * window + 1]`` node ids, one walk per row (a
        node without out-edges ends its walk where it is)."""
        current = self.starts
        if self.num_walks < current.numel():
            pick = torch.randperm(current.numel(), generator=self.generator, device=current.device)
            current = current[pick[:self.num_walks]]
        steps = [current]
        last = max(self.col.numel() - 1, 0)
        for _ in range(2 * self.window):
            degree = self.degree[current]
            draw = torch.rand(current.numel(), generator=self.generator, device=current.device)
            # float32 draw * degree < degree for any degree under 2^24; a dead end's index is clamped, then ignored
            nxt = self.col[(self.rowptr[current] + (draw * degree).long()).clamp(max=last)]
            current = torch.where(degree > 0, nxt, current)
            steps.append(current)
        return torch.stack(steps, dim=1)

    def __call__(self) -> Tensor:
        """Context pairs ``[2, P]`` of a fresh set of walks."""
        walks = self.walks()
        pairs = torch.cat([torch.stack([walks[:, :-k].reshape(-1), walks[:, k:].reshape(-1)])
                           for k in range(1, self.window + 1)], dim=1)
        return pairs[:, pairs[0] != pairs[1]]

    def pairs_per_call(self) -> int:
        """The most pairs one call returns."""
        return self.num_walks * self.pairs_per_walk
