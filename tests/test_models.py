"""damgraph.models: the autoencoders build_autoencoder makes, their decoders,
DAMVGAE, MaskGAE, the classifier, count_parameters and make_optimizer."""
import copy
import math

import pytest
import torch
from torch import nn
from torch_geometric.nn import GAE, SAGEConv
from torch_geometric.nn.models.autoencoder import InnerProductDecoder as PyGInnerProductDecoder

from damgraph import DAMGate, LinkPredConfig, build_autoencoder, build_classifier, count_parameters, make_optimizer
from damgraph.encoders import GNNEncoder, SIGNEncoder
from damgraph.gates import gate_parameters
from damgraph.models import DAMGAE, DAMVGAE, DegreeDecoder, InnerProductDecoder, MaskGAE, MLPEdgeDecoder


def test_gae_is_pyg_gae_on_a_gated_gcn_encoder_with_the_inner_product():
    model = build_autoencoder("gae", 5, 8)
    # PyG's GAE with the model's own answers (no extra loss term, not variational, edge weights taken)
    assert type(model) is DAMGAE and isinstance(model, GAE) and type(model.encoder) is GNNEncoder
    assert not model.variational and model.takes_edge_weights
    assert model.regularization_loss(torch.ones(3, 8), None, 3).item() == 0.0
    assert type(model.decoder) is InnerProductDecoder and isinstance(model.decoder, PyGInnerProductDecoder)
    encoder = model.encoder
    assert encoder.conv == "gcn" and encoder.activation == "relu" and not encoder.variational
    assert isinstance(encoder.out_gate, DAMGate) and encoder.out_gate.width == 8
    assert all(isinstance(m, nn.Identity) for m in (*encoder.norms, *encoder.hidden_gates, encoder.out_norm))
    assert encoder.convs[0].out_channels == 16 and len(encoder.convs) == 1
    # 5 -> 16 -> 8 GCN layers (weights and biases) and one beta
    assert count_parameters(model) == (5 * 16 + 16) + (16 * 8 + 8) + 1 == 233
    plain = build_autoencoder("gae", 5, 8, gate=None)
    assert count_parameters(plain) == 232 and not gate_parameters(plain)


def test_vgae_is_a_damvgae_on_a_variational_encoder():
    model = build_autoencoder("vgae", 5, 8, gate_hidden=True)
    assert type(model) is DAMVGAE and model.encoder.variational
    assert isinstance(model.decoder, InnerProductDecoder)
    assert [type(g) for g in model.encoder.hidden_gates] == [DAMGate]
    assert model.encoder.conv_mu.out_channels == model.encoder.conv_logstd.out_channels == 8
    with pytest.raises(ValueError, match="needs a GNNEncoder built with variational=True"):
        DAMVGAE(GNNEncoder(5, 8))


def test_maskgae_uses_its_preset():
    model = build_autoencoder("maskgae", 5, 8)
    assert type(model) is MaskGAE
    encoder = model.encoder
    # preset: hidden 128, batch norm, ELU, dropout 0.5; an MLP decoder of 32 units with dropout 0.3
    assert encoder.convs[0].out_channels == 128 and encoder.activation == "elu" and encoder.dropout == 0.5
    assert isinstance(encoder.norms[0], nn.BatchNorm1d) and isinstance(encoder.out_norm, nn.BatchNorm1d)
    assert type(model.decoder) is MLPEdgeDecoder
    assert (model.decoder.lin_in.in_features, model.decoder.lin_in.out_features) == (8, 32)
    assert model.decoder.dropout == 0.3
    # preset degree_weight 0.002 > 0: a degree decoder on the embedding
    assert type(model.degree_decoder) is DegreeDecoder
    assert (model.degree_decoder.lin_in.in_features, model.degree_decoder.lin_in.out_features) == (8, 32)
    without = build_autoencoder("maskgae", 5, 8, degree_weight=0.0, decoder="inner")
    assert without.degree_decoder is None and type(without.decoder) is InnerProductDecoder


