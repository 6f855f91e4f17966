import networkx as nx
import numpy as np
import torch

from damgraph.spectral import spectral_embedding


def test_spectral_embedding_matches_dense_eigendecomposition():
    g = nx.karate_club_graph()
    edge_index = torch.tensor(list(g.edges)).t()
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    z = spectral_embedding(edge_index, 34, k=5, seed=0).numpy()
    assert z.shape == (34, 5)
    a = nx.to_numpy_array(g, weight=None)
    d = a.sum(1) ** -0.5
    values, vectors = np.linalg.eigh(d[:, None] * a * d[None, :])
    top = vectors[:, -5:] * np.sqrt(values[-5:])
    np.testing.assert_allclose(z @ z.T, top @ top.T, atol=1e-6)  # z is float32
