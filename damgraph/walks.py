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
        src, dst = edge_index
        order = torch.argsort(src * self.num_nodes + dst)
        self.col = dst[order]
        degree = torch.bincount(src, minlength=self.num_nodes)
        self.rowptr = torch.zeros(self.num_nodes + 1, dtype=torch.long, device=edge_index.device)
        self.rowptr[1:] = torch.cumsum(degree, 0)
        self.starts = torch.nonzero(degree > 0).flatten()
        per_walk = sum(2 * self.window + 1 - k for k in range(1, self.window + 1))
        #: Walks per call: one per node with an edge, or fewer under max_pairs.
        self.num_walks = self.starts.numel()
        if max_pairs is not None:
            self.num_walks = min(self.num_walks, -(-int(max_pairs) // per_walk))
        self._per_walk = per_walk

    def walks(self) -> Tensor:
        """``[num_walks, 2 * window + 1]`` node ids, one walk per row (a
        node without out-edges ends its walk where it is)."""
        current = self.starts
        if self.num_walks < current.numel():
            pick = torch.randperm(current.numel(), generator=self.generator, device=current.device)
            current = current[pick[:self.num_walks]]
        steps = [current]
        for _ in range(2 * self.window):
            start, degree = self.rowptr[current], self.rowptr[current + 1] - self.rowptr[current]
            draw = torch.rand(current.numel(), generator=self.generator, device=current.device)
            offset = (draw * degree).long().clamp(max=(degree - 1).clamp(min=0))
            nxt = self.col[(start + offset).clamp(max=max(self.col.numel() - 1, 0))]
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
        return self.num_walks * self._per_walk
