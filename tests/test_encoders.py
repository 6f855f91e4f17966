"""damgraph.encoders: the gated GNN encoder (GCN, SAGE, GAT layers) and the
SIGN encoder on precomputed features."""
import pytest
import torch
from torch import nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

from damgraph.encoders import GNNEncoder, SIGNEncoder, conv_layer, make_conv
from damgraph.gates import DAMGate, HardConcreteGate, L1Scale
from damgraph.propagation import SparseOperator, gcn_adjacency, mean_adjacency, propagate_features

CONV_TYPES = {"gcn": GCNConv, "sage": SAGEConv, "gat": GATConv}


@pytest.mark.parametrize("conv", ["gcn", "sage", "gat"])
def test_output_shapes_and_layer_types(tiny_graph, conv):
    torch.manual_seed(0)
    encoder = GNNEncoder(5, 8, num_layers=3, conv=conv)
    assert [type(c) for c in encoder.convs] == [CONV_TYPES[conv]] * 2 and type(encoder.conv_out) is CONV_TYPES[conv]
    # hidden width defaults to 2 * out_channels
    assert [(c.in_channels, c.out_channels) for c in encoder.convs] == [(5, 16), (16, 16)]
    assert (encoder.conv_out.in_channels, encoder.conv_out.out_channels) == (16, 8)
    graph = encoder.prepare_graph(tiny_graph.edge_index, 6)
    z = encoder(tiny_graph.x, graph)
    assert z.shape == (6, 8) and torch.isfinite(z).all()
    assert encoder.hidden(tiny_graph.x, graph).shape == (6, 16)
    variational = GNNEncoder(5, 8, hidden_channels=12, conv=conv, variational=True)
    mu, logstd = variational(tiny_graph.x, graph)
    assert mu.shape == logstd.shape == (6, 8) and not torch.equal(mu, logstd)
    assert variational.output_convs() == [variational.conv_mu, variational.conv_logstd]
    assert not hasattr(variational, "conv_out") and variational.convs[0].out_channels == 12


def test_gates_present_or_absent_as_asked(tiny_graph):
    torch.manual_seed(0)
    default = GNNEncoder(5, 8, num_layers=3)
    assert isinstance(default.out_gate, DAMGate) and default.out_gate.width == 8
    assert all(isinstance(g, nn.Identity) for g in default.hidden_gates) and len(default.hidden_gates) == 2
    both = GNNEncoder(5, 8, hidden_channels=10, num_layers=3, gate_hidden=True, beta_init=-0.5)
    assert [g.width for g in both.hidden_gates] == [10, 10] and both.out_gate.width == 8
    assert all(g.beta.item() == -0.5 for g in [*both.hidden_gates, both.out_gate])
    plain = GNNEncoder(5, 8, gate_output=False)
    assert isinstance(plain.out_gate, nn.Identity)
    assert not any(isinstance(m, DAMGate) for m in plain.modules())
    assert isinstance(GNNEncoder(5, 8, gate="l1").out_gate, L1Scale)
    assert isinstance(GNNEncoder(5, 8, gate="l0", gate_hidden=True).hidden_gates[0], HardConcreteGate)
    # a variational encoder keeps its gate for DAMVGAE but returns the ungated heads
    variational = GNNEncoder(5, 8, variational=True, beta_init=-2.0)
    assert isinstance(variational.out_gate, DAMGate) and variational.out_gate.num_open < 8
    mu, _ = variational(tiny_graph.x, tiny_graph.edge_index)
    assert (mu[:, :3] != 0).all()  # closed units are not zeroed by the encoder itself
    # an open gate multiplies the output by g
    torch.manual_seed(0)
    gated = GNNEncoder(5, 8, beta_init=-2.0)
    torch.manual_seed(0)
    ungated = GNNEncoder(5, 8, gate_output=False)
    z, z_plain = gated(tiny_graph.x, tiny_graph.edge_index), ungated(tiny_graph.x, tiny_graph.edge_index)
    torch.testing.assert_close(z, z_plain * gated.out_gate.values(), rtol=0, atol=0)
    assert (z[:, :4] == 0).all() and (z[:, 4:] != 0).all()


