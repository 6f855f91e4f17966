import pytest
import torch
from torch_geometric.nn import GCNConv

from damgraph.encoders import GNNEncoder
from damgraph import propagation
from damgraph.propagation import SparseOperator, feature_operator, gcn_adjacency, pair_dot, remember_pairs


def test_gcn_adjacency_propagates_as_gcnconv(tiny_graph):
    torch.manual_seed(0)
    conv = GCNConv(5, 3)
    adj = gcn_adjacency(tiny_graph.edge_index, 6)
    assert adj.symmetric and adj.shape == (6, 6)
    expected = conv(tiny_graph.x, tiny_graph.edge_index)
    torch.testing.assert_close(adj @ conv.lin(tiny_graph.x) + conv.bias, expected, rtol=0, atol=1e-6)  # measured 6.0e-8


def test_directed_and_weighted_graph_keeps_its_transpose():
    torch.manual_seed(0)
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    weight = torch.tensor([1.0, 2.0, 0.5])
    x = torch.randn(3, 4)
    conv = GCNConv(4, 2)
    adj = gcn_adjacency(edge_index, 3, weight)
    assert not adj.symmetric
    expected = conv(x, edge_index, weight)
    torch.testing.assert_close(adj @ conv.lin(x) + conv.bias, expected, rtol=0, atol=1e-6)  # measured 0
    torch.testing.assert_close(adj.matrix_t.to_dense(), adj.to_dense().t(), rtol=0, atol=0)


def test_sparse_product_gradient_matches_dense():
    gen = torch.Generator().manual_seed(0)
    dense = torch.randn(7, 5, generator=gen) * (torch.rand(7, 5, generator=gen) < 0.3)
    op = SparseOperator(dense)
    w1 = torch.randn(5, 3, generator=gen, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_(True)
    (op @ w1).pow(2).sum().backward()
    (dense @ w2).pow(2).sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad, rtol=0, atol=1e-6)  # measured 0 (|grad| up to 25)
    with pytest.raises(ValueError, match="2-D"):
        SparseOperator(torch.ones(3))


def test_feature_operator_only_for_sparse_features():
    assert isinstance(feature_operator(torch.eye(20)), SparseOperator)  # 5% non-zero
    dense = torch.ones(4, 4)
    assert feature_operator(dense) is dense


@pytest.mark.parametrize("variational", [False, True])
def test_encoder_fast_path_equals_edge_index_path_with_gradients(cora_normalized, variational):
    data = cora_normalized
    torch.manual_seed(0)
    enc = GNNEncoder(data.num_features, 8, gate_hidden=True, variational=variational)
    slow = enc(data.x, data.edge_index)
    slow_loss = sum(t.square().sum() for t in (slow if variational else (slow,)))
    slow_grads = torch.autograd.grad(slow_loss, list(enc.parameters()), allow_unused=True)
    fast = enc(feature_operator(data.x), gcn_adjacency(data.edge_index, data.num_nodes))
    fast_loss = sum(t.square().sum() for t in (fast if variational else (fast,)))
    fast_grads = torch.autograd.grad(fast_loss, list(enc.parameters()), allow_unused=True)
    # Two summation orders of the same function. Measured (1 and 2 threads): embeddings (|z| <= 0.044)
    # differ by at most 3.7e-9, each path being within 1.3e-8 of a float64 run; gradients (|g| up to 25.6,
    # where a float32 ulp is 1.9e-6) by at most 1.9e-6, each path within 4.8e-6 of float64.
    for a, b in zip(fast if variational else (fast,), slow if variational else (slow,)):
        torch.testing.assert_close(a, b, rtol=0, atol=5e-8)
    for a, b in zip(fast_grads, slow_grads):  # None: the output gate, applied by DAMVGAE
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("symmetric", [False, True])
def test_sparse_dropout_keeps_structure_and_transpose(symmetric):
    gen = torch.Generator().manual_seed(0)
    dense = torch.randn(30, 30, generator=gen) * (torch.rand(30, 30, generator=gen) < 0.2)
    if symmetric:
        dense = dense + dense.t()
    op = SparseOperator(dense, symmetric=symmetric)
    torch.manual_seed(1)
    dropped = op.dropout(0.5)
    out = dropped.to_dense()
    kept = out != 0
    assert bool((kept <= (dense != 0)).all())                       # only stored entries survive
    torch.testing.assert_close(out[kept], 2 * dense[kept], rtol=0, atol=0)  # scaled by 1 / (1 - p), exactly
    torch.testing.assert_close(dropped.matrix_t.to_dense(), out.t(), rtol=0, atol=0)  # the backward sees the same mask
    assert 0.3 < kept.sum().item() / (dense != 0).sum().item() < 0.7
    assert op.dropout(0.0) is op


