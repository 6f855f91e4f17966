import networkx as nx
import numpy as np
import pytest
import torch

from damgraph.projection import random_projection
from damgraph.propagation import gcn_adjacency


def _karate():
    g = nx.karate_club_graph()
    edge_index = torch.tensor(list(g.edges)).t()
    return g, gcn_adjacency(torch.cat([edge_index, edge_index.flip(0)], dim=1), 34)


def test_random_projection_sums_the_propagated_gaussian_hops():
    g, adjacency = _karate()
    z = random_projection(adjacency, k=8, seed=3, hops=3).numpy()
    a = nx.to_numpy_array(g, weight=None) + np.eye(34)  # GCN normalisation, self-loops added
    d = a.sum(1) ** -0.5
    a_hat = d[:, None] * a * d[None, :]
    r = torch.randn(34, 8, generator=torch.Generator().manual_seed(3)).double().numpy()
    expected = a_hat @ r + a_hat @ a_hat @ r + a_hat @ a_hat @ a_hat @ r
    expected = (expected - expected.mean(0)) / expected.std(0, ddof=1)
    np.testing.assert_allclose(z, expected, atol=1e-5)  # float32
    np.testing.assert_allclose(z.std(0, ddof=1), 1.0, atol=1e-5)
    assert torch.equal(random_projection(adjacency, 8, 3), random_projection(adjacency, 8, 3))
    assert not torch.equal(random_projection(adjacency, 8, 3), random_projection(adjacency, 8, 4))


def test_random_projection_puts_neighbours_closer_than_strangers():
    from damgraph.synthetic import community_graph

    g = community_graph(2000, avg_degree=10, seed=0)
    z = random_projection(gcn_adjacency(g.edge_index, 2000), 64, 0)
    z = z / z.norm(dim=1, keepdim=True)
    edges = (z[g.edge_index[0]] * z[g.edge_index[1]]).sum(1).mean().item()
    gen = torch.Generator().manual_seed(1)
    u, v = torch.randint(2000, (2, 20000), generator=gen)
    strangers = (z[u] * z[v]).sum(1).mean().item()
    assert edges == pytest.approx(0.400, abs=0.01) and abs(strangers) < 0.02  # measured: 0.400 and 0.001


def test_random_projection_refuses_zero_hops():
    _, adjacency = _karate()
    with pytest.raises(ValueError, match="needs hops >= 1 and k >= 1, got 0 and 4"):
        random_projection(adjacency, 4, 0, hops=0)
