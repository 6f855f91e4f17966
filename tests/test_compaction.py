import pytest
import torch

from damgraph import DAMGate, GNNEncoder, build_autoencoder, build_classifier, compact, count_parameters
from damgraph.compaction import compacted_size


def _set_betas(model, *betas):
    masks = [m for m in model.modules() if isinstance(m, DAMGate)]
    assert len(masks) == len(betas)
    with torch.no_grad():
        for mask, beta in zip(masks, betas):
            mask.beta.fill_(beta)
    return masks


def _randomise_biases(model):
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen))


def test_output_gate_is_folded_and_cut(tiny_graph):
    torch.manual_seed(0)
    model = build_autoencoder("gae", 5, dim=8)
    _randomise_biases(model)
    (gate,) = _set_betas(model, -2.2)  # mu_j = 5j/8: units 4..7 open
    model.eval()
    z = model.encode(tiny_graph.x, tiny_graph.edge_index)
    small = compact(model).eval()
    z_small = small.encode(tiny_graph.x, tiny_graph.edge_index)
    assert gate.num_open == 4 and z_small.shape == (6, 4)
    torch.testing.assert_close(z_small, z[:, 4:], rtol=0, atol=1e-6)  # measured max error 1.2e-7
    assert (z[:, :4] == 0).all()
    assert not any(isinstance(m, DAMGate) for m in small.modules())
    # 5->16 conv stays, 16->8 becomes 16->4, one beta fewer
    assert count_parameters(model) - count_parameters(small) == (16 * 4 + 4) + 1
    # the original is left untouched
    assert isinstance(model.encoder.out_gate, DAMGate)


def test_hidden_and_output_gates_three_layers(tiny_graph):
    torch.manual_seed(0)
    encoder = GNNEncoder(5, 6, hidden_channels=10, num_layers=3, gate_hidden=True)
    _randomise_biases(encoder)
    masks = _set_betas(encoder, -1.6, -3.1, -0.9)  # open: 10-4=6, 10-7=3, 6-2=4 ... checked below
    widths = [m.num_open for m in masks]
    assert widths == [6, 3, 4]
    encoder.eval()
    z = encoder(tiny_graph.x, tiny_graph.edge_index)
    small = compact(encoder).eval()
    assert [c.out_channels for c in small.convs] == [6, 3] and small.conv_out.in_channels == 3
    torch.testing.assert_close(small(tiny_graph.x, tiny_graph.edge_index), z[:, 2:], rtol=0, atol=1e-6)  # measured 0


def test_vgae_embedding_and_latent_distribution(tiny_graph):
    torch.manual_seed(0)
    model = build_autoencoder("vgae", 5, dim=8, gate_hidden=True)
    _randomise_biases(model)
    hidden_gate, out_gate = _set_betas(model, -1.0, -3.0)
    model.eval()
    z = model.encode(tiny_graph.x, tiny_graph.edge_index)
    keep = out_gate.open_slice
    small = compact(model).eval()
    # measured max errors: embedding 6.0e-8, mu 6.0e-8, sigma 9.5e-7 (sigma up to 5.2)
    torch.testing.assert_close(small.encode(tiny_graph.x, tiny_graph.edge_index), z[:, keep], rtol=0, atol=1e-6)
    # z = g*(mu + sigma*eps): the compacted heads give mean g*mu and std g*sigma
    mu, logstd = model.encoder(tiny_graph.x, tiny_graph.edge_index)
    mu_s, logstd_s = small.encoder(tiny_graph.x, tiny_graph.edge_index)
    g = out_gate.values()[keep].detach()
    torch.testing.assert_close(mu_s, g * mu[:, keep], rtol=0, atol=1e-6)
    torch.testing.assert_close(logstd_s.exp(), g * logstd[:, keep].exp(), rtol=0, atol=3e-6)


def test_vgae_training_sample_is_gated_and_kl_counts_open_units(tiny_graph):
    torch.manual_seed(0)
    model = build_autoencoder("vgae", 5, dim=8)
    (gate,) = _set_betas(model, -2.2)
    model.train()
    z = model.encode(tiny_graph.x, tiny_graph.edge_index)
    assert (z[:, :4] == 0).all() and (z[:, 4:] != 0).all()  # no noise leaks through closed units
    mu, logstd = model.encoder(tiny_graph.x, tiny_graph.edge_index)
    mu, logstd = mu[:, 4:], logstd[:, 4:]
    expected = -0.5 * torch.mean(torch.sum(1 + 2 * logstd - mu**2 - logstd.exp() ** 2, dim=1))
    torch.testing.assert_close(model.kl_loss(), expected, rtol=0, atol=1e-6)  # measured 0


