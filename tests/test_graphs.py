import warnings

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data

from damgraph.graphs import GraphInputError, prepare_graph, read_edge_list


def _pairs(prepared):
    ids = prepared.node_ids
    return {frozenset((ids[u], ids[v])) for u, v in prepared.data.edge_index.t().tolist()}


def test_networkx_string_ids_weights_and_isolated_nodes():
    g = nx.Graph()
    g.add_nodes_from(["lonely"])
    g.add_weighted_edges_from([("a", "b", 2.0), ("b", "c", 0.5), ("c", "c", 1.0)])
    prepared = prepare_graph(g)
    assert prepared.node_ids == ["a", "b", "c", "lonely"]  # canonical order
    assert prepared.report == {"input_edges": 3, "self_loops": 1, "zero_weight": 0, "duplicates": 0, "isolated": 1}
    assert prepared.num_edges == 2 and _pairs(prepared) == {frozenset("ab"), frozenset("bc")}
    weights = {(prepared.node_ids[u], prepared.node_ids[v]): w
               for (u, v), w in zip(prepared.data.edge_index.t().tolist(), prepared.data.edge_weight.tolist())}
    assert weights[("a", "b")] == weights[("b", "a")] == 2.0 and weights[("c", "b")] == 0.5


def test_directed_input_is_symmetrised_with_a_warning_or_kept():
    g = nx.DiGraph([(1, 2), (2, 3)])
    with pytest.warns(UserWarning, match="made undirected"):
        prepared = prepare_graph(g)
    assert prepared.data.edge_index.size(1) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = prepare_graph(g, directed=True)
    assert kept.data.edge_index.tolist() == [[0, 1], [1, 2]] and kept.num_edges == 2


def test_scipy_data_and_edge_index_inputs_agree():
    a = sp.coo_matrix(([1, 1, 1, 1], ([0, 1, 1, 2], [1, 0, 2, 1])), shape=(4, 4))
    from_scipy = prepare_graph(a)
    assert from_scipy.num_nodes == 4 and from_scipy.report["isolated"] == 1
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    from_tensor = prepare_graph(edge_index)
    from_data = prepare_graph(Data(edge_index=edge_index, x=torch.ones(3, 2)))
    assert torch.equal(from_tensor.data.edge_index, from_data.data.edge_index)
    assert torch.equal(from_scipy.data.edge_index, from_tensor.data.edge_index)
    assert from_data.data.x.shape == (3, 2)


def test_duplicates_are_merged_and_counted(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("# a comment\nx y 1\ny x 2\nx y 0.5\ny z 1\n\n")
    prepared = prepare_graph(path)
    assert prepared.report["duplicates"] == 2 and prepared.num_edges == 2
    # the three entries of x-y are merged into one edge with their mean weight
    assert sorted(prepared.data.edge_weight.tolist()) == pytest.approx([1.0, 1.0, 3.5 / 3, 3.5 / 3])


def test_an_edge_listed_both_ways_keeps_its_weight_whatever_the_other_edges(tmp_path):
    weights = []
    for text in ("a b 2\nb a 2\n", "a b 2\nb a 2\nb c 1\n", "a b 2\nb c 1\n"):
        path = tmp_path / "edges.txt"
        path.write_text(text)
        prepared = prepare_graph(path)
        pairs = prepared.data.edge_index.t().tolist()
        weights.append(prepared.data.edge_weight[pairs.index([0, 1])].item())
    assert weights == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("text, message", [
    ("", "holds no edges"),
    ("a b\nc d e f\n", r"line 2: expected 'u v' or 'u v weight' \(or one id for a node without edges\), got 4 fields"),
    ("a b 1\nb c heavy\n", "line 2: weight 'heavy' is not a number"),
    ("a b 1\nb c\n", "line 2: missing weight"),
    ("a b nan\n", "line 1: weight 'nan' is not a number"),
])
def test_bad_edge_lists_name_the_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(GraphInputError, match=message):
        read_edge_list(path)


def test_bad_features_and_inputs():
    g = nx.path_graph(3)
    with pytest.raises(GraphInputError, match="features have shape \\[2, 4\\] but the graph has 3 nodes"):
        prepare_graph(g, features=np.ones((2, 4)))
    with pytest.raises(GraphInputError, match="NaN or inf"):
        prepare_graph(g, features=np.array([[1.0], [np.nan], [0.0]]))
    with pytest.raises(GraphInputError, match="missing for 1 of 3 node"):
        prepare_graph(g, features={0: [1.0], 1: [2.0]})
    assert prepare_graph(g, features={0: [1.0], 1: [2.0], 2: [3.0]}).data.x.flatten().tolist() == [1, 2, 3]
    with pytest.raises(GraphInputError, match="cannot read a graph from list"):
        prepare_graph([(0, 1)])
    with pytest.raises(GraphInputError, match="no such file"):
        prepare_graph("/nonexistent/edges.txt")


ids = st.one_of(st.integers(-50, 50), st.text("abcxyz", min_size=1, max_size=4))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=30))
def test_random_edge_lists_round_trip(tmp_path_factory, edges):
    """A file of random edges with arbitrary ids reads back as the same graph."""
    path = tmp_path_factory.mktemp("rt") / "edges.txt"
    path.write_text("".join(f"{u} {v}\n" for u, v in edges))
    expected = {frozenset((str(u), str(v))) for u, v in edges if str(u) != str(v)}
    if not expected:
        return
    prepared = prepare_graph(path)
    assert _pairs(prepared) == expected
    assert set(prepared.node_ids) == {str(v) for e in edges for v in e}
    as_nx = prepare_graph(nx.Graph([(str(u), str(v)) for u, v in edges]))
    assert _pairs(as_nx) == expected


