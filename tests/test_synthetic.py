"""damgraph.synthetic: the planted-partition graphs of the speed and scale
benchmarks, and their synthetic-<nodes> names."""
import pytest
import torch
from torch_geometric.utils import coalesce, is_undirected

from damgraph.synthetic import community_graph, synthetic_size


def _same(a, b):
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("x", "edge_index", "y"))


def test_reproducible_under_a_seed_and_different_under_another():
    a, b, c = community_graph(300, seed=0), community_graph(300, seed=0), community_graph(300, seed=1)
    assert _same(a, b)
    assert not torch.equal(a.y, c.y) and not torch.equal(a.x, c.x)
    assert a.edge_index.shape != c.edge_index.shape or not torch.equal(a.edge_index, c.edge_index)


def test_sizes_and_a_clean_undirected_graph():
    g = community_graph(300, avg_degree=10, num_communities=10, num_features=16, seed=0)
    assert g.num_nodes == 300 and g.x.shape == (300, 16) and g.x.dtype == torch.float32
    assert g.y.shape == (300,) and set(g.y.tolist()) == set(range(10))
    edge_index = g.edge_index
    assert is_undirected(edge_index, num_nodes=300)
    assert not (edge_index[0] == edge_index[1]).any()  # no self-loops
    assert torch.equal(coalesce(edge_index, num_nodes=300), edge_index)  # sorted, no repeats
    # 300 * 10 / 2 = 1500 edges drawn; self-loops and repeats (within communities of ~30 nodes) are
    # dropped: seeds 0-3 keep 1282-1315
    assert 1150 <= edge_index.size(1) // 2 <= 1500


def test_edges_stay_mostly_within_communities():
    g = community_graph(300, p_within=0.8, seed=0)
    same = g.y[g.edge_index[0]] == g.y[g.edge_index[1]]
    # 0.8 + 0.2 / 10 = 0.82 drawn within; repeats drop a few of them: 0.78-0.81 for seeds 0-3
    assert same.float().mean().item() > 0.75
    only_within = community_graph(300, avg_degree=4, num_communities=3, p_within=1.0, seed=0)
    assert (only_within.y[only_within.edge_index[0]] == only_within.y[only_within.edge_index[1]]).all()
    uniform = community_graph(300, p_within=0.0, seed=0)
    assert (uniform.y[uniform.edge_index[0]] == uniform.y[uniform.edge_index[1]]).float().mean().item() < 0.15


@pytest.mark.parametrize("signal, low, high", [(1.0, 0.95, 1.0), (0.0, 0.0, 0.25)])
def test_features_carry_the_community_with_signal(signal, low, high):
    """Nearest community mean, means estimated on even nodes, scored on odd ones:
    1.0 with signal 1 (means ~11 apart, unit noise), 0.09 without (chance 0.1)."""
    g = community_graph(300, signal=signal, seed=0)
    train = torch.arange(300) % 2 == 0
    means = torch.stack([g.x[train & (g.y == c)].mean(0) for c in range(10)])
    accuracy = (torch.cdist(g.x[~train], means).argmin(1) == g.y[~train]).float().mean().item()
    assert low <= accuracy <= high


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="num_nodes >= 2, num_communities >= 1 and avg_degree > 0"):
        community_graph(1)
    with pytest.raises(ValueError, match="avg_degree > 0"):
        community_graph(10, avg_degree=0)


@pytest.mark.parametrize("name, nodes", [("synthetic-10000", 10000), ("synthetic-1e6", 1_000_000),
                                         ("synthetic-10", 10), ("synthetic-2.5e3", 2500)])
def test_synthetic_size_parses_the_node_count(name, nodes):
    assert synthetic_size(name) == nodes


@pytest.mark.parametrize("name", ["synthetic", "synthetic-", "synthetic-many", "synthetic-9", "synthetic--5"])
def test_synthetic_size_refuses_other_names_in_one_line(name):
    with pytest.raises(ValueError) as err:
        synthetic_size(name)
    message = str(err.value)
    assert message == f"{name!r}: write synthetic-<nodes> with at least 10 nodes, e.g. synthetic-10000"
    assert "\n" not in message


@pytest.mark.parametrize("name", ["synthetic-inf", "synthetic-1e400"])
def test_synthetic_size_refuses_an_infinite_count_in_one_line(name):
    with pytest.raises(ValueError, match="write synthetic-<nodes> with at least 10 nodes"):
        synthetic_size(name)


def test_dot_product_graphs_have_the_asked_degree_and_rank():
    from damgraph.synthetic import dot_product_graph

    a, b = dot_product_graph(400, 4, avg_degree=10, seed=0), dot_product_graph(400, 4, avg_degree=10, seed=0)
    assert torch.equal(a.edge_index, b.edge_index) and is_undirected(a.edge_index)
    assert a.edge_index.size(1) / 400 == pytest.approx(10, rel=0.1)  # mean degree
    assert not bool((a.edge_index[0] == a.edge_index[1]).any())  # no self-loops
    # the expected adjacency has rank 4: on a denser sample its top 4 singular values stand out (26.2 against 11.4)
    dense = torch.zeros(400, 400)
    denser = dot_product_graph(400, 4, avg_degree=40, seed=0).edge_index
    dense[denser[0], denser[1]] = 1.0
    s = torch.linalg.svdvals(dense)
    assert s[3] > 2 * s[4]
    with pytest.raises(ValueError, match="rank >= 1"):
        dot_product_graph(400, 0)