def test_classifier_logits_survive_compaction(tiny_graph):
    torch.manual_seed(0)
    model = build_classifier(5, 3, hidden_channels=12)
    _randomise_biases(model)
    (gate,) = _set_betas(model, -2.0)
    model.eval()
    logits = model(tiny_graph.x, tiny_graph.edge_index)
    small = compact(model).eval()
    assert small.convs[0].out_channels == gate.num_open == 7
    torch.testing.assert_close(small(tiny_graph.x, tiny_graph.edge_index), logits, rtol=0, atol=1e-6)  # measured 3.0e-8


def test_plain_model_is_unchanged_and_closed_gate_is_refused(tiny_graph):
    plain = build_autoencoder("gae", 5, dim=8, gate=None)
    assert count_parameters(compact(plain)) == count_parameters(plain)
    model = build_autoencoder("gae", 5, dim=8)
    _set_betas(model, -6.0)
    with pytest.raises(ValueError, match="every unit of the output gate is closed \\(DAMGate\\)"):
        compact(model)


def test_compact_cuts_the_mlp_decoders_closed_inputs(tiny_graph):
    from damgraph.models import build_autoencoder

    torch.manual_seed(0)
    model = build_autoencoder("gae", 5, 8, decoder="mlp").eval()
    with torch.no_grad():
        model.encoder.out_gate.beta.fill_(-2.0)  # closes the lowest units
    keep = model.encoder.out_gate.num_open
    assert keep == 4  # mu_j = 5j/8 > 2 for j = 4..7
    small = compact(model).eval()
    assert small.decoder.lin_in.in_features == keep
    pairs = torch.tensor([[0, 1, 2, 4], [3, 5, 1, 0]])
    z, z_small = model.encode(tiny_graph.x, tiny_graph.edge_index), small.encode(tiny_graph.x, tiny_graph.edge_index)
    torch.testing.assert_close(small.decoder(z_small, pairs), model.decoder(z, pairs), rtol=0, atol=1e-6)  # measured 0


