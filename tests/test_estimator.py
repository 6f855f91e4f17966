import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from damgraph import DAMEmbedding, prepare_graph
from damgraph.graphs import GraphInputError, canonical_order
from damgraph.io import load_checkpoint, load_embeddings, save_checkpoint, save_embeddings


@pytest.fixture(scope="module")
def community_graph():
    """Two 20-node communities with string ids, weighted, plus one isolated node."""
    g = nx.stochastic_block_model([20, 20], [[0.4, 0.02], [0.02, 0.4]], seed=1)
    g = nx.relabel_nodes(g, {i: f"user-{i}" for i in g})
    for u, v in g.edges:
        g.edges[u, v]["weight"] = 1.0 + (int(u[5:]) + int(v[5:])) % 3
    g.add_node("loner")
    return g


@pytest.fixture(scope="module")
def fitted(community_graph):
    return DAMEmbedding(dim=16, epochs=60, patience=60, val_fraction=0.1, seed=0).fit(community_graph)


def test_fit_sets_the_learned_attributes(fitted, community_graph):
    assert fitted.embedding_.shape == (41, fitted.width_)
    assert 1 <= fitted.width_ <= 16
    assert fitted.node_ids_ == canonical_order(community_graph.nodes)
    assert 0.5 < fitted.val_auc_ <= 1.0
    assert len(fitted.history_) == 60 and {"loss", "width", "val_score"} == set(fitted.history_[0])
    assert fitted.history_[fitted.best_epoch_ - 1]["val_score"] == fitted.val_auc_ == fitted.val_score_
    assert fitted.graph_report_["isolated"] == 1
    assert np.isfinite(fitted.embedding_).all()
    # nodes of the same community are closer than nodes of different ones
    z = fitted.embedding_[[fitted.node_ids_.index(f"user-{i}") for i in range(40)]]
    sim = z @ z.T
    same = np.mean([sim[i, j] for i in range(20) for j in range(20) if i != j])
    cross = np.mean([sim[i, j] for i in range(20) for j in range(20, 40)])
    assert same > cross


def test_sklearn_conventions_and_same_seed_same_embedding(community_graph):
    est = DAMEmbedding(dim=8, epochs=20, seed=3)
    assert est.get_params()["dim"] == 8 and not hasattr(est, "embedding_")
    assert clone(est).set_params(dim=4).dim == 4
    a = est.fit_transform(community_graph)
    b = DAMEmbedding(dim=8, epochs=20, seed=3).fit_transform(community_graph)
    np.testing.assert_array_equal(a, b)


def test_save_load_reproduces_embeddings(fitted, community_graph, tmp_path):
    fitted.save(tmp_path / "model.pt")
    loaded = DAMEmbedding.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(loaded.transform(community_graph), fitted.embedding_)
    assert loaded.node_ids_ == fitted.node_ids_
    fitted.save(tmp_path / "gated.pt", compacted=False)
    gated = DAMEmbedding.load(tmp_path / "gated.pt")
    full = gated.transform(community_graph)
    assert full.shape[1] == 16
    np.testing.assert_allclose(full[:, 16 - fitted.width_:], fitted.embedding_, rtol=1e-5, atol=1e-6)
    assert (tmp_path / "model.pt").stat().st_size < (tmp_path / "gated.pt").stat().st_size


def test_a_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.ones(2), "payload": print}, path)
    (tmp_path / "evil.pt.json").write_text("{}")
    with pytest.raises(ValueError, match="not a plain weights file"):
        load_checkpoint(path)
    save_checkpoint(tmp_path / "ok.pt", {"w": torch.ones(2)}, {"a": 1})
    state, config = load_checkpoint(tmp_path / "ok.pt")
    assert config == {"a": 1} and torch.equal(state["w"], torch.ones(2))


@pytest.mark.parametrize("name", ["emb.npy", "emb.txt", "emb.csv"])
def test_embedding_files_round_trip(tmp_path, name):
    z = np.arange(6, dtype=np.float32).reshape(3, 2) / 7
    ids = ["a", "b", "c"]
    written = save_embeddings(tmp_path / name, z, ids)
    assert all(p.exists() for p in written)
    back, back_ids = load_embeddings(tmp_path / name)
    np.testing.assert_array_equal(back, z)
    assert back_ids == ids
    if name.endswith(".txt"):
        assert (tmp_path / name).read_text().splitlines()[0] == "3 2"