def test_propagated_features_are_the_sparse_powers(tiny_graph):
    from damgraph.propagation import propagate_features

    feats = propagate_features(tiny_graph, hops=2)
    adj = gcn_adjacency(tiny_graph.edge_index, 6).to_dense()
    expected = torch.cat([tiny_graph.x, adj @ tiny_graph.x, adj @ adj @ tiny_graph.x], dim=1)
    torch.testing.assert_close(feats, expected, rtol=0, atol=1e-6)  # measured 1.2e-7 (|feats| up to 2.3)


def _pair_dot_and_grad(z, pairs):
    z = z.detach().clone().requires_grad_(True)
    value = pair_dot(z, pairs)
    value.backward(torch.linspace(-1, 1, value.numel()))
    return value.detach(), z.grad


def test_remembered_pairs_give_the_same_numbers_and_are_sorted_once():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(50, 8, generator=gen)
    pairs = torch.randint(50, (2, 300), generator=gen)
    plain = _pair_dot_and_grad(z, pairs.clone())
    remember_pairs(pairs)
    patterns = propagation._remembered[id(pairs)][2]
    for _ in range(2):  # the first call builds both patterns, the second reuses them
        value, grad = _pair_dot_and_grad(z, pairs)
        assert torch.equal(value, plain[0]) and torch.equal(grad, plain[1])
        assert sorted(patterns) == [("backward", 50), ("forward", 50)]
    kept = patterns[("forward", 50)]
    _pair_dot_and_grad(z, pairs)
    assert patterns[("forward", 50)] is kept
    # an in-place change of the pairs makes pair_dot sort them afresh
    pairs[1].copy_(pairs[1].flip(0))
    value, grad = _pair_dot_and_grad(z, pairs)
    fresh = _pair_dot_and_grad(z, pairs.clone())
    assert torch.equal(value, fresh[0]) and torch.equal(grad, fresh[1])
    assert not torch.equal(value, plain[0])
    # the record goes with the tensor
    key = id(pairs)
    del pairs
    assert key not in propagation._remembered


def test_remembering_pairs_again_keeps_their_patterns():
    z = torch.randn(20, 4)
    pairs = torch.randint(20, (2, 50), generator=torch.Generator().manual_seed(1))
    remember_pairs(pairs)
    pair_dot(z, pairs)
    built = propagation._remembered[id(pairs)][2][("forward", 20)]
    remember_pairs(pairs)  # a second run on the same split
    assert propagation._remembered[id(pairs)][2][("forward", 20)] is built
    pairs.add_(0)  # modified in place: remembering starts afresh
    remember_pairs(pairs)
    assert propagation._remembered[id(pairs)][2] == {}


def test_pair_dot_takes_more_pairs_than_node_pairs():
    """Repeated pairs (random-walk contexts on a small graph) may outnumber the
    n^2 distinct ones, which torch's sampled product refuses."""
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(7, 3, generator=gen)
    for count in (49, 50, 400):
        pairs = torch.randint(7, (2, count), generator=gen)
        value, grad = _pair_dot_and_grad(z, pairs)
        zz = z.detach().clone().requires_grad_(True)
        plain = (zz[pairs[0]] * zz[pairs[1]]).sum(1)
        plain.backward(torch.linspace(-1, 1, count))
        torch.testing.assert_close(value, plain.detach(), rtol=0, atol=1e-5)
        torch.testing.assert_close(grad, zz.grad, rtol=0, atol=1e-5)