def test_two_layer_gcn_equals_the_formula_by_hand(tiny_graph):
    torch.manual_seed(0)
    encoder = GNNEncoder(5, 4, hidden_channels=6, beta_init=-1.5, activation="elu")
    with torch.no_grad():
        for conv in (*encoder.convs, encoder.conv_out):
            conv.bias.normal_()
    adj = gcn_adjacency(tiny_graph.edge_index, 6).to_dense()
    first, out = encoder.convs[0], encoder.conv_out
    h = torch.nn.functional.elu(adj @ (tiny_graph.x @ first.lin.weight.t()) + first.bias)
    expected = (adj @ (h @ out.lin.weight.t()) + out.bias) * encoder.out_gate.values()
    z = encoder(tiny_graph.x, tiny_graph.edge_index)
    torch.testing.assert_close(z, expected, rtol=0, atol=1e-6)  # measured max error 0


def test_reset_parameters_restores_the_initial_state_after_training(tiny_graph):
    torch.manual_seed(0)
    encoder = GNNEncoder(5, 8, hidden_channels=10, gate_hidden=True, batch_norm=True)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=0.1)
    graph = encoder.prepare_graph(tiny_graph.edge_index, 6)
    for _ in range(5):
        optimizer.zero_grad()
        (encoder(tiny_graph.x, graph).sum() + encoder.out_gate.beta + encoder.hidden_gates[0].beta).backward()
        optimizer.step()
    trained = {k: v.clone() for k, v in encoder.state_dict().items()}
    assert encoder.out_gate.beta.item() < 0.8 and encoder.hidden_gates[0].beta.item() < 0.8  # moved from 1.0
    assert encoder.norms[0].num_batches_tracked.item() == 5

    encoder.reset_parameters()
    assert encoder.out_gate.beta.item() == 1.0 and encoder.hidden_gates[0].beta.item() == 1.0
    for name, conv in (("convs.0", encoder.convs[0]), ("conv_out", encoder.conv_out)):
        assert not torch.equal(conv.lin.weight, trained[f"{name}.lin.weight"])
        assert (trained[f"{name}.bias"] != 0).any() and (conv.bias == 0).all()  # GCNConv zeroes its bias
        bound = (6.0 / (conv.in_channels + conv.out_channels)) ** 0.5  # glorot
        assert conv.lin.weight.abs().max() <= bound
    assert (trained["norms.0.running_mean"] != 0).any() and (trained["out_norm.bias"] != 0).any()
    for norm in (encoder.norms[0], encoder.out_norm):
        assert (norm.running_mean == 0).all() and (norm.running_var == 1).all()
        assert norm.num_batches_tracked.item() == 0 and (norm.weight == 1).all() and (norm.bias == 0).all()


def test_prepare_graph_per_layer_kind(tiny_graph):
    edge_index = tiny_graph.edge_index
    gcn = GNNEncoder(5, 4).prepare_graph(edge_index, 6)
    assert isinstance(gcn, SparseOperator) and gcn.shape == (6, 6)
    torch.testing.assert_close(gcn.to_dense(), gcn_adjacency(edge_index, 6).to_dense(), rtol=0, atol=0)
    weight = torch.linspace(0.5, 2.0, edge_index.size(1))
    weighted = GNNEncoder(5, 4).prepare_graph(edge_index, 6, weight)
    torch.testing.assert_close(weighted.to_dense(), gcn_adjacency(edge_index, 6, weight).to_dense(), rtol=0, atol=0)
    assert not torch.equal(weighted.to_dense(), gcn.to_dense())
    mean = GNNEncoder(5, 4, conv="sage").prepare_graph(edge_index, 6)
    torch.testing.assert_close(mean.to_dense(), mean_adjacency(edge_index, 6).to_dense(), rtol=0, atol=0)
    assert GNNEncoder(5, 4, conv="gat").prepare_graph(edge_index, 6) is edge_index
    for conv in ("sage", "gat"):
        encoder = GNNEncoder(5, 4, conv=conv)
        with pytest.raises(ValueError, match=f"conv '{conv}' does not use edge weights"):
            encoder.prepare_graph(edge_index, 6, weight)
    with pytest.raises(TypeError, match="needs an edge index, not a prebuilt GCN adjacency"):
        GNNEncoder(5, 4, conv="gat")(tiny_graph.x, gcn)