# -- graph files through the command line's reader -------------------------------
def _weighted_triangle_and_an_isolated_node():
    g = nx.Graph()
    g.add_node("lonely")
    g.add_weighted_edges_from([("a", "b", 2.0), ("b", "c", 0.5), ("c", "a", 1.5)])
    return g


@pytest.mark.parametrize("suffix, write", [(".graphml", nx.write_graphml), (".gml", nx.write_gml)])
def test_graphml_and_gml_files(tmp_path, suffix, write):
    from damgraph.cli import read_graph

    path = tmp_path / f"graph{suffix}"
    write(_weighted_triangle_and_an_isolated_node(), path)
    prepared = prepare_graph(read_graph(str(path)))
    assert prepared.node_ids == ["a", "b", "c", "lonely"] and prepared.num_nodes == 4
    assert prepared.num_edges == 3 and prepared.data.edge_index.size(1) == 6
    assert _pairs(prepared) == {frozenset("ab"), frozenset("bc"), frozenset("ca")}
    assert prepared.report == {"input_edges": 3, "self_loops": 0, "zero_weight": 0, "duplicates": 0, "isolated": 1}
    weights = {(prepared.node_ids[u], prepared.node_ids[v]): w
               for (u, v), w in zip(prepared.data.edge_index.t().tolist(), prepared.data.edge_weight.tolist())}
    assert weights == {("a", "b"): 2.0, ("b", "a"): 2.0, ("b", "c"): 0.5, ("c", "b"): 0.5,
                       ("a", "c"): 1.5, ("c", "a"): 1.5}


@pytest.mark.parametrize("suffix, write", [(".graphml", nx.write_graphml), (".gml", nx.write_gml)])
def test_integer_ids_in_graphml_and_gml_come_back_as_text(tmp_path, suffix, write):
    from damgraph.cli import read_graph

    g = nx.Graph([(10, 20), (20, 30)])
    g.add_node(5)
    path = tmp_path / f"ints{suffix}"
    write(g, path)
    prepared = prepare_graph(read_graph(str(path)))
    assert prepared.node_ids == ["5", "10", "20", "30"]  # both formats store ids as text (numbered by value)
    assert prepared.num_edges == 2 and prepared.report["isolated"] == 1
    assert _pairs(prepared) == {frozenset(("10", "20")), frozenset(("20", "30"))}
    assert getattr(prepared.data, "edge_weight", None) is None