def test_config_settings_reach_the_model():
    config = LinkPredConfig(dim=6, hidden=10, num_layers=3, conv="sage", gate="l1", gate_hidden=True)
    model = build_autoencoder(config, 5)
    assert [type(c) for c in model.encoder.convs] == [SAGEConv, SAGEConv]
    assert model.encoder.convs[0].out_channels == 10 and model.encoder.conv_out.out_channels == 6
    assert len(gate_parameters(model)) == 3
    # dim and settings override a given config
    other = build_autoencoder(config, 5, dim=4, conv="gcn", gate=None)
    assert other.encoder.conv == "gcn" and other.encoder.out_channels == 4 and not gate_parameters(other)
    with pytest.raises(ValueError, match="unknown conv 'gin'"):
        build_autoencoder(config, 5, conv="gin")


def test_precomputed_mode_uses_a_sign_encoder():
    torch.manual_seed(0)
    model = build_autoencoder(LinkPredConfig(mode="precomputed"), 7)
    assert type(model) is DAMGAE and type(model.encoder) is SIGNEncoder
    encoder = model.encoder
    assert encoder.hops == 2 and len(encoder.hop_lins) == 3 and encoder.hop_lins[0].in_features == 7
    assert encoder.hop_lins[0].out_features == 256 and encoder.lin_out.out_features == 128
    assert isinstance(encoder.out_gate, DAMGate) and encoder.out_gate.width == 128
    small = build_autoencoder(LinkPredConfig(mode="precomputed", hops=3, dim=4, hidden=5, gate=None), 7)
    assert len(small.encoder.hop_lins) == 4 and small.encoder.lin_out.in_features == 20
    assert isinstance(small.encoder.out_gate, nn.Identity)
    assert small.encode(torch.randn(3, 28)).shape == (3, 4)


def test_maskgae_reset_parameters_also_resets_the_degree_decoder():
    def perturbed(seed):
        torch.manual_seed(seed)
        model = build_autoencoder("maskgae", 5, 8)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(3.0)
        return model

    a, b = perturbed(0), perturbed(1)
    before = {k: v.clone() for k, v in a.degree_decoder.state_dict().items()}
    torch.manual_seed(7)
    a.reset_parameters()
    torch.manual_seed(7)
    b.reset_parameters()
    for name, value in a.degree_decoder.state_dict().items():
        assert not torch.equal(value, before[name]), name
        assert torch.equal(value, b.degree_decoder.state_dict()[name]), name  # a fresh seeded state
    for lin in (a.degree_decoder.lin_in, a.degree_decoder.lin_out):  # back within nn.Linear's init range
        bound = 1 / math.sqrt(lin.in_features)
        assert lin.weight.abs().max() <= bound and lin.bias.abs().max() <= bound
    assert a.encoder.out_gate.beta.item() == 1.0
    assert torch.equal(a.decoder.lin_in.weight, b.decoder.lin_in.weight)


def test_make_optimizer_gives_the_gates_their_own_group():
    model = build_autoencoder("gae", 5, 8, gate_hidden=True)
    optimizer = make_optimizer(model, lr=0.02, weight_decay=1e-3, beta_lr=0.3)
    weights, gates = optimizer.param_groups
    assert [id(p) for p in gates["params"]] == [id(model.encoder.hidden_gates[0].beta),
                                                id(model.encoder.out_gate.beta)]
    assert gates["lr"] == 0.3 and gates["weight_decay"] == 0.0
    assert weights["lr"] == 0.02 and weights["weight_decay"] == 1e-3 and len(weights["params"]) == 4
    assert len(weights["params"]) + len(gates["params"]) == len(list(model.parameters()))
    # beta_lr defaults to lr; no gates, one group
    assert make_optimizer(model, lr=0.05).param_groups[1]["lr"] == 0.05
    assert len(make_optimizer(build_autoencoder("gae", 5, 8, gate=None)).param_groups) == 1


def test_weight_decay_never_reaches_the_gates():
    gate = DAMGate(3, beta_init=2.0)
    optimizer = make_optimizer(gate, lr=0.1, weight_decay=10.0, beta_lr=0.1)
    gate.beta.grad = torch.zeros(())
    optimizer.step()  # zero gradient: only weight decay could move beta
    assert gate.beta.item() == 2.0


