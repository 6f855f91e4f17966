"""Random-projection node embeddings: Gaussian vectors propagated over the
GCN-normalised adjacency, as in FastRP (Chen et al., "Fast and Accurate
Network Embeddings via Very Sparse Random Projection", CIKM 2019), which
sums the propagated projections of a few hops. A few sparse products, so
it costs seconds where an eigendecomposition of a large graph takes
minutes."""
from __future__ import annotations

import torch
from torch import Tensor

from damgraph.propagation import SparseOperator


@torch.no_grad()
def random_projection(adjacency: SparseOperator, k: int, seed: int, hops: int = 3) -> Tensor:
    r"""``num_nodes x k``: :math:`\sum_{h=1}^{H} \hat{\mathbf{A}}^h \mathbf{R}`
    with :math:`\mathbf{R}` standard Gaussian (drawn on the CPU from
    :obj:`seed`) and :math:`\hat{\mathbf{A}}` the given normalised
    adjacency, such as :func:`~damgraph.propagation.gcn_adjacency`'s (the
    one GCN layers are trained on, so it is built once); each column
    centred and scaled to unit standard deviation. Nodes close in the
    graph get correlated rows."""
    if hops < 1 or k < 1:
        raise ValueError(f"random_projection needs hops >= 1 and k >= 1, got {hops} and {k}")
    h = torch.randn(adjacency.shape[0], k, generator=torch.Generator().manual_seed(seed)).to(adjacency.matrix.device)
    z = torch.zeros_like(h)
    for _ in range(hops):
        h = adjacency @ h
        z += h
    z -= z.mean(0)
    return z / z.std(0).clamp_min(1e-12)