def test_directed_graphml_is_symmetrised_with_a_warning(tmp_path):
    from damgraph.cli import read_graph

    path = tmp_path / "directed.graphml"
    nx.write_graphml(nx.DiGraph([(1, 2), (2, 3), (3, 2)]), path)
    with pytest.warns(UserWarning, match="made undirected"):
        prepared = prepare_graph(read_graph(str(path)))
    assert prepared.node_ids == ["1", "2", "3"] and prepared.num_edges == 2
    assert prepared.report["duplicates"] == 1  # 2->3 and 3->2 are one undirected edge
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = prepare_graph(read_graph(str(path)), directed=True)
    assert kept.num_edges == 3 and kept.data.edge_index.tolist() == [[0, 1, 2], [1, 2, 1]]


def test_npz_adjacency_file(tmp_path):
    from damgraph.cli import read_graph

    adjacency = sp.csr_matrix(([1.0, 1.0, 3.0, 3.0, 1.0], ([0, 1, 1, 3, 2], [1, 0, 3, 1, 2])), shape=(5, 5))
    path = tmp_path / "adjacency.npz"
    sp.save_npz(path, adjacency)
    prepared = prepare_graph(read_graph(str(path)))
    assert prepared.node_ids == [0, 1, 2, 3, 4] and prepared.num_nodes == 5
    assert prepared.num_edges == 2 and prepared.data.edge_index.tolist() == [[0, 1, 1, 3], [1, 0, 3, 1]]
    assert prepared.data.edge_weight.tolist() == [1.0, 1.0, 3.0, 3.0]
    # node 2 had only a self-loop, node 4 nothing
    assert prepared.report == {"input_edges": 5, "self_loops": 1, "zero_weight": 0, "duplicates": 0, "isolated": 2}
    sp.save_npz(tmp_path / "rect.npz", sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(GraphInputError, match="adjacency matrix is 2x3; it must be square"):
        prepare_graph(read_graph(str(tmp_path / "rect.npz")))


def test_format_flag_overrides_the_suffix_and_unreadable_files_are_usage_errors(tmp_path):
    from damgraph.cli import UsageError, read_graph

    path = tmp_path / "graph.txt"
    nx.write_gml(nx.path_graph(["x", "y", "z"]), path)
    prepared = prepare_graph(read_graph(str(path), fmt="gml"))
    assert prepared.node_ids == ["x", "y", "z"] and prepared.num_edges == 2
    assert read_graph(str(path)) == path  # by its suffix an edge list, parsed by prepare_graph
    broken = tmp_path / "broken.graphml"
    broken.write_text("<graphml><graph><node id=")
    with pytest.raises(UsageError, match="broken.graphml: not a readable graphml file .*check the file or pass"):
        read_graph(str(broken))
    with pytest.raises(UsageError, match="not a readable npz file"):
        read_graph(str(path), fmt="npz")


@pytest.mark.parametrize("text, header", [
    ("source,target\n1,2\n2,3\n3,1\n", "source target"),           # column names over numeric ids
    ("source,target,weight\n1,2,1\n2,3,1\n", "source target weight"),  # a weight column that is no number
    ("from to\nalice bob\nbob carol\n", "from to"),                  # column names over word ids
    ("id1,id2\nx,y\n", "id1 id2"),
    ("alice bob\nbob carol\ncarol alice\n", None),                   # ids of the rest: an edge
    ("x y\n1 2\n2 3\n", None),                                        # words that are no column names: an edge
    ("1 2\n2 3\n", None),
    ("source target\nsource target\n", None),                        # the rest names them too: edges
])
def test_a_header_line_is_detected(tmp_path, text, header):
    path = tmp_path / "edges.csv"
    path.write_text(text)
    report = prepare_graph(path).report
    assert report.get("header") == header
    edges = len(text.strip().splitlines()) - (header is not None)
    assert report["input_edges"] == edges


def test_a_header_can_be_forced_either_way(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("alice bob\nbob carol\n")
    assert prepare_graph(path, header=True).node_ids == ["bob", "carol"]
    path.write_text("source,target\n1,2\n")
    assert prepare_graph(path, header=False).node_ids == ["1", "2", "source", "target"]


def test_gzipped_edge_lists_are_read(tmp_path):
    import gzip

    plain, packed = tmp_path / "e.txt", tmp_path / "e.txt.gz"
    plain.write_text("a b 1\nb c 2\n")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    one, two = prepare_graph(plain), prepare_graph(packed)
    assert one.node_ids == two.node_ids and torch.equal(one.data.edge_index, two.data.edge_index)
    assert torch.equal(one.data.edge_weight, two.data.edge_weight)


def test_weight_zero_edges_and_stored_zeros_are_dropped_with_a_warning(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("a b 0\nb c 1\nc a 2\n")
    with pytest.warns(UserWarning, match="dropped 1 edge\\(s\\) of weight 0"):
        prepared = prepare_graph(path)
    assert prepared.num_edges == 2 and prepared.report["zero_weight"] == 1
    adjacency = sp.csr_matrix(np.array([[0, 1.0, 0], [1.0, 0, 2.0], [0, 2.0, 0]]))
    adjacency.data[:2] = 0  # stored zeros, as scipy arithmetic leaves them
    with pytest.warns(UserWarning, match="dropped 2 stored zero"):
        prepared = prepare_graph(adjacency)
    assert prepared.num_edges == 1 and prepared.data.edge_weight.tolist() == [2.0, 2.0]


def _read_line_by_line(path):
    """The graph as the line-by-line reader numbers it (the reference for the numpy reader)."""
    from damgraph.graphs import _from_edges
    src, dst, _, _, lone = read_edge_list(path)
    return _from_edges(src, dst, lone)


@pytest.mark.parametrize("text", [
    "1 2\n2 3\n10 1\n",
    "# a comment\n  # another\n0,5\n5\t7\r\n\n7 0\n   3   9   \n9 3",  # commas, tabs, CRLF, blank lines, no last newline
    "4 4\n4 8\n8 4\n8 4\n",  # a self-loop and repeats: cleaned later the same way
    "123456789012345678 1\n",  # the widest id the numpy reader takes (18 digits)
])
def test_plain_integer_edge_lists_are_read_with_numpy_as_line_by_line(tmp_path, text):
    from damgraph.graphs import _raw_edges, read_integer_edge_list
    path = tmp_path / "edges.txt"
    path.write_text(text)
    assert read_integer_edge_list(path) is not None  # the numpy reader took it
    edge_index, _, ids, _, _, _ = _raw_edges(path, weighted=True)
    expected_index, expected_ids = _read_line_by_line(path)
    assert ids == expected_ids and all(isinstance(i, str) for i in ids)
    assert torch.equal(edge_index, expected_index)
    a, b = prepare_graph(path), prepare_graph(_graph_from_lines(path))  # cleaned alike
    assert a.node_ids == b.node_ids and torch.equal(a.data.edge_index, b.data.edge_index)


def _graph_from_lines(path):
    g = nx.Graph()
    src, dst, _, _, _ = read_edge_list(path)
    g.add_edges_from(zip(src, dst))
    return g


@pytest.mark.parametrize("text", [
    "007 7\n7 8\n",  # leading zeros: '007' and '7' are two ids
    "-1 2\n",  # negative ids
    "1 2 0.5\n2 3 1\n",  # weights
    "1 2\n3\n",  # a lone node
    "1 2 # inline comment\n",
    "source target\n1 2\n",  # a header
    "1234567890123456789 1\n",  # beyond 18 digits
    "a b\n",
    "1 2 3 4\n",
    "",
    "\n# only comments\n",
])
def test_other_edge_lists_are_left_to_the_line_by_line_reader(tmp_path, text):
    from damgraph.graphs import read_integer_edge_list
    path = tmp_path / "edges.txt"
    path.write_text(text)
    assert read_integer_edge_list(path) is None


def test_the_numpy_reader_takes_gzip_and_numbers_a_large_list_like_the_line_reader(tmp_path):
    import gzip
    from damgraph.graphs import _raw_edges, read_integer_edge_list
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 10**9, size=(5000, 2)) // rng.integers(1, 10**6, size=(5000, 1))
    text = "".join(f"{u} {v}\n" for u, v in pairs)
    path = tmp_path / "edges.txt.gz"
    path.write_bytes(gzip.compress(text.encode()))
    np.testing.assert_array_equal(read_integer_edge_list(path), pairs)
    edge_index, _, ids, _, _, _ = _raw_edges(path, weighted=True)
    expected_index, expected_ids = _read_line_by_line(path)
    assert ids == expected_ids and torch.equal(edge_index, expected_index)