def test_inner_product_decoder_equals_pyg_to_float_rounding():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(50, 16, generator=gen)
    edge_index = torch.randint(50, (2, 300), generator=gen)  # repeated pairs among them
    ours, pyg = InnerProductDecoder(), PyGInnerProductDecoder()
    for sigmoid in (True, False):  # measured max error 1.2e-7 and 1.9e-6 (logits up to about 20)
        torch.testing.assert_close(ours(z, edge_index, sigmoid=sigmoid), pyg(z, edge_index, sigmoid=sigmoid),
                                   rtol=0, atol=5e-6)
    assert torch.equal(ours.forward_all(z), pyg.forward_all(z))
    # and the same gradient (measured max error 2.4e-7)
    za, zb = z.clone().requires_grad_(), z.clone().requires_grad_()
    ours(za, edge_index).sum().backward()
    pyg(zb, edge_index).sum().backward()
    torch.testing.assert_close(za.grad, zb.grad, rtol=0, atol=1e-6)


def test_pair_dot_gradient_is_exact_in_double_precision():
    from damgraph.propagation import pair_dot

    gen = torch.Generator().manual_seed(1)
    z = torch.randn(30, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    edge_index = torch.randint(30, (2, 200), generator=gen)
    edge_index[:, :5] = edge_index[:, 5:10]  # repeats
    assert torch.autograd.gradcheck(lambda z: pair_dot(z, edge_index), (z,))
    assert pair_dot(z, edge_index[:, :0]).shape == (0,)


def test_mlp_edge_decoder_by_hand_and_cut_inputs():
    decoder = MLPEdgeDecoder(2, hidden_channels=2)
    with torch.no_grad():
        decoder.lin_in.weight.copy_(torch.eye(2))
        decoder.lin_in.bias.copy_(torch.tensor([0.0, -1.0]))
        decoder.lin_out.weight.copy_(torch.tensor([[2.0, 3.0]]))
        decoder.lin_out.bias.fill_(0.5)
    z = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]])
    edges = torch.tensor([[0, 1], [1, 2]])
    # z0*z1 = (3, -2) -> relu(3, -3) = (3, 0) -> 6.5; z1*z2 = (1.5, -4) -> (1.5, 0) -> 3.5
    assert decoder(z, edges, sigmoid=False).tolist() == [6.5, 3.5]
    torch.testing.assert_close(decoder(z, edges), torch.sigmoid(torch.tensor([6.5, 3.5])), rtol=0, atol=0)
    with torch.no_grad():
        decoder.lin_in.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))  # input 1 unused
    full = decoder(z, edges)
    decoder.keep_inputs(torch.tensor([0]))
    assert decoder.lin_in.in_features == 1
    assert torch.equal(decoder(z[:, :1], edges), full)
    with pytest.raises(ValueError, match="decoder dropout must be in \\[0, 1\\), got 1.0"):
        MLPEdgeDecoder(2, dropout=1.0)


def _degree_model():
    decoder = DegreeDecoder(2, hidden_channels=2)
    with torch.no_grad():
        decoder.lin_in.weight.copy_(torch.eye(2))
        decoder.lin_in.bias.zero_()
        decoder.lin_out.weight.copy_(torch.tensor([[1.0, 1.0]]))
        decoder.lin_out.bias.fill_(-0.5)
    return MaskGAE(GNNEncoder(3, 2), degree_decoder=decoder)


def test_degree_decoder_and_degree_loss_by_hand():
    model = _degree_model()
    z = torch.tensor([[1.0, 0.0], [0.0, 3.0], [-1.0, -1.0]])
    # relu(relu(z_i) summed - 0.5): 0.5, 2.5, relu(-0.5) = 0
    assert model.degree_decoder(z).tolist() == [0.5, 2.5, 0.0]
    hidden = torch.tensor([[0, 1], [1, 2]])  # node degrees among the hidden edges: 1, 2, 1
    # ((0.5 - 1)^2 + (2.5 - 2)^2 + (0 - 1)^2) / 3 = 1.5 / 3
    assert model.degree_loss(z, hidden).item() == 0.5
    no_head = MaskGAE(GNNEncoder(3, 2))
    assert type(no_head.decoder) is InnerProductDecoder
    loss = no_head.degree_loss(z, hidden)
    assert loss.shape == () and loss.item() == 0.0


