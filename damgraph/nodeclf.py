"""Supervised node classification with a GCN whose hidden width is DAM-gated."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from damgraph.compaction import compacted_size
from damgraph.config import NodeClfConfig
from damgraph.encoders import Features, GNNEncoder, Graph
from damgraph.gates import gate_widths
from damgraph.models import build_classifier, count_parameters, make_optimizer
from damgraph.propagation import feature_operator, gcn_adjacency
from damgraph.runtime import deterministic, resolve_device, seed_everything
from damgraph.training import RunResult, fit


@dataclass
class NodeClfResult(RunResult):
    """One supervised run: test accuracy beside what every run records
    (:class:`~damgraph.training.RunResult`)."""

    test_acc: float = 0.0

    @property
    def width(self) -> int:
        """Open units of the (first) gated hidden layer, else the set width."""
        return next(iter(self.widths.values()), self.config.hidden)

    def scores(self) -> Dict[str, object]:
        return {"test_acc": self.test_acc, "val_acc": self.record.val_score}


@torch.no_grad()
def accuracy(model: GNNEncoder, data: Data, mask: torch.Tensor, graph: Optional[Graph] = None,
             x: Optional[Features] = None) -> float:
    """Share of the nodes in :obj:`mask` whose predicted class is right
    (propagating :obj:`x`, default ``data.x``, over :obj:`graph`, default ``data.edge_index``)."""
    model.eval()
    pred = model(data.x if x is None else x, data.edge_index if graph is None else graph).argmax(dim=-1)
    return float((pred[mask] == data.y[mask]).float().mean())


@deterministic()
def train_node_classifier(data: Data, config: NodeClfConfig, progress: bool = False) -> NodeClfResult:
    """Train a (DAM-)GCN on the split given by ``data.train_mask``,
    ``val_mask`` and ``test_mask`` (Planetoid's public split), keeping the
    model of the best validation accuracy and scoring test once, at the end.
    :math:`\\hat{\\mathbf{A}}` is built once (:func:`~damgraph.propagation.gcn_adjacency`)."""
    device = resolve_device(config.device)
    data = copy.copy(data).to(device)
    graph = gcn_adjacency(data.edge_index, data.num_nodes, getattr(data, "edge_weight", None))
    x = feature_operator(data.x)  # bag-of-words features: sparse products and sparse dropout
    seed_everything(config.seed)
    model = build_classifier(
        data.num_features, int(data.y.max()) + 1, hidden_channels=config.hidden,
        num_layers=config.num_layers, dropout=config.dropout, dam=config.dam).to(device)
    optimizer = make_optimizer(model, config.lr, config.weight_decay, config.beta_lr)

    def loss(step: int) -> torch.Tensor:
        out = model(x, graph)
        return F.cross_entropy(out[data.train_mask], data.y[data.train_mask])

    record = fit(model, optimizer, loss, lambda: accuracy(model, data, data.val_mask, graph, x),
                 config.lam, config.epochs, config.patience,
                 desc=f"gcn hidden={config.hidden} seed={config.seed}" if progress else None)
    return NodeClfResult(
        config=config, test_acc=accuracy(model, data, data.test_mask, graph, x), record=record,
        widths=gate_widths(model), num_params=count_parameters(model),
        num_params_compact=compacted_size(model), model=model)
