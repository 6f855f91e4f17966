import torch

from damgraph.linkpred import LinkPredConfig, split_edges
from damgraph.precomputed import SIGNEncoder, propagate_features, train_link_prediction_precomputed
from damgraph.propagation import gcn_adjacency
from damgraph.synthetic import community_graph


def test_propagated_features_are_the_sparse_powers(tiny_graph):
    feats = propagate_features(tiny_graph, hops=2)
    adj = gcn_adjacency(tiny_graph.edge_index, 6).to_dense()
    expected = torch.cat([tiny_graph.x, adj @ tiny_graph.x, adj @ adj @ tiny_graph.x], dim=1)
    torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-6)


def test_sign_encoder_gates_its_output():
    enc = SIGNEncoder(5, 8, hops=2)
    assert enc(torch.randn(4, 15)).shape == (4, 8)
    assert enc.out_mask.num_active == 8  # beta starts at 1: every unit open


def test_community_graph_is_reproducible_and_has_structure():
    a, b = community_graph(2000, seed=3), community_graph(2000, seed=3)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    assert 9.0 < a.edge_index.size(1) / 2000 <= 10.0  # mean degree about 10
    src, dst = a.edge_index
    assert (a.y[src] == a.y[dst]).float().mean() > 0.75  # mostly within communities


def test_minibatch_training_learns_the_communities():
    split = split_edges(community_graph(3000, seed=0), 0, mrr_negatives=0)
    config = LinkPredConfig(dim=16, epochs=15, patience=15, beta_lr=0.01)
    a = train_link_prediction_precomputed(split, config, batch_size=4096)
    b = train_link_prediction_precomputed(split, config, batch_size=4096)
    assert a.test_auc > 0.85, a.test_auc
    assert a.test_auc == b.test_auc and a.active_dim == b.active_dim  # same seed, same numbers
    assert 1 <= a.active_dim <= 16 and a.record.epochs == 15