def test_damvgae_gates_the_sample_and_embeds_g_times_mu(tiny_graph):
    torch.manual_seed(0)
    model = build_autoencoder("vgae", 5, 8)
    gate = model.encoder.out_gate
    with torch.no_grad():
        gate.beta.fill_(-2.2)  # mu_j = 5j/8: units 4..7 open
    model.eval()
    mu, _ = model.encoder(tiny_graph.x, tiny_graph.edge_index)
    z = model.encode(tiny_graph.x, tiny_graph.edge_index)
    torch.testing.assert_close(z, gate.values() * mu, rtol=0, atol=0)
    assert model.__mu__.shape == (6, 4)  # the KL term sees the open units only
    model.train()
    z = model.encode(tiny_graph.x, tiny_graph.edge_index)
    assert (z[:, :4] == 0).all() and not torch.equal(z[:, 4:], (gate.values() * mu)[:, 4:])
    # the last (mu, logstd) belong to one forward pass: copies leave them out
    clone = copy.deepcopy(model)
    assert not hasattr(clone, "__mu__") and torch.equal(clone.encoder.out_gate.beta, gate.beta)


def test_classifier_gates_its_hidden_layer_only(tiny_graph):
    model = build_classifier(5, 3, hidden_channels=12)
    assert isinstance(model.out_gate, nn.Identity) and [g.width for g in model.hidden_gates] == [12]
    assert model.dropout == 0.5 and model(tiny_graph.x, tiny_graph.edge_index).shape == (6, 3)
    assert count_parameters(model) == (5 * 12 + 12) + (12 * 3 + 3) + 1
    assert not gate_parameters(build_classifier(5, 3, dam=False))


@pytest.mark.parametrize("conv, params", [("sage", 1_421_057), ("gcn", 1_289_985)])
def test_the_ogb_presets_are_ogbs_ddi_recipe(conv, params):
    """sage-mlp / gcn-mlp hold the settings of OGB's examples/linkproppred/ddi/gnn.py
    and, at ogbl-ddi's 4,267 nodes, the parameter counts of OGB's leaderboard rows."""
    from damgraph.config import model_config
    from damgraph.inputs import LearnedInput

    config = model_config(f"{conv}-mlp", gate=None)
    expected = dict(conv=conv, dim=256, num_layers=2, dropout=0.5, dropout_input=False, decoder="mlp",
                    decoder_dropout=0.5, decoder_dropout_at="hidden", lr=0.005, epochs=200, pos_batch_size=65536,
                    grad_clip=1.0, clip_per_part=True, val_metric="hits@20", val_every=5, inputs="learned",
                    weight_decay=0.0, batch_norm=False, activation="relu")
    assert {k: getattr(config, k) for k in expected} == expected
    assert (config.hidden_width, config.input_width, config.decoder_width) == (256, 256, 256)
    model, table = build_autoencoder(config, config.input_width), LearnedInput.for_config(config, 4267)
    assert count_parameters(model) + count_parameters(table) == params
    assert config.patience >= config.epochs  # OGB selects the best evaluated epoch, with no early stop


