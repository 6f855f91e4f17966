import networkx as nx
import numpy as np
import pytest
import torch
from sklearn.base import clone

from damgraph import DAMEmbedding
from damgraph.graphs import GraphInputError
from damgraph.io import load_checkpoint, load_embeddings, save_checkpoint, save_embeddings


@pytest.fixture(scope="module")
def community_graph():
    """Two 20-node communities with string ids, weighted, plus one isolated node."""
    g = nx.stochastic_block_model([20, 20], [[0.4, 0.02], [0.02, 0.4]], seed=1)
    g = nx.relabel_nodes(g, {i: f"user-{i}" for i in g})
    for u, v in g.edges:
        g.edges[u, v]["weight"] = 1.0 + (hash((u, v)) % 3)
    g.add_node("loner")
    return g


@pytest.fixture(scope="module")
def fitted(community_graph):
    return DAMEmbedding(dim=16, epochs=60, patience=60, val_fraction=0.1, seed=0).fit(community_graph)


def test_fit_sets_the_learned_attributes(fitted, community_graph):
    assert fitted.embedding_.shape == (41, fitted.n_active_)
    assert 1 <= fitted.n_active_ <= 16
    assert fitted.node_ids_ == list(community_graph.nodes)
    assert 0.5 < fitted.val_auc_ <= 1.0
    assert len(fitted.history_) == 60 and {"loss", "active"} <= set(fitted.history_[0])
    assert fitted.graph_report_["isolated"] == 1
    assert np.isfinite(fitted.embedding_).all()
    # nodes of the same community are closer than nodes of different ones
    z = fitted.embedding_
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
    np.testing.assert_allclose(full[:, 16 - fitted.n_active_:], fitted.embedding_, rtol=1e-5, atol=1e-6)
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
    DAMEmbedding(dim=4, epochs=3, val_fraction=0).fit(nx.path_graph(5))  # works without validation
    with pytest.raises(ValueError, match="model must be 'gae' or 'vgae'"):
        DAMEmbedding(model="gat").fit(nx.path_graph(30))
    with pytest.raises(ValueError, match="closed every dimension"):
        DAMEmbedding(dim=4, lam=1e4, epochs=80, val_fraction=0, beta_lr=0.5).fit(nx.karate_club_graph())