def test_sage_on_the_mean_adjacency_is_pygs_sage(tiny_graph):
    """SAGE layers on the prebuilt mean adjacency give PyG's SAGEConv on the
    edge index, forward and backward, a node without neighbours included."""
    torch.manual_seed(0)
    edge_index = tiny_graph.edge_index[:, tiny_graph.edge_index[1] != 5]  # node 5 receives no message
    for dims in ((5, 3), (5, 16)):  # the product on the narrower side, either way
        encoder = GNNEncoder(5, dims[1], hidden_channels=7, conv="sage")
        x = tiny_graph.x.clone().requires_grad_()
        z = encoder(x, encoder.prepare_graph(edge_index, 6))
        ref_x = tiny_graph.x.clone().requires_grad_()
        ref = encoder(ref_x, edge_index)
        torch.testing.assert_close(z, ref, rtol=1e-5, atol=1e-6)
        z.square().sum().backward()
        ref.square().sum().backward()
        torch.testing.assert_close(x.grad, ref_x.grad, rtol=1e-5, atol=1e-5)


def test_prebuilt_adjacency_and_sparse_features_give_the_edge_index_result(tiny_graph):
    torch.manual_seed(0)
    encoder = GNNEncoder(5, 4, num_layers=3)
    x = tiny_graph.x * (tiny_graph.x > 0.5)  # mostly zeros, as a sparse operator
    z = encoder(x, tiny_graph.edge_index)
    fast = encoder(SparseOperator(x), encoder.prepare_graph(tiny_graph.edge_index, 6))
    torch.testing.assert_close(fast, z, rtol=0, atol=1e-6)  # measured max error 1.5e-8
    # SAGE takes sparse features too (made dense)
    sage = GNNEncoder(5, 4, conv="sage")
    torch.testing.assert_close(sage(SparseOperator(x), tiny_graph.edge_index), sage(x, tiny_graph.edge_index),
                               rtol=0, atol=0)


