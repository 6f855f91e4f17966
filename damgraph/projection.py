"""Random-projection node embeddings: Gaussian vectors propagated over the
GCN-normalised adjacency, as in FastRP (Chen et al., "Fast and Accurate
Network Embeddings via Very Sparse Random Projection", CIKM 2019), which
sums the propagated projections of a few hops. A few sparse products, so
it costs seconds where an eigendecomposition of a large graph takes
minutes."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from damgraph.propagation import gcn_adjacency


@torch.no_grad()
def random_projection(edge_index: Tensor, num_nodes: int, k: int, seed: int, hops: int = 3,
                      edge_weight: Optional[Tensor] = None) -> Tensor:
    r"""``num_nodes x k``: :math:`\sum_{h=1}^{H} \hat{\mathbf{A}}^h \mathbf{R}`
    with :math:`\mathbf{R}` standard Gaussian (drawn from :obj:`seed`) and
    :math:`\hat{\mathbf{A}}` the GCN-normalised adjacency (self-loops added)
    of :obj:`edge_index` (both directions of an undirected edge listed);
    each column centred and scaled to unit standard deviation. Nodes close
    in the graph get correlated rows."""
    if hops < 1 or k < 1:
        raise ValueError(f"random_projection needs hops >= 1 and k >= 1, got {hops} and {k}")
    adj = gcn_adjacency(edge_index.cpu(), num_nodes, None if edge_weight is None else edge_weight.cpu())
    h = torch.randn(num_nodes, k, generator=torch.Generator().manual_seed(seed))
    z = torch.zeros_like(h)
    for _ in range(hops):
        h = adj @ h
        z += h
    z -= z.mean(0)
    return z / z.std(0).clamp_min(1e-12)
