"""``spectral``: a non-neural reference, the top-k eigenvectors of the
symmetric-normalised adjacency D^-1/2 A D^-1/2 of the message-passing graph,
scaled by the square roots of their (largest, positive) eigenvalues so that
inner products approximate the normalised adjacency (scipy's ``eigsh``)."""
import time

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import eigsh

from benchmarks.sizing import embedding_columns


def spectral_embedding(edge_index: torch.Tensor, num_nodes: int, k: int, seed: int) -> torch.Tensor:
    ei = edge_index.numpy()
    adj = sp.coo_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(num_nodes, num_nodes)).tocsr()
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    norm = sp.diags(inv_sqrt) @ adj @ sp.diags(inv_sqrt)
    v0 = np.random.default_rng(seed).standard_normal(num_nodes)
    values, vectors = eigsh(norm, k=min(k, num_nodes - 2), which="LA", v0=v0)
    order = np.argsort(values)[::-1]
    z = vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
    return torch.from_numpy(z).float()


def run(job) -> dict:
    k, seed = job.config.dim, job.config.seed
    train, _, test = job.split
    start = time.perf_counter()
    z_val = spectral_embedding(train.edge_index, train.num_nodes, k, seed)
    z_test = spectral_embedding(test.edge_index, test.num_nodes, k, seed)
    row = embedding_columns(z_val, z_test, job)
    row.update(width=z_test.shape[1], epochs=0, train_s=round(time.perf_counter() - start, 3),
               num_params=0, shared_train=False)
    return row
