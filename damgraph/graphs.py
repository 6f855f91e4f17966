"""Users' graphs in any common form, turned into a clean PyG :class:`Data`.

Accepted: a networkx ``Graph``/``DiGraph``, a scipy sparse adjacency matrix, a
PyG ``Data``, an ``edge_index`` tensor of shape ``[2, E]``, or the path of an
edge-list file (``u v`` or ``u v weight`` per line, ``#`` comments; commas,
tabs or spaces). Node ids may be any hashable values; the rows of every
embedding follow :attr:`PreparedGraph.node_ids`.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected

from damgraph.io import is_number, text_lines


class GraphInputError(ValueError):
    """A graph or feature input that cannot be used, with the fix in its message."""


@dataclass
class PreparedGraph:
    """An undirected (or, on request, directed) graph without self-loops or
    duplicate edges, its node ids and what cleaning it took."""

    data: Data
    node_ids: List[Hashable]
    directed: bool = False
    report: Dict[str, Any] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.data.num_nodes)

    @property
    def num_edges(self) -> int:
        """Edges counted once per pair when undirected."""
        e = int(self.data.edge_index.size(1))
        return e if self.directed else e // 2


def canonical_order(ids: Sequence[Hashable]) -> List[Hashable]:
    """The node ids in a fixed order that does not depend on how the input
    listed them: integers (or integer strings) by value, other strings
    alphabetically, mixed types by type name, then text. Every graph is
    numbered in this order, so the same graph given as an edge list, as
    GraphML or in another line order trains the same model."""
    ids = list(ids)
    if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids):
        return sorted(ids)
    if all(isinstance(i, str) for i in ids):
        if all(i.isdigit() or (i[:1] == "-" and i[1:].isdigit()) for i in ids):
            return sorted(ids, key=lambda i: (int(i), i))
        return sorted(ids)
    return sorted(ids, key=lambda i: (type(i).__name__, str(i)))


def _from_edges(
    src: Sequence[Hashable], dst: Sequence[Hashable], nodes: Sequence[Hashable] = (),
) -> Tuple[torch.Tensor, List[Hashable]]:
    """Number arbitrary ids 0..n-1 in :func:`canonical_order` (the listed
    :obj:`nodes` and every endpoint)."""
    ids = canonical_order(dict.fromkeys([*nodes, *src, *dst]))
    index = {node: i for i, node in enumerate(ids)}
    edge_index = torch.tensor([[index[u] for u in src], [index[v] for v in dst]], dtype=torch.long)
    return edge_index.view(2, -1), ids


#: First-line words that name the columns of an edge list rather than nodes.
HEADER_WORDS = {"source", "target", "src", "dst", "from", "to", "u", "v", "node", "node1", "node2", "node_1",
                "node_2", "id1", "id2", "head", "tail", "start", "end", "left", "right", "from_id", "to_id",
                "source_id", "target_id", "sender", "receiver"}
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _looks_like_header(first: List[str], rest: List[List[str]]) -> bool:
    """Whether the first line of an edge list names its columns: its weight
    is not a number where the others' are, or its two ids are column names
    (:data:`HEADER_WORDS`, such as ``source,target``) that are not ids of the
    rest. Anything else is read as an edge (``--header`` says otherwise)."""
    if len(first) == 3 and not is_number(first[2]) and (not rest or is_number(rest[0][2])):
        return True
    ids = {v for parts in rest for v in parts[:2]}
    if first[0] in ids or first[1] in ids:
        return False
    return first[0].lower() in HEADER_WORDS and first[1].lower() in HEADER_WORDS


def read_edge_list(path: Union[str, Path], header: Optional[bool] = None
                   ) -> Tuple[List[str], List[str], Optional[List[float]], Optional[str], List[str]]:
    """Parse an edge-list file (UTF-8 text, gzipped or not): ``(sources,
    targets, weights or None, header line or None, lone nodes)``. A line
    ``u v`` or ``u v weight`` is an edge; a line with one id declares a node,
    which keeps its row even without edges. A first line that names the
    columns is detected and skipped (``header=None``), or always skipped
    (``True``), or never (``False``). Every error names the line and the fix."""
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"{path}: no such file; give the path of an edge list (one 'u v [weight]' per line)")
    lines: List[Tuple[int, List[str]]] = []
    for number, line in text_lines(path):
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append((number, line.replace(",", " ").split()))
    if not lines:
        raise GraphInputError(f"{path}: the file holds no edges; give one 'u v [weight]' per line")
    first = lines[0][1]
    if header is None:
        sample = [parts for _, parts in lines[1:1001] if len(parts) == len(first)]
        header = len(first) in (2, 3) and _looks_like_header(first, sample)
    header_line = " ".join(first) if header else None
    if header:
        lines = lines[1:]
    edge_lines = [(number, parts) for number, parts in lines if len(parts) != 1]
    lone = [parts[0] for _, parts in lines if len(parts) == 1]
    if not edge_lines:
        raise GraphInputError(f"{path}: the file holds no edges; give one 'u v [weight]' per line")
    has_weight = len(edge_lines[0][1]) == 3
    src, dst, weights = [], [], []
    for number, parts in edge_lines:
        if len(parts) not in (2, 3):
            raise GraphInputError(f"{path}, line {number}: expected 'u v' or 'u v weight' (or one id for a "
                                  f"node without edges), got {len(parts)} fields; fix or remove it")
        if has_weight != (len(parts) == 3):
            raise GraphInputError(
                f"{path}, line {number}: {'missing' if has_weight else 'unexpected'} weight; "
                "give every line a weight or none")
        if has_weight:
            weights.append(_line_weight(path, number, parts[2], first_line=number == lines[0][0]))
        src.append(parts[0])
        dst.append(parts[1])
    return src, dst, weights if has_weight else None, header_line, lone


#: The bytes of a plain edge list of non-negative integer ids: digits, blanks, line ends, commas.
_INTEGER_LIST_BYTES = b"0123456789 \t\r\n,"


def read_integer_edge_list(path: Union[str, Path]) -> Optional[np.ndarray]:
    """The ``[E, 2]`` int64 array of an edge list that is two non-negative
    integer ids per line (no weights, no lone nodes, ids without leading
    zeros; blank lines and whole-line ``#`` comments allowed, gzipped or not),
    parsed with numpy in one pass: 0.24 s for a million lines where the
    line-by-line :func:`read_edge_list` took 9.3 s (2 cores). Anything else,
    including every malformed file, gives :obj:`None`, and
    :func:`read_edge_list` then reads it with its line-numbered errors. The
    two readers give the same graph (tested)."""
    import gzip

    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw.startswith(b"\x1f\x8b"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, ValueError):
        return None
    if b"#" in raw:
        raw = re.sub(rb"(?m)^[ \t]*#[^\n]*", b"", raw)
    if raw.translate(None, _INTEGER_LIST_BYTES):
        return None
    raw = raw.replace(b",", b" ")
    buf = np.frombuffer(raw, dtype=np.uint8)
    digit = (buf >= ord("0")) & (buf <= ord("9"))
    starts = np.flatnonzero(digit & ~np.concatenate(([False], digit[:-1])))
    ends = np.flatnonzero(digit & ~np.concatenate((digit[1:], [False])))
    if starts.size == 0 or (ends - starts >= 18).any() or ((buf[starts] == ord("0")) & (ends > starts)).any():
        return None  # no edges, ids beyond int64, or leading zeros ("007" and "7" are different ids)
    fields = np.bincount(np.searchsorted(np.flatnonzero(buf == ord("\n")), starts))  # ids per line
    if not np.isin(fields, (0, 2)).all():
        return None
    values = np.fromstring(raw, dtype=np.int64, sep=" ")
    return values.reshape(-1, 2) if values.size == starts.size else None


def _line_weight(path: Path, number: int, text: str, first_line: bool) -> float:
    try:
        w = float(text)
    except ValueError:
        hint = " (if line 1 names the columns, pass --header)" if first_line else ""
        raise GraphInputError(f"{path}, line {number}: weight {text!r} is not a number; fix it{hint}") from None
    if np.isnan(w):
        raise GraphInputError(f"{path}, line {number}: weight {text!r} is not a number; fix it")
    if abs(w) > FLOAT32_MAX:
        raise GraphInputError(f"{path}, line {number}: weight {text!r} is beyond the float32 range "
                              f"(|w| <= {FLOAT32_MAX:.1e}); rescale the weights")
    if w < 0:
        raise GraphInputError(f"{path}, line {number}: weight {text!r} is negative; GCN needs weights >= 0, "
                              "fix or drop it")
    return w


def _edge_index_tensor(edge_index: Any, what: str = "edge_index") -> torch.Tensor:
    """An integer ``[2, E]`` tensor of non-negative node indices, or an error saying what is wrong."""
    edge_index = torch.as_tensor(edge_index)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise GraphInputError(f"{what} must have shape [2, E], got {list(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
        raise GraphInputError(f"{what} must hold integer node indices, got {edge_index.dtype}; "
                              "convert it with .long() if the values are whole numbers")
    if edge_index.numel() and int(edge_index.min()) < 0:
        raise GraphInputError(f"{what} holds the negative node index {int(edge_index.min())}; "
                              "node indices run from 0 to n - 1")
    return edge_index.long()


def _weights(values: Any, what: str) -> torch.Tensor:
    """Edge weights as float32, refused when NaN, negative or beyond float32."""
    w = np.asarray(values, dtype=np.float64).ravel()
    if np.isnan(w).any():
        raise GraphInputError(f"{what} hold NaN; fix or drop those edges")
    if np.abs(w).max(initial=0) > FLOAT32_MAX:
        raise GraphInputError(f"{what} hold {w[np.abs(w).argmax()]:g}, beyond the float32 range "
                              f"(|w| <= {FLOAT32_MAX:.1e}); rescale the weights")
    if (w < 0).any():
        raise GraphInputError(f"{what} hold the negative value {w.min():g}; GCN needs weights >= 0, "
                              "fix or drop those edges")
    return torch.tensor(w, dtype=torch.float32)


def _raw_edges(graph: Any, weighted: bool, header: Optional[bool] = None):
    """(edge_index, edge_weight, node_ids, x, directed_input, header_line) from any accepted form."""
    import networkx as nx
    import scipy.sparse as sp

    if isinstance(graph, (str, Path)):
        pairs = read_integer_edge_list(graph) if header is not True else None
        if pairs is not None:  # ids numbered by value: the canonical order of integer ids
            values, index = torch.unique(torch.from_numpy(pairs), sorted=True, return_inverse=True)
            return index.t().contiguous(), None, [str(v) for v in values.tolist()], None, False, None
        src, dst, weights, header_line, lone = read_edge_list(graph, header)
        edge_index, ids = _from_edges(src, dst, lone)
        weight = torch.tensor(weights, dtype=torch.float32) if weights is not None and weighted else None
        return edge_index, weight, ids, None, False, header_line
    if isinstance(graph, nx.Graph):
        edges = list(graph.edges(data=True))
        has_w = weighted and edges and all("weight" in d for _, _, d in edges)
        edge_index, ids = _from_edges([u for u, _, _ in edges], [v for _, v, _ in edges], list(graph.nodes))
        weight = _weights([d["weight"] for _, _, d in edges], "edge weights") if has_w else None
        return edge_index, weight, ids, None, graph.is_directed(), None
    if sp.issparse(graph):
        if graph.ndim != 2 or graph.shape[0] != graph.shape[1]:
            raise GraphInputError(f"adjacency matrix is {'x'.join(map(str, graph.shape))}; it must be square")
        coo = sp.coo_matrix(graph)
        weight = _weights(coo.data, "adjacency matrix values")
        keep = weight != 0  # stored zeros are not edges
        if not keep.all():
            warnings.warn(f"dropped {int((~keep).sum())} stored zero(s) of the adjacency matrix "
                          "(a zero is no edge)", stacklevel=4)
        edge_index = torch.tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)[:, keep]
        return edge_index, weight[keep] if weighted else None, list(range(graph.shape[0])), None, None, None
    if isinstance(graph, Data):
        if graph.edge_index is None:
            raise GraphInputError("the Data object has no edge_index; give it one of shape [2, E]")
        edge_index = _edge_index_tensor(graph.edge_index, "Data.edge_index")
        n = graph.num_nodes
        if edge_index.numel() and int(edge_index.max()) >= n:
            raise GraphInputError(f"Data.edge_index refers to node {int(edge_index.max())} but the Data has "
                                  f"{n} nodes; set num_nodes or fix the indices")
        w = getattr(graph, "edge_weight", None)
        weight = _weights(w.detach().cpu().numpy(), "Data.edge_weight") if weighted and w is not None else None
        return edge_index, weight, list(range(n)), graph.x, None, None
    if isinstance(graph, (torch.Tensor, np.ndarray)):
        edge_index = _edge_index_tensor(graph)
        n = int(edge_index.max()) + 1 if edge_index.numel() else 0
        return edge_index, None, list(range(n)), None, None, None
    raise GraphInputError(
        f"cannot read a graph from {type(graph).__name__}: give a networkx graph, a scipy sparse matrix, "
        "a PyG Data, an edge_index tensor or the path of an edge-list file")


def prepare_graph(graph: Any, features: Any = None, directed: Optional[bool] = False,
                  weighted: bool = True, header: Optional[bool] = None) -> PreparedGraph:
    """Turn :obj:`graph` (any form above) into a :class:`PreparedGraph`.

    Self-loops are dropped (GCN adds its own), and so are edges of weight 0
    (with a warning). Several entries for one edge are merged into one edge
    whose weight is their mean: for an undirected graph ``u v`` and
    ``v u`` are entries of the same edge, so an edge listed in both
    directions keeps its weight whether or not other edges are listed once.
    Repeats are counted in :attr:`PreparedGraph.report` (for an undirected
    graph that lists every edge both ways, only exact repeats count).
    A directed input is symmetrised with a warning unless ``directed=True``.
    Weights must be finite and non-negative. Isolated nodes listed by the
    input keep their rows. :obj:`features` is an ``[n, f]`` array or tensor
    in node-id order, or a dict from id (or its text, as read from a file)
    to vector. :obj:`header` is passed to :func:`read_edge_list` for files.
    A :class:`PreparedGraph` is returned as it is (prepared once, fitted
    later), as long as no features and the same :obj:`directed` come with it.
    """
    if isinstance(graph, PreparedGraph):
        if features is not None or bool(directed) != graph.directed:
            raise GraphInputError("the graph is already prepared; prepare it with its features and directed "
                                  "setting, then pass it alone")
        return graph
    edge_index, weight, ids, x, input_directed, header_line = _raw_edges(graph, weighted, header)
    n = len(ids)
    if n == 0:
        raise GraphInputError("the graph has no nodes; give a graph with at least one edge")
    report: Dict[str, Any] = {"input_edges": int(edge_index.size(1))}
    if header_line is not None:
        report["header"] = header_line
    loops = edge_index[0] == edge_index[1]
    report["self_loops"] = int(loops.sum())
    edge_index = edge_index[:, ~loops]
    weight = weight[~loops] if weight is not None else None
    report["zero_weight"] = 0
    if weight is not None and bool((weight == 0).any()):
        zero = weight == 0
        report["zero_weight"] = int(zero.sum())
        warnings.warn(f"dropped {report['zero_weight']} edge(s) of weight 0 (a weight-0 edge carries "
                      "nothing; give a small positive weight to keep one)", stacklevel=2)
        edge_index, weight = edge_index[:, ~zero], weight[~zero]

    kept = edge_index.size(1)
    unique = coalesce(edge_index, num_nodes=n)
    symmetric = unique.size(1) == to_undirected(unique, num_nodes=n).size(1)
    if directed:
        edge_index, weight = coalesce(edge_index, weight, num_nodes=n, reduce="mean")
        report["duplicates"] = kept - edge_index.size(1)
    else:
        if input_directed is not False and not symmetric:
            warnings.warn("the graph is directed; it was made undirected "
                          "(pass directed=True to keep the directions)", stacklevel=2)
        # one entry per pair: 'u v' and 'v u' are entries of the same undirected edge
        pairs = torch.stack([edge_index.min(dim=0).values, edge_index.max(dim=0).values])
        pairs, weight = coalesce(pairs, weight, num_nodes=n, reduce="mean")
        # repeats: every edge listed in both directions is listed once per direction by design
        report["duplicates"] = kept - (unique.size(1) if symmetric else pairs.size(1))
        edge_index, weight = to_undirected(pairs, weight, num_nodes=n)

    deg = torch.zeros(n, dtype=torch.long).index_add_(0, edge_index[0], torch.ones_like(edge_index[0]))
    if directed:
        deg.index_add_(0, edge_index[1], torch.ones_like(edge_index[1]))
    report["isolated"] = int((deg == 0).sum())

    if features is not None:
        x = _features(features, ids)
    data = Data(edge_index=edge_index, num_nodes=n)
    if weight is not None:
        data.edge_weight = weight
    if x is not None:
        data.x = x.float()
    return PreparedGraph(data, ids, bool(directed), report)


def _features(features: Any, ids: List[Hashable]) -> torch.Tensor:
    if isinstance(features, dict):
        # keyed by the node ids themselves, or by their text (as read from a file)
        rows = [features[i] if i in features else features.get(str(i)) for i in ids]
        missing = [i for i, row in zip(ids, rows) if row is None]
        if missing:
            raise GraphInputError(f"features are missing for {len(missing)} of {len(ids)} node(s), "
                                  f"e.g. {missing[0]!r}; give a vector for every node")
        lengths = {len(row) for row in rows}
        if len(lengths) > 1:
            raise GraphInputError(f"feature vectors have {min(lengths)} to {max(lengths)} values; "
                                  "give every node the same number of features")
    else:
        rows = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else features
    try:
        x = torch.as_tensor(np.asarray(rows, dtype=np.float32))
    except (TypeError, ValueError) as err:
        raise GraphInputError(f"features are not numbers ({err}); give a numeric array") from None
    if x.dim() != 2 or x.size(0) != len(ids):
        raise GraphInputError(f"features have shape {list(x.shape)} but the graph has {len(ids)} nodes; "
                              "give one row per node, in node order")
    if x.size(1) == 0:
        raise GraphInputError("features have 0 columns; give at least one value per node, or no features "
                              "(then damgraph learns node inputs)")
    if not torch.isfinite(x).all():
        raise GraphInputError("features hold NaN or inf (or values beyond float32); clean them before embedding")
    return x