def test_bad_input_to_fit():
    with pytest.raises(GraphInputError, match="too few for a 5% validation split \\(at least 20 needed\\)"):
        DAMEmbedding().fit(nx.path_graph(5))
    small = DAMEmbedding(dim=4, epochs=3, val_fraction=0).fit(nx.path_graph(5))  # works without validation
    assert small.embedding_.shape[0] == 5 and small.val_auc_ is None and small.best_epoch_ == 3
    with pytest.raises(ValueError, match="model must be one of gae, vgae, maskgae"):
        DAMEmbedding(model="gat").fit(nx.path_graph(30))
    # A penalty that would close every unit leaves one: training keeps the DAM gate's top unit open.
    squeezed = DAMEmbedding(dim=4, lam=1e4, epochs=80, val_fraction=0, beta_lr=0.5).fit(nx.karate_club_graph())
    assert squeezed.width_ == 1 and squeezed.embedding_.shape == (34, 1)
    assert squeezed.gated_model_.encoder.out_gate.beta.item() == pytest.approx(-5 * 3 / 4 + 0.5)  # the floor


def test_bad_input_through_the_api(tmp_path):
    """The command's bad-input table, through the Python API."""
    from damgraph import load_dataset, save_embeddings

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    malformed = tmp_path / "m.txt"
    malformed.write_text("a b\nb c d e\n")
    heavy = tmp_path / "w.txt"
    heavy.write_text("a b 1\nb c x\n")
    g = nx.karate_club_graph()
    cases = [
        (lambda: DAMEmbedding().fit(tmp_path / "nope.txt"), GraphInputError, "no such file"),
        (lambda: DAMEmbedding().fit(empty), GraphInputError, "holds no edges"),
        (lambda: DAMEmbedding().fit(malformed), GraphInputError, "line 2"),
        (lambda: DAMEmbedding().fit(heavy), GraphInputError, "weight 'x' is not a number"),
        (lambda: DAMEmbedding().fit(g, np.ones((3, 2))), GraphInputError, "but the graph has 34 nodes"),
        (lambda: DAMEmbedding().fit(g, np.full((34, 2), np.inf)), GraphInputError, "NaN or inf"),
        (lambda: load_dataset("cora2"), ValueError, "unknown dataset 'cora2'"),
        (lambda: save_embeddings(tmp_path / "no" / "z.npy", np.ones((1, 1)), ["a"]), OSError, "No such file"),
        (lambda: DAMEmbedding(dim=8, epochs=5, lr=1e30).fit(g), FloatingPointError, "NaN or inf"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    assert not (tmp_path / "no").exists()


ids = st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=4, max_size=12, unique=True)


@settings(max_examples=15, deadline=None)
@given(ids, st.randoms(use_true_random=False))
def test_embedding_rows_follow_node_ids(names, rnd):
    """Rows of embedding_ belong to node_ids_ whatever order the nodes come in:
    an untrained model (lr 0) embeds each node the same under any relabelling."""
    edges = [(names[i], names[(i + 1) % len(names)]) for i in range(len(names))]
    features = {name: [float(len(name)), float(ord(name[0]))] for name in names}
    shuffled = edges[:]
    rnd.shuffle(shuffled)
    results = []
    for order in (edges, shuffled):
        est = DAMEmbedding(dim=4, epochs=1, lr=0.0, beta_lr=0.0, val_fraction=0).fit(nx.Graph(order), features)
        results.append(dict(zip(est.node_ids_, est.embedding_)))
    assert set(results[0]) == set(names)
    for name in names:
        np.testing.assert_allclose(results[0][name], results[1][name], rtol=1e-5, atol=1e-6)


def test_maskgae_embeds_and_reloads_exactly(community_graph, tmp_path):
    with pytest.raises(GraphInputError, match="does not use edge weights"):
        DAMEmbedding(model="maskgae").fit(community_graph)
    community_graph = nx.Graph(community_graph.edges)  # unweighted
    community_graph.add_node("loner")
    est = DAMEmbedding(dim=16, model="maskgae", lam=0.1, epochs=40, patience=40, val_fraction=0.1,
                       seed=0).fit(community_graph)
    assert est.embedding_.shape == (41, est.width_) and 1 <= est.width_ <= 16
    assert 0.5 < est.val_auc_ <= 1.0 and np.isfinite(est.embedding_).all()
    assert est.model_.degree_decoder.lin_in.in_features == est.width_  # the compacted degree head
    est.save(tmp_path / "m.pt")
    again = DAMEmbedding.load(tmp_path / "m.pt")
    np.testing.assert_array_equal(again.transform(community_graph), est.embedding_)
    with pytest.raises(ValueError, match="masks undirected edges"):
        DAMEmbedding(model="maskgae", directed=True).fit(community_graph)


@pytest.mark.parametrize("model", ["gae", "maskgae"])
def test_the_estimator_and_the_harness_give_identical_numbers(cora, model):
    """Same graph, split, settings and seed: DAMEmbedding and the harness's
    dam method train the same model, to the last bit."""
    from benchmarks.sizing import METHODS, Job
    from damgraph import compact, model_config, prepare_graph, train_link_prediction
    from damgraph.splits import holdout_split

    est = DAMEmbedding(model=model, decoder=None, val_tolerance=None, val_min_delta=None, inputs=None,
                       positives="edges", dim=32, epochs=25, patience=25,
                       seed=1).fit(cora)  # None (and the edges): the presets, as the harness trains
    assert est.config_ == model_config(model, dim=32, epochs=25, patience=25, seed=1)
    data = prepare_graph(cora).data
    train, val = holdout_split(data, 1, 0.05)
    split = (train, val, val)  # the estimator has no test split: score validation twice
    config = model_config(model, dim=32, epochs=25, patience=25, seed=1)
    row = METHODS["dam"].run(Job(split, config, [32], "cora"))
    assert row["val_auc"] == est.val_auc_ and row["width"] == est.width_ and row["best_epoch"] == est.best_epoch_
    result = train_link_prediction(split, config)
    assert [h["loss"] for h in est.history_] == result.record.losses
    assert [h["val_score"] for h in est.history_] == result.record.val_scores
    small = compact(result.model).eval()
    with torch.no_grad():
        z = small.encode(data.x, small.encoder.prepare_graph(data.edge_index, data.num_nodes)).numpy()
        z_pyg = small.encode(data.x, data.edge_index).numpy()  # PyG's message passing
    np.testing.assert_array_equal(est.embedding_, z)
    np.testing.assert_allclose(est.embedding_, z_pyg, rtol=0, atol=1e-5)


def test_hits_at_k_selection_reports_its_score_and_the_validation_auc():
    """With val_metric="hits@20" the epoch is selected on Hits@20 (val_score_, history_) and
    val_auc_ is still the kept model's validation AUC."""
    from sklearn.metrics import roc_auc_score

    from damgraph.splits import holdout_split

    g = nx.stochastic_block_model([100, 100], [[0.1, 0.01], [0.01, 0.1]], seed=3)
    est = DAMEmbedding(dim=16, epochs=30, patience=30, val_metric="hits@20", seed=0).fit(g)
    assert est.config_.val_metric == "hits@20"
    assert est.val_score_ == est.history_[est.best_epoch_ - 1]["val_score"]
    assert est.val_score_ >= max(h["val_score"] for h in est.history_) - 0.01  # val_tolerance
    train, val = holdout_split(prepare_graph(g).data, 0, 0.05)
    net = est.gated_model_
    with torch.no_grad():
        z = net.encode(est.inputs_(), net.encoder.prepare_graph(train.edge_index, train.num_nodes))
        pairs = torch.cat([val.pos_edge_label_index, val.neg_edge_label_index], 1)
        scores = (z[pairs[0]] * z[pairs[1]]).sum(1).numpy()
    labels = np.r_[np.ones(val.pos_edge_label_index.size(1)), np.zeros(val.neg_edge_label_index.size(1))]
    assert est.val_auc_ == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert est.val_auc_ != est.val_score_


def test_maskgae_trains_with_its_preset(community_graph):
    from damgraph.config import MODEL_FAMILIES

    est = DAMEmbedding(model="maskgae", decoder=None, dim=16, epochs=3, seed=0).fit(
        nx.Graph(list(community_graph.edges())))
    preset = MODEL_FAMILIES["maskgae"].preset
    assert est.config_.patience == preset["patience"] == 300 and est.config_.lam == 0.1 and "lam" not in preset
    assert est.config_.decoder == "mlp" and est.config_.masking == "path" and est.config_.epochs == 3
    assert DAMEmbedding(model="maskgae").build_config().epochs == 800
    # the estimator's own default: the inner product, whatever the model
    assert DAMEmbedding(model="maskgae").build_config().decoder == "inner"
    assert DAMEmbedding().build_config() == DAMEmbedding(model="gae", dim=128, lam=0.1, epochs=2000).build_config()


def test_parameters_are_the_config_settings_or_the_estimators_own():
    """Each estimator parameter is a LinkPredConfig setting (defaulting to
    None, the preset, to the config's own default, or to the user's default
    of USER_DEFAULTS) or one of its own."""
    import inspect
    from dataclasses import fields

    from damgraph.config import ESTIMATOR_SETTINGS, USER_DEFAULTS, LinkPredConfig

    config_defaults = {f.name: f.default for f in fields(LinkPredConfig)}
    params = inspect.signature(DAMEmbedding).parameters
    own = {"val_fraction", "input_dim", "directed", "verbose"}
    assert set(params) == set(ESTIMATOR_SETTINGS) | own
    for name in ESTIMATOR_SETTINGS:
        expected = (USER_DEFAULTS[name],) if name in USER_DEFAULTS else (None, config_defaults[name])
        assert params[name].default in expected, name
    assert USER_DEFAULTS == {"decoder": "inner", "inputs": "projection", "val_tolerance": 0.01, "val_min_delta": 0.01}
    with pytest.raises(TypeError, match="dim must be an integer, got 16.0"):
        DAMEmbedding(dim=16.0).fit(nx.path_graph(30))
    with pytest.raises(ValueError, match=r"lam must be >= 0, got -1"):
        DAMEmbedding(lam=-1).fit(nx.path_graph(30))


def test_transform_embeds_a_new_graph_with_features_and_refuses_one_without():
    gen = np.random.default_rng(0)
    g = nx.stochastic_block_model([15, 15], [[0.5, 0.05], [0.05, 0.5]], seed=2)
    feats = {n: gen.standard_normal(6).tolist() for n in g}
    est = DAMEmbedding(dim=8, epochs=15, seed=0).fit(g, feats)
    new = nx.path_graph(5)  # other nodes, other edges, same feature width
    new_feats = {n: gen.standard_normal(6).tolist() for n in new}
    z = est.transform(new, new_feats)
    assert z.shape == (5, est.width_)
    prepared = prepare_graph(new, new_feats)
    with torch.no_grad():
        expected = est.model_.encode(prepared.data.x, prepared.data.edge_index).numpy()
    np.testing.assert_allclose(z, expected, rtol=0, atol=1e-6)  # PyG's message passing: measured 6e-8 apart
    assert not np.allclose(z[0], z[1])  # the graph's structure reaches the rows
    featureless = DAMEmbedding(dim=8, epochs=5, seed=0).fit(g)
    with pytest.raises(GraphInputError, match="learned inputs for the nodes of its training graph"):
        featureless.transform(new)


@pytest.mark.parametrize("params, error, message", [
    (dict(seed=None), TypeError, "seed must not be None"),
    (dict(epochs=2.5), TypeError, "epochs must be an integer, got 2.5"),
    (dict(device="tpu"), ValueError, "unknown device 'tpu': use cpu, cuda or cuda:N"),
    (dict(model="gcn"), ValueError, "model must be one of gae, vgae, maskgae, sage-mlp, gcn-mlp, got 'gcn'"),
    (dict(val_fraction=0.5), ValueError, r"val_fraction must be a number in \[0, 0.5\), got 0.5"),
])
def test_bad_parameters_are_refused_naming_the_parameter(params, error, message):
    with pytest.raises(error, match=message):
        DAMEmbedding(**params).fit(nx.path_graph(30))


def test_the_learned_width_does_not_depend_on_the_input_order(community_graph, tmp_path):
    """The same graph as an edge list in two line orders and as a networkx
    graph trains the same model: nodes are numbered in a canonical order."""
    lines = [f"{u} {v} {d['weight']}\n" for u, v, d in community_graph.edges(data=True)] + ["loner\n"]
    forward, backward = tmp_path / "forward.txt", tmp_path / "backward.txt"
    forward.write_text("".join(lines))
    backward.write_text("".join(reversed([f"{line.split()[1]} {line.split()[0]} {line.split()[2]}\n"
                                          if len(line.split()) == 3 else line for line in lines])))
    fits = [DAMEmbedding(dim=16, epochs=60, patience=60, val_fraction=0.1, seed=0).fit(graph)
            for graph in (forward, backward, community_graph)]
    assert fits[0].node_ids_ == fits[1].node_ids_ == fits[2].node_ids_
    assert fits[0].width_ == fits[1].width_ == fits[2].width_
    assert np.array_equal(fits[0].embedding_, fits[1].embedding_)
    assert np.array_equal(fits[0].embedding_, fits[2].embedding_)


def test_a_prepared_graph_is_fitted_as_it_is_and_refuses_new_features(community_graph):
    from damgraph.graphs import GraphInputError, prepare_graph

    prepared = prepare_graph(community_graph)
    assert prepare_graph(prepared) is prepared  # prepared once (the command line times it as reading)
    a = DAMEmbedding(dim=8, epochs=3, seed=0).fit(prepared)
    b = DAMEmbedding(dim=8, epochs=3, seed=0).fit(community_graph)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    with pytest.raises(GraphInputError, match="already prepared"):
        prepare_graph(prepared, features=np.ones((prepared.num_nodes, 2)))
    with pytest.raises(GraphInputError, match="already prepared"):
        prepare_graph(prepared, directed=True)



def test_a_refit_replaces_every_fitted_attribute(community_graph):
    """scikit-learn's rule: fit replaces all fitted state, the node-id index included."""
    les_mis = nx.les_miserables_graph()
    est = DAMEmbedding(dim=8, epochs=20, patience=20, val_fraction=0.1, seed=0).fit(community_graph)
    assert est.edge_scores([("user-0", "user-1")]).shape == (1,)  # builds the id lookup of the first graph
    est.fit(les_mis)
    assert est.node_ids_ == canonical_order(les_mis.nodes) and est.embedding_.shape[0] == 77
    assert 0 < est.edge_scores([("Valjean", "Javert")])[0] < 1
    with pytest.raises(ValueError, match="'user-0' is not in the model's graph \\(77 nodes\\)"):
        est.edge_scores([("user-0", "user-1")])
    fresh = DAMEmbedding(dim=8, epochs=20, patience=20, val_fraction=0.1, seed=0).fit(les_mis)
    assert np.array_equal(est.embedding_, fresh.embedding_)  # a refit is a fresh fit
    assert est.edge_scores([("Valjean", "Javert")]) == pytest.approx(fresh.edge_scores([("Valjean", "Javert")]))


def test_init_stores_the_parameters_unchanged_and_clone_round_trips():
    """scikit-learn's estimator checks that apply to a graph input: __init__ only stores, get_params/set_params
    and clone round-trip; the array-input checks (check_estimator) do not apply, since fit takes a graph."""
    params = dict(dim=12, model="vgae", lam=0.1, epochs=33, seed=4, positives="edges")
    est = DAMEmbedding(**params)
    assert {k: est.get_params()[k] for k in params} == params
    assert DAMEmbedding().set_params(**params).get_params() == est.get_params()
    assert clone(est).get_params() == est.get_params()
    assert not [k for k in vars(est) if k.endswith("_")]  # nothing fitted before fit


def test_the_ogb_preset_fits_saves_and_loads_with_its_gated_table_and_hidden_layer(tmp_path):
    """model='sage-mlp' (OGB's ddi link predictor) on a graph file's kind of
    input: its DAM run gates the node table, the hidden layer and the output;
    the compacted model saved and loaded gives the same embedding."""
    from damgraph.gates import gate_widths

    graph = nx.Graph(nx.les_miserables_graph().edges())
    est = DAMEmbedding(model="sage-mlp", dim=16, lam=3.0, epochs=40, seed=0).fit(graph)
    widths = gate_widths(est.gated_model_)
    assert widths["encoder.hidden_gates.0"] < 16 and est.inputs_.gate.num_open < 16  # measured 12, 12 and 12
    assert est.model_.encoder.convs[0].out_channels == widths["encoder.hidden_gates.0"]
    est.save(tmp_path / "sage.pt")
    loaded = DAMEmbedding.load(tmp_path / "sage.pt")
    np.testing.assert_array_equal(loaded.transform(graph), est.embedding_)
    assert loaded.gate_widths_ == est.gate_widths_
    loaded.save(tmp_path / "again.pt")  # a loaded compacted model saves again, with the same widths
    again = DAMEmbedding.load(tmp_path / "again.pt")
    np.testing.assert_array_equal(again.transform(graph), est.embedding_)
    weighted = nx.les_miserables_graph()
    with pytest.raises(GraphInputError, match=r"model 'sage-mlp' \(its sage layers\) does not use edge weights yet"):
        DAMEmbedding(model="sage-mlp", dim=8, epochs=2).fit(weighted)


def test_the_history_reads_the_embedding_width_from_the_output_gate():
    """history_'s width is the output gate's wherever it stands among the
    gates (a gated node table and hidden layer come with the OGB presets)."""
    from damgraph.estimator import _embedding_width

    widths = {"net.encoder.hidden_gates.0": 12, "net.encoder.out_gate": 7, "inputs.gate": 5}
    assert _embedding_width(widths, 16) == 7
    assert _embedding_width({"encoder.out_gate": 9}, 16) == 9 and _embedding_width({}, 16) == 16