@pytest.mark.parametrize("conv", ["sage", "gcn"])
def test_the_ogb_preset_computes_the_function_of_ogbs_example(tiny_graph, conv):
    """With the same weights, the preset's encoder (on its prebuilt graph)
    and decoder give the scores of OGB's SAGE/GCN and LinkPredictor as
    written in its example (benchmarks.ogb_speed), in evaluation and in
    training without dropout."""
    from benchmarks.ogb_speed import ReferenceEncoder, ReferencePredictor
    from damgraph.config import model_config

    torch.manual_seed(0)
    config = model_config(f"{conv}-mlp", dim=8, gate=None)
    model = build_autoencoder(config, config.input_width)
    ref_encoder = ReferenceEncoder(conv, 8, 2, 0.5)
    ref_predictor = ReferencePredictor(8, 2, 0.5)
    with torch.no_grad():
        for mine, ref in zip([*model.encoder.convs, model.encoder.conv_out], ref_encoder.convs):
            ref.load_state_dict(mine.state_dict())
        for mine, ref in zip([model.decoder.lin_in, model.decoder.lin_out], ref_predictor.lins):
            ref.load_state_dict(mine.state_dict())
    x = torch.randn(tiny_graph.num_nodes, 8)
    pairs = torch.tensor([[0, 1, 2, 5], [3, 4, 0, 1]])
    model.eval(), ref_encoder.eval(), ref_predictor.eval()
    graph = model.encoder.prepare_graph(tiny_graph.edge_index, tiny_graph.num_nodes)
    z, h = model.encode(x, graph), ref_encoder(x, tiny_graph.edge_index)
    torch.testing.assert_close(z, h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.decoder(z, pairs), ref_predictor(h[pairs[0]], h[pairs[1]]).view(-1),
                               rtol=1e-5, atol=1e-6)
    model.train()
    model.encoder.dropout = model.decoder.dropout = 0.0
    torch.testing.assert_close(model.encode(x, graph), h, rtol=1e-5, atol=1e-6)


def test_encoder_dropout_between_layers_only_leaves_the_input_alone(tiny_graph):
    """dropout_input=False (OGB's examples): the first layer sees the input
    itself; the hidden layer's output is still dropped."""
    torch.manual_seed(0)
    seen = []
    for dropout_input in (True, False):
        encoder = GNNEncoder(5, 4, dropout=0.5, dropout_input=dropout_input, gate_output=False)
        encoder.convs[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
        encoder.conv_out.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
        encoder.train()
        encoder(tiny_graph.x, tiny_graph.edge_index)
    dropped_in, dropped_hidden, kept_in, dropped_hidden_2 = seen
    assert not torch.equal(dropped_in, tiny_graph.x) and torch.equal(kept_in, tiny_graph.x)
    assert (dropped_hidden == 0).float().mean() > 0.3 and (dropped_hidden_2 == 0).float().mean() > 0.3


def test_mlp_decoder_dropout_after_the_hidden_layer_and_on_the_open_block():
    """OGB's placement: dropout after the hidden ReLU, not on the input; a
    decoder without input dropout scores the top block of an embedding as
    the zero-padded embedding (DAM's open units), with the same gradients."""
    torch.manual_seed(0)
    decoder = MLPEdgeDecoder(6, 5, dropout=0.5, dropout_at="hidden")
    assert decoder.reads_top_block and not MLPEdgeDecoder(6, 5, dropout=0.5).reads_top_block
    assert MLPEdgeDecoder(6, 5, dropout=0.0).reads_top_block
    z = torch.randn(4, 6)
    pairs = torch.tensor([[0, 1, 2], [3, 2, 1]])
    decoder.eval()
    hidden = torch.relu(decoder.lin_in(z[pairs[0]] * z[pairs[1]]))
    torch.testing.assert_close(decoder(z, pairs, sigmoid=False), decoder.lin_out(hidden).view(-1))
    decoder.train()
    torch.manual_seed(1)
    out = decoder(z, pairs, sigmoid=False)
    torch.manual_seed(1)
    mask = torch.nn.functional.dropout(torch.ones_like(hidden), 0.5, True)
    torch.testing.assert_close(out, decoder.lin_out(hidden * mask).view(-1))
    decoder.eval()
    padded = torch.cat([torch.zeros(4, 2), z[:, 2:]], dim=1).requires_grad_()
    block = z[:, 2:].clone().requires_grad_()
    full, narrow = decoder(padded, pairs), decoder(block, pairs)
    torch.testing.assert_close(narrow, full)
    (grad_full,) = torch.autograd.grad(full.sum(), decoder.lin_in.weight)
    (grad_narrow,) = torch.autograd.grad(narrow.sum(), decoder.lin_in.weight)
    torch.testing.assert_close(grad_narrow, grad_full)
    with pytest.raises(ValueError, match="dropout_at must be 'input' or 'hidden'"):
        MLPEdgeDecoder(6, 5, dropout_at="output")
