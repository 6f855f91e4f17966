"""Users' graphs in any common form, turned into a clean PyG :class:`Data`.

Accepted: a networkx ``Graph``/``DiGraph``, a scipy sparse adjacency matrix, a
PyG ``Data``, an ``edge_index`` tensor of shape ``[2, E]``, or the path of an
edge-list file (``u v`` or ``u v weight`` per line, ``#`` comments; commas,
tabs or spaces). Node ids may be any hashable values; the rows of every
embedding follow :attr:`PreparedGraph.node_ids`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected


class GraphInputError(ValueError):
    """A graph or feature input that cannot be used, with the fix in its message."""


@dataclass
class PreparedGraph:
    """An undirected (or, on request, directed) graph without self-loops or
    duplicate edges, its node ids and what cleaning it took."""

    data: Data
    node_ids: List[Hashable]
    directed: bool = False
    report: Dict[str, int] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.data.num_nodes)

    @property
    def num_edges(self) -> int:
        """Edges counted once per pair when undirected."""
        e = int(self.data.edge_index.size(1))
        return e if self.directed else e // 2


def _from_edges(
    src: Sequence[Hashable], dst: Sequence[Hashable], weights: Optional[Sequence[float]],
    nodes: Optional[Sequence[Hashable]] = None,
) -> Tuple[torch.Tensor, Optional[torch.Tensor], List[Hashable]]:
    """Map arbitrary ids to 0..n-1 in first-seen order (listed ``nodes`` first)."""
    index: Dict[Hashable, int] = {}
    for node in list(nodes or []) + [v for pair in zip(src, dst) for v in pair]:
        if node not in index:
            index[node] = len(index)
    edge_index = torch.tensor([[index[u] for u in src], [index[v] for v in dst]], dtype=torch.long)
    weight = torch.tensor(weights, dtype=torch.float32) if weights is not None else None
    return edge_index.view(2, -1), weight, list(index)


def read_edge_list(path: Union[str, Path]) -> Tuple[List[str], List[str], Optional[List[float]]]:
    """Parse an edge-list file; every error names the line and the fix."""
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"{path}: no such file; give the path of an edge list (one 'u v [weight]' per line)")
    src, dst, weights = [], [], []
    has_weight: Optional[bool] = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.replace(",", " ").split()
            if len(parts) not in (2, 3):
                raise GraphInputError(
                    f"{path}, line {number}: expected 'u v' or 'u v weight', got {len(parts)} fields; fix or remove it")
            if has_weight is None:
                has_weight = len(parts) == 3
            elif has_weight != (len(parts) == 3):
                raise GraphInputError(
                    f"{path}, line {number}: {'missing' if has_weight else 'unexpected'} weight; "
                    "give every line a weight or none")
            if has_weight:
                try:
                    w = float(parts[2])
                except ValueError:
                    raise GraphInputError(
                        f"{path}, line {number}: weight {parts[2]!r} is not a number; fix it") from None
                if not np.isfinite(w):
                    raise GraphInputError(f"{path}, line {number}: weight {parts[2]!r} is not finite; fix it")
                weights.append(w)
            src.append(parts[0])
            dst.append(parts[1])
    if not src:
        raise GraphInputError(f"{path}: the file holds no edges; give one 'u v [weight]' per line")
    return src, dst, weights if has_weight else None


def _raw_edges(graph: Any, weighted: bool):
    """(edge_index, edge_weight, node_ids, x, directed_input) from any accepted form."""
    import networkx as nx
    import scipy.sparse as sp

    if isinstance(graph, (str, Path)):
        src, dst, weights = read_edge_list(graph)
        edge_index, weight, ids = _from_edges(src, dst, weights if weighted else None)
        return edge_index, weight, ids, None, False
    if isinstance(graph, nx.Graph):
        edges = list(graph.edges(data=True))
        has_w = weighted and edges and all("weight" in d for _, _, d in edges)
        edge_index, weight, ids = _from_edges(
            [u for u, _, _ in edges], [v for _, v, _ in edges],
            [float(d["weight"]) for _, _, d in edges] if has_w else None, nodes=list(graph.nodes))
        return edge_index, weight, ids, None, graph.is_directed()
    if sp.issparse(graph):
        if graph.shape[0] != graph.shape[1]:
            raise GraphInputError(f"adjacency matrix is {graph.shape[0]}x{graph.shape[1]}; it must be square")
        coo = graph.tocoo()
        edge_index = torch.tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
        weight = torch.tensor(coo.data, dtype=torch.float32) if weighted else None
        return edge_index, weight, list(range(graph.shape[0])), None, None
    if isinstance(graph, Data):
        weight = getattr(graph, "edge_weight", None) if weighted else None
        return graph.edge_index, weight, list(range(graph.num_nodes)), graph.x, None
    if isinstance(graph, torch.Tensor):
        if graph.dim() != 2 or graph.size(0) != 2:
            raise GraphInputError(f"edge_index must have shape [2, E], got {list(graph.shape)}")
        n = int(graph.max()) + 1 if graph.numel() else 0
        return graph.long(), None, list(range(n)), None, None
    raise GraphInputError(
        f"cannot read a graph from {type(graph).__name__}: give a networkx graph, a scipy sparse matrix, "
        "a PyG Data, an edge_index tensor or the path of an edge-list file")


def _is_symmetric(edge_index: torch.Tensor, n: int) -> bool:
    unique = coalesce(edge_index, num_nodes=n)
    return unique.size(1) == to_undirected(unique, num_nodes=n).size(1)


def prepare_graph(graph: Any, features: Any = None, directed: Optional[bool] = False,
                  weighted: bool = True) -> PreparedGraph:
    """Turn :obj:`graph` (any form above) into a :class:`PreparedGraph`.

    Self-loops are dropped (GCN adds its own) and duplicate edges merged
    (weights summed), both counted in :attr:`PreparedGraph.report`. A
    directed input is symmetrised with a warning unless ``directed=True``.
    Isolated nodes listed by the input keep their rows. :obj:`features` is an
    ``[n, f]`` array or tensor in node-id order, or a dict from id (or its
    text, as read from a file) to vector.
    """
    edge_index, weight, ids, x, input_directed = _raw_edges(graph, weighted)
    n = len(ids)
    if n == 0:
        raise GraphInputError("the graph has no nodes; give a graph with at least one edge")
    if weight is not None and not torch.isfinite(weight).all():
        raise GraphInputError("edge weights hold NaN or inf; fix or drop them")
    report = {"input_edges": int(edge_index.size(1))}
    loops = edge_index[0] == edge_index[1]
    report["self_loops"] = int(loops.sum())
    edge_index = edge_index[:, ~loops]
    weight = weight[~loops] if weight is not None else None

    kept = edge_index.size(1)
    if directed or _is_symmetric(edge_index, n):
        # directed, or both directions listed already: only exact repeats are duplicates
        edge_index, weight = coalesce(edge_index, weight, num_nodes=n, reduce="sum")
        report["duplicates"] = kept - edge_index.size(1)
    else:
        if input_directed is not False:
            warnings.warn("the graph is directed; it was made undirected "
                          "(pass directed=True to keep the directions)", stacklevel=3)
        # one entry per edge: 'u v' and 'v u' are the same undirected edge
        pairs = torch.stack([edge_index.min(dim=0).values, edge_index.max(dim=0).values])
        pairs, weight = coalesce(pairs, weight, num_nodes=n, reduce="sum")
        report["duplicates"] = kept - pairs.size(1)
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
        x = torch.tensor(np.asarray(rows, dtype=np.float32))
    else:
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if x.dim() != 2 or x.size(0) != len(ids):
        raise GraphInputError(f"features have shape {list(x.shape)} but the graph has {len(ids)} nodes; "
                              "give one row per node, in node order")
    if not torch.isfinite(x).all():
        raise GraphInputError("features hold NaN or inf; clean them before embedding")
    return x