@pytest.mark.parametrize("conv", ["gcn", "sage", "gat"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_every_conv_with_batch_norm_compacts_exactly(tiny_graph, conv, batch_norm):
    """SAGE and GAT layers, batch norms and the hidden/output gates cut to
    the same embedding; a cut GAT layer keeps its closed units' share of the
    attention logits."""
    torch.manual_seed(0)
    encoder = GNNEncoder(5, 8, hidden_channels=10, num_layers=3, gate_hidden=True, conv=conv,
                         batch_norm=batch_norm, activation="elu")
    _randomise_biases(encoder)
    with torch.no_grad():
        for module in encoder.modules():
            if hasattr(module, "att_src"):
                module.att_src.normal_()
                module.att_dst.normal_()
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_()
    _set_betas(encoder, -1.6, -3.1, -2.2)
    encoder.eval()
    graph = encoder.prepare_graph(tiny_graph.edge_index, tiny_graph.num_nodes)
    z = encoder(tiny_graph.x, graph)
    small = compact(encoder).eval()
    assert small.out_channels == 4 and not any(isinstance(m, DAMGate) for m in small.modules())
    # measured max error 2.4e-7 over the six cases (|z| up to 2.7)
    torch.testing.assert_close(small(tiny_graph.x, graph), z[:, 4:], rtol=0, atol=1e-6)
    assert count_parameters(small) < count_parameters(encoder)


def test_mlp_and_degree_decoders_lose_the_closed_inputs(tiny_graph):
    torch.manual_seed(0)
    model = build_autoencoder("maskgae", 5, dim=8, decoder="mlp", degree_weight=0.1, decoder_hidden=6,
                              batch_norm=True)
    _set_betas(model, -2.2)
    model.eval()
    z = model.encode(tiny_graph.x, tiny_graph.edge_index)
    small = compact(model).eval()
    z_small = small.encode(tiny_graph.x, tiny_graph.edge_index)
    edges = torch.tensor([[0, 1, 2], [3, 4, 5]])
    torch.testing.assert_close(small.decoder(z_small, edges), model.decoder(z, edges), rtol=0, atol=1e-6)  # measured 0
    torch.testing.assert_close(small.degree_decoder(z_small), model.degree_decoder(z), rtol=0, atol=1e-6)  # measured 0
    assert small.degree_decoder.lin_in.in_features == 4


@pytest.mark.parametrize("conv", ["sage", "gcn"])
def test_a_gated_node_table_compacts_with_the_same_scores(conv):
    """The ogb presets' DAM run gates the node table, the hidden layer and
    the output: compact() of the trained modules cuts the table's closed
    columns with the first layer's inputs, the hidden and output units and
    the MLP predictor's inputs, and scores every pair as before."""
    from torch_geometric.data import Data

    from damgraph.config import model_config
    from damgraph.linkpred import LinkPredTask
    from damgraph.splits import split_edges
    from damgraph.synthetic import community_graph

    g = community_graph(200, seed=0)
    split = split_edges(Data(edge_index=g.edge_index, num_nodes=g.num_nodes), 0, mrr_negatives=0)
    task = LinkPredTask(split, model_config(f"{conv}-mlp", dim=16, pos_batch_size=256, epochs=3))
    task.fit()
    gates = {"table": task.inputs.gate, "hidden": task.model.encoder.hidden_gates[0],
             "output": task.model.encoder.out_gate}
    with torch.no_grad():  # close a different number of units in each
        for gate, beta in zip(gates.values(), (-1.6, -2.6, -3.6)):
            gate.beta.fill_(beta)
    widths = {name: gate.num_open for name, gate in gates.items()}
    assert len(set(widths.values())) == 3 and max(widths.values()) < 16
    small = compact(task.module).eval()
    task.module.eval()
    graph = task.encoder_inputs(split[0])[1]
    pairs = torch.cat([split[2].pos_edge_label_index, split[2].neg_edge_label_index], dim=1)
    with torch.no_grad():
        before = task.model.decoder(task.model.encode(task.inputs(), graph), pairs)
        z = small["net"].encode(small["inputs"](), graph)
        after = small["net"].decoder(z, pairs)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
    assert small["inputs"].x.shape == (200, widths["table"]) and z.shape == (200, widths["output"])
    first = small["net"].encoder.convs[0]
    assert first.in_channels == widths["table"] and first.out_channels == widths["hidden"]
    assert small["net"].decoder.lin_in.in_features == widths["output"]
    assert count_parameters(small) < count_parameters(task.module)
    assert compacted_size(task.module) == count_parameters(small)


def test_a_gae_on_a_graph_without_features_gates_and_cuts_its_learned_inputs():
    """gate_inputs works for any model's learned node inputs: the GAE's table
    behind a DAM gate, cut by compact() with the first GCN layer."""
    from torch_geometric.data import Data

    from damgraph.config import model_config
    from damgraph.linkpred import LinkPredTask
    from damgraph.splits import split_edges
    from damgraph.synthetic import community_graph

    g = community_graph(150, seed=1)
    split = split_edges(Data(edge_index=g.edge_index, num_nodes=g.num_nodes), 0, mrr_negatives=0)
    task = LinkPredTask(split, model_config("gae", dim=8, input_dim=12, gate_inputs=True, epochs=2))
    task.fit()
    with torch.no_grad():
        task.inputs.gate.beta.fill_(-2.6)  # 12 columns: mu_j = 5j/12 > 2.6 for j >= 7, 5 open
    assert task.inputs.gate.num_open == 5
    small = compact(task.module).eval()
    task.module.eval()
    graph = task.encoder_inputs(split[0])[1]
    with torch.no_grad():
        torch.testing.assert_close(small["net"].encode(small["inputs"](), graph),
                                   task.model.encode(task.inputs(), graph), rtol=1e-5, atol=1e-6)
    assert small["inputs"].x.shape == (150, 5) and small["net"].encoder.convs[0].lin.weight.shape[1] == 5


def test_the_ogb_preset_on_a_graph_with_features_reads_them_and_compacts():
    """With node features the sage-mlp preset reads them (no node table):
    DAM gates the hidden and output widths, and compact() gives the same
    scores with the first layer still reading every feature."""
    from torch_geometric.data import Data

    from damgraph.config import model_config
    from damgraph.linkpred import LinkPredTask
    from damgraph.splits import split_edges
    from damgraph.synthetic import community_graph

    g = community_graph(120, seed=2)
    x = torch.randn(g.num_nodes, 7, generator=torch.Generator().manual_seed(0))
    split = split_edges(Data(x=x, edge_index=g.edge_index, num_nodes=g.num_nodes), 0, mrr_negatives=0)
    task = LinkPredTask(split, model_config("sage-mlp", dim=16, pos_batch_size=256, epochs=3))
    task.fit()
    assert task.inputs is None and task.module is task.model  # the model alone is trained
    gates = (task.model.encoder.hidden_gates[0], task.model.encoder.out_gate)
    with torch.no_grad():
        for gate, beta in zip(gates, (-1.6, -3.1)):
            gate.beta.fill_(beta)
    widths = [gate.num_open for gate in gates]
    small = compact(task.module).eval()
    task.module.eval()
    graph = task.encoder_inputs(split[0])[1]
    pairs = torch.cat([split[2].pos_edge_label_index, split[2].neg_edge_label_index], dim=1)
    with torch.no_grad():
        before = task.model.decoder(task.model.encode(x, graph), pairs)
        after = small.decoder(small.encode(x, graph), pairs)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
    first = small.encoder.convs[0]
    assert (first.in_channels, first.out_channels) == (7, widths[0]) and widths[0] < 16 and widths[1] < 16
    assert small.decoder.lin_in.in_features == widths[1]