def test_dropout_only_while_training(tiny_graph):
    torch.manual_seed(0)
    encoder = GNNEncoder(5, 4, dropout=0.5).eval()
    a, b = encoder(tiny_graph.x, tiny_graph.edge_index), encoder(tiny_graph.x, tiny_graph.edge_index)
    assert torch.equal(a, b)
    encoder.train()
    torch.manual_seed(1)
    c = encoder(tiny_graph.x, tiny_graph.edge_index)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_layers=0), "num_layers must be >= 1, got 0"),
    (dict(dropout=1.0), "dropout must be in \\[0, 1\\), got 1.0"),
    (dict(conv="gin"), "unknown conv 'gin': choose one of gcn, sage, gat"),
    (dict(activation="tanh"), "unknown activation 'tanh': choose one of relu, elu"),
    (dict(gate="l2"), "unknown gate 'l2'"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GNNEncoder(5, 4, **kwargs)


def test_make_conv_and_conv_layer():
    assert isinstance(make_conv("gat", 3, 2), GATConv) and make_conv("gat", 3, 2).heads == 1
    with pytest.raises(ValueError, match="unknown conv 'mlp'"):
        make_conv("mlp", 3, 2)
    torch.manual_seed(0)
    conv = GCNConv(3, 2)
    with torch.no_grad():
        conv.bias.fill_(0.25)
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    x = torch.randn(3, 3)
    expected = conv(x, edge_index)
    # measured max error 0
    torch.testing.assert_close(conv_layer(conv, x, gcn_adjacency(edge_index, 3)), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(conv_layer(conv, x, edge_index), expected, rtol=0, atol=0)
    # a widening layer multiplies the graph with its narrower input first: the same values and gradients
    wide = GCNConv(3, 8)
    x.requires_grad_(True)
    fast = conv_layer(wide, x, gcn_adjacency(edge_index, 3))
    (grad_fast,) = torch.autograd.grad(fast.square().sum(), x)
    slow = wide(x, edge_index)
    (grad_slow,) = torch.autograd.grad(slow.square().sum(), x)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-6)
    torch.testing.assert_close(grad_fast, grad_slow, rtol=0, atol=1e-5)


def test_sign_encoder_equals_the_formula_by_hand(tiny_graph):
    torch.manual_seed(0)
    encoder = SIGNEncoder(5, 3, hops=2, hidden_channels=4, beta_init=-1.0)
    features = propagate_features(tiny_graph, hops=2)
    assert features.shape == (6, 15)
    assert [(lin.in_features, lin.out_features) for lin in encoder.hop_lins] == [(5, 4)] * 3
    assert (encoder.lin_out.in_features, encoder.lin_out.out_features) == (12, 3)
    blocks = [features[:, 5 * k:5 * (k + 1)] for k in range(3)]  # X, AX, A^2 X
    h = torch.cat([b @ lin.weight.t() + lin.bias for b, lin in zip(blocks, encoder.hop_lins)], dim=1)
    g = torch.relu(torch.tanh(torch.tensor([0.0, 5 / 3, 10 / 3]) - 1.0))  # mu_j = 5j/3, beta = -1
    expected = (torch.relu(h) @ encoder.lin_out.weight.t() + encoder.lin_out.bias) * g
    z = encoder(features)
    assert z.shape == (6, 3) and (z[:, 0] == 0).all()
    torch.testing.assert_close(z, expected, rtol=0, atol=1e-6)  # measured max error 0
    # rows are independent: a mini-batch of rows gives those rows
    torch.testing.assert_close(encoder(features[[4, 1]]), z[[4, 1]], rtol=0, atol=0)
    # without a gate the output is ungated; the default hidden width is 2 * out
    plain = SIGNEncoder(5, 3, hops=1, gate=None)
    assert isinstance(plain.out_gate, nn.Identity) and plain.hop_lins[0].out_features == 6
    assert len(plain.hop_lins) == 2 and plain(features[:, :10]).shape == (6, 3)


def test_sign_encoder_reset_parameters():
    torch.manual_seed(0)
    encoder = SIGNEncoder(5, 3, hops=1)
    with torch.no_grad():
        encoder.out_gate.beta.fill_(-0.7)
        for p in encoder.lin_out.parameters():
            p.fill_(9.0)
    encoder.reset_parameters()
    assert encoder.out_gate.beta.item() == 1.0
    bound = 1 / encoder.lin_out.in_features ** 0.5  # nn.Linear's uniform init
    assert encoder.lin_out.weight.abs().max() <= bound and encoder.lin_out.bias.abs().max() <= bound


@pytest.mark.parametrize("sparse_x", [False, True])
def test_dam_open_block_equals_the_gated_full_width_output_and_gradients(sparse_x):
    """With units closed, the output layer computes only DAM's open block:
    the same embedding and the same gradients (zeros for the closed units'
    weights) as gating the full-width output."""
    gen = torch.Generator().manual_seed(0)
    edges = torch.randint(0, 40, (2, 160), generator=gen)
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    x = torch.randn(40, 12, generator=gen) * (torch.rand(40, 12, generator=gen) < 0.3)
    torch.manual_seed(0)
    encoder = GNNEncoder(12, 32, hidden_channels=48)
    graph = encoder.prepare_graph(edge_index, 40)
    features = SparseOperator(x) if sparse_x else x
    gate = encoder.out_gate
    for beta, open_units in [(1.0, 32), (-2.0, 19), (-4.3, 4), (gate.beta_floor, 1)]:
        with torch.no_grad():
            gate.beta.fill_(beta)
        assert gate.num_open == open_units
        grads = []
        for block in (True, False):
            encoder.zero_grad()
            if block:
                z = encoder(features, graph)
            else:  # the reference: the whole output layer, then the gate
                z = gate(conv_layer(encoder.conv_out, encoder.hidden(features, graph), graph))
            (z * torch.linspace(-1, 1, z.numel()).view_as(z)).sum().backward()
            grads.append((z.detach(), [p.grad.clone() for p in encoder.parameters()]))
        (z_block, g_block), (z_full, g_full) = grads
        assert z_block.shape == (40, 32) and (z_block[:, :32 - open_units] == 0).all()
        torch.testing.assert_close(z_block, z_full, rtol=0, atol=1e-6)
        for a, b in zip(g_block, g_full):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        closed = slice(0, 32 - open_units)
        assert (encoder.conv_out.lin.weight.grad[closed] == 0).all() and (encoder.conv_out.bias.grad[closed] == 0).all()
