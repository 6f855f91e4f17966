"""Spectral node embeddings: the top eigenvectors of the symmetric-normalised
adjacency :math:`D^{-1/2} A D^{-1/2}`, scaled by the square roots of their
(largest, positive) eigenvalues so that inner products approximate the
normalised adjacency (scipy's ``eigsh``; Belkin and Niyogi, 2003, take the
same vectors as the Laplacian's smallest)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import eigsh


def spectral_embedding(edge_index: torch.Tensor, num_nodes: int, k: int, seed: int) -> torch.Tensor:
    """``num_nodes x min(k, num_nodes - 2)`` spectral embedding of the graph
    :obj:`edge_index` (both directions of an undirected edge listed), the
    columns by eigenvalue, largest first; :obj:`seed` draws ``eigsh``'s
    start vector, so the same seed gives the same embedding."""
    ei = edge_index.cpu().numpy()
    adj = sp.coo_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(num_nodes, num_nodes)).tocsr()
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    norm = sp.diags(inv_sqrt) @ adj @ sp.diags(inv_sqrt)
    v0 = np.random.default_rng(seed).standard_normal(num_nodes)
    values, vectors = eigsh(norm, k=min(k, num_nodes - 2), which="LA", v0=v0)
    order = np.argsort(values)[::-1]
    z = vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
    return torch.from_numpy(z).float()
