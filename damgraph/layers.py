"""Encoder layers, one registry entry per kind: how to build one, pass it a
graph, run it and cut it to kept units. GCN (Kipf and Welling, ICLR 2017),
GraphSAGE with mean aggregation (Hamilton et al., NeurIPS 2017) and
single-head GAT (Velickovic et al., ICLR 2018) are PyG's layers; a new kind
is one :class:`LayerKind` passed to :func:`register_layer` (docs/extending.md),
after which ``conv=<name>`` builds it everywhere."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

from damgraph import config
from damgraph.propagation import SparseOperator, gcn_adjacency, mean_adjacency

#: Node features: a dense matrix, or a sparse one wrapped by :func:`damgraph.propagation.feature_operator`.
Features = Union[Tensor, SparseOperator]
#: The graph: an ``edge_index``, or a prebuilt sparse operator (GCN's
#: :math:`\hat{\mathbf{A}}`, SAGE's mean over neighbours), built once.
Graph = Union[Tensor, SparseOperator]


@dataclass(frozen=True)
class LayerKind:
    """What the encoder and :func:`damgraph.compact` ask of a kind of layer.

    * :obj:`make` ``(in_channels, out_channels)``: a new layer;
    * :obj:`prepare_graph` ``(edge_index, num_nodes, edge_weight)``: the
      graph in the form its :obj:`forward` is fastest with, built once per graph;
    * :obj:`forward` ``(layer, x, graph, edge_weight)``: the layer's output
      (``graph`` an edge index or what :obj:`prepare_graph` built);
    * :obj:`cut` ``(layer, out_index, out_scale, in_index, in_scale,
      bias_shift)``: a new layer computing it on the kept input columns
      (scaled by ``in_scale``) and giving the kept output columns (scaled by
      ``out_scale``, then shifted by ``bias_shift``, a VGAE log-sigma head's
      fold; kinds that cannot fold it raise :class:`TypeError`);
    * :obj:`modules`: the classes its layers are (after a cut too);
    * :obj:`edge_weights`: whether it uses edge weights;
    * :obj:`sparse_features`: whether :obj:`forward` takes sparse features
      (a :class:`~damgraph.propagation.SparseOperator`); else they reach it dense.
    """

    name: str
    modules: Tuple[type, ...]
    make: Callable[[int, int], nn.Module]
    prepare_graph: Callable[[Tensor, int, Optional[Tensor]], Graph]
    forward: Callable[[nn.Module, Features, Graph, Optional[Tensor]], Tensor]
    cut: Callable[..., nn.Module]
    edge_weights: bool = False
    sparse_features: bool = False


#: Every kind by name (the ``conv`` setting's choices, :data:`damgraph.config.CONVS`).
LAYERS: Dict[str, LayerKind] = {}


def register_layer(kind: LayerKind) -> LayerKind:
    """Add :obj:`kind`; ``conv=kind.name`` then builds it in every encoder."""
    if kind.name in LAYERS:
        raise ValueError(f"a layer kind named {kind.name!r} is registered already")
    LAYERS[kind.name] = kind
    if kind.name not in config.CONVS:
        config.CONVS.append(kind.name)
    return kind


def make_conv(kind: str, in_channels: int, out_channels: int) -> nn.Module:
    """A layer of kind :obj:`kind` (one of :data:`LAYERS`)."""
    if kind not in LAYERS:
        raise ValueError(f"unknown conv {kind!r}: choose one of {', '.join(LAYERS)}")
    return LAYERS[kind].make(in_channels, out_channels)


def layer_kind(conv: nn.Module) -> LayerKind:
    """The registered kind whose layers :obj:`conv` is one of."""
    for kind in LAYERS.values():
        if isinstance(conv, kind.modules):
            return kind
    raise TypeError(f"{conv.__class__.__name__} is no registered layer kind; see damgraph.layers.register_layer")


def conv_layer(conv: nn.Module, x: Features, graph: Graph, edge_weight: Optional[Tensor] = None) -> Tensor:
    """``conv(x, graph)`` as its kind runs it (:attr:`LayerKind.forward`)."""
    kind = layer_kind(conv)
    if isinstance(x, SparseOperator) and not kind.sparse_features:
        x = x.to_dense()
    return kind.forward(conv, x, graph, edge_weight)


def _dense(x: Features) -> Tensor:
    return x.to_dense() if isinstance(x, SparseOperator) else x


def _no_weights(name: str) -> Callable[[Tensor, int, Optional[Tensor]], Tensor]:
    def check(edge_index: Tensor, num_nodes: int, edge_weight: Optional[Tensor]) -> Tensor:
        if edge_weight is not None:
            raise ValueError(f"conv {name!r} does not use edge weights; drop them or use conv 'gcn'")
        return edge_index
    return check


# -- cutting weights --------------------------------------------------------
def sliced_weight(weight: Tensor, in_index: Optional[Tensor], in_scale: Optional[Tensor],
                   out_index: Optional[Tensor]) -> Tensor:
    weight = weight.detach()  # (out, in)
    if in_index is not None:
        weight = weight[:, in_index]
        if in_scale is not None:
            weight = weight * in_scale.unsqueeze(0)
    return weight if out_index is None else weight[out_index]



# -- GCN -----------------------------------------------------------------------
def gcn_units(conv: GCNConv, x: Features, graph: SparseOperator, units: slice = slice(None)) -> Tensor:
    """The output units :obj:`units` of a :class:`GCNConv` on a prebuilt
    :math:`\\hat{\\mathbf{A}}`: :math:`\\hat{\\mathbf{A}}\\mathbf{X}\\mathbf{W}_{:,u} +
    \\mathbf{b}_u`, with :math:`\\hat{\\mathbf{A}}` multiplying the narrower of
    :math:`\\mathbf{X}` and :math:`\\mathbf{X}\\mathbf{W}_{:,u}`. The cost scales with the
    number of units, and the units left out get no gradient, as when their
    outputs are multiplied by zero."""
    weight = conv.lin.weight[units]
    if isinstance(x, SparseOperator):
        h = graph @ (x @ weight.t())
    elif conv.in_channels < weight.size(0):  # the product with the graph on the narrower side
        h = F.linear(graph @ x, weight)
    else:
        h = graph @ F.linear(x, weight)
    # h is a fresh product that no backward needs: the bias goes in in place (one pass fewer over N x units)
    return h if conv.bias is None else h.add_(conv.bias[units])



def _gcn_forward(conv: GCNConv, x: Features, graph: Graph, edge_weight: Optional[Tensor] = None) -> Tensor:
    """On a prebuilt :math:`\\hat{\\mathbf{A}}` the same function as the layer, as CSR products
    (:func:`gcn_units`); on an edge index PyG's layer itself."""
    if isinstance(graph, SparseOperator):
        return gcn_units(conv, x, graph)
    return conv(_dense(x), graph, edge_weight)


def _gcn_cut(conv: GCNConv, out_index: Optional[Tensor] = None, out_scale: Optional[Tensor] = None,
             in_index: Optional[Tensor] = None, in_scale: Optional[Tensor] = None,
             bias_shift: Optional[Tensor] = None) -> GCNConv:
    weight = sliced_weight(conv.lin.weight, in_index, in_scale, out_index)
    bias = conv.bias.detach() if conv.bias is not None else None
    if out_index is not None:
        bias = bias[out_index] if bias is not None else None
        if out_scale is not None:
            weight = weight * out_scale.unsqueeze(1)
            bias = bias * out_scale if bias is not None else None
    if bias_shift is not None:
        bias = (bias if bias is not None else torch.zeros_like(bias_shift)) + bias_shift
    new = GCNConv(
        weight.size(1), weight.size(0), improved=conv.improved, cached=conv.cached,
        add_self_loops=conv.add_self_loops, normalize=conv.normalize, bias=bias is not None,
    ).to(weight.device)
    with torch.no_grad():
        new.lin.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


register_layer(LayerKind("gcn", (GCNConv,), lambda a, b: GCNConv(a, b), gcn_adjacency, _gcn_forward, _gcn_cut,
                         edge_weights=True, sparse_features=True))


# -- GraphSAGE -----------------------------------------------------------------
def sage_units(conv: SAGEConv, x: Tensor, graph: SparseOperator) -> Tensor:
    """A mean-aggregation :class:`SAGEConv` (its defaults: root weight, no
    normalisation or projection) on a prebuilt
    :func:`~damgraph.propagation.mean_adjacency` :math:`\\mathbf{M}`:
    :math:`\\mathbf{M}\\mathbf{X}\\mathbf{W}_l^\\top + \\mathbf{b} + \\mathbf{X}\\mathbf{W}_r^\\top`,
    :math:`\\mathbf{M}` multiplying the narrower of :math:`\\mathbf{X}` and
    :math:`\\mathbf{X}\\mathbf{W}_l^\\top`: one CSR product instead of
    gathering and scattering a message per edge."""
    if conv.normalize or conv.project or not conv.root_weight or conv.aggr != "mean":
        raise TypeError("a prebuilt mean adjacency serves SAGEConv with its defaults (mean aggregation, root "
                        "weight, no normalize or project); pass an edge index")
    lin_l = conv.lin_l
    if lin_l.in_channels < lin_l.out_channels:
        h = lin_l(graph @ x)
    else:
        h = graph @ F.linear(x, lin_l.weight)
        h = h if lin_l.bias is None else h.add_(lin_l.bias)
    return h.add_(conv.lin_r(x))



def _sage_forward(conv: SAGEConv, x: Features, graph: Graph, edge_weight: Optional[Tensor] = None) -> Tensor:
    if isinstance(graph, SparseOperator):
        return sage_units(conv, x, graph)
    return conv(x, graph)


def _sage_prepare(edge_index: Tensor, num_nodes: int, edge_weight: Optional[Tensor] = None) -> SparseOperator:
    _no_weights("sage")(edge_index, num_nodes, edge_weight)
    return mean_adjacency(edge_index, num_nodes)


def _sage_cut(conv: SAGEConv, out_index=None, out_scale=None, in_index=None, in_scale=None, bias_shift=None) -> SAGEConv:
    """SAGE: :math:`\\mathbf{W}_l\\,\\mathrm{mean}_j \\mathbf{x}_j + \\mathbf{b} +
    \\mathbf{W}_r \\mathbf{x}_i` is linear in each output unit: cut both weights."""
    if conv.normalize or conv.project or not conv.root_weight or not isinstance(conv.aggr, str):
        raise TypeError("compact() supports SAGEConv with its defaults (one aggregation, root weight, "
                        "no normalize or project)")
    if bias_shift is not None:
        raise TypeError("a SAGE layer cannot be a VGAE log-sigma head here")
    w_l = sliced_weight(conv.lin_l.weight, in_index, in_scale, out_index)
    w_r = sliced_weight(conv.lin_r.weight, in_index, in_scale, out_index)
    bias = conv.lin_l.bias.detach()
    bias = bias if out_index is None else bias[out_index]
    if out_scale is not None:
        w_l, w_r, bias = w_l * out_scale.unsqueeze(1), w_r * out_scale.unsqueeze(1), bias * out_scale
    new = SAGEConv(w_l.size(1), w_l.size(0), aggr=conv.aggr).to(w_l.device)
    with torch.no_grad():
        new.lin_l.weight.copy_(w_l)
        new.lin_l.bias.copy_(bias)
        new.lin_r.weight.copy_(w_r)
    return new


register_layer(LayerKind("sage", (SAGEConv,), lambda a, b: SAGEConv(a, b), _sage_prepare, _sage_forward, _sage_cut))


# -- GAT -----------------------------------------------------------------------
def _gat_forward(conv: nn.Module, x: Features, graph: Graph, edge_weight: Optional[Tensor] = None) -> Tensor:
    if isinstance(graph, SparseOperator):
        raise TypeError(f"{conv.__class__.__name__} needs an edge index, not a prebuilt GCN adjacency")
    return conv(x, graph)


class OutputSlice(nn.Module):
    """The first :obj:`keep` output columns of a layer that computes more
    (a cut GAT layer carries two extra columns for its closed units'
    share of the attention logits)."""

    def __init__(self, conv: nn.Module, keep: int):
        super().__init__()
        self.conv = conv
        self.keep = keep

    @property
    def in_channels(self) -> int:
        return self.conv.in_channels

    @property
    def out_channels(self) -> int:
        return self.keep

    def forward(self, *args, **kwargs) -> Tensor:
        return self.conv(*args, **kwargs)[:, :self.keep]


def _gat_cut(conv: GATConv, out_index=None, out_scale=None, in_index=None, in_scale=None, bias_shift=None) -> nn.Module:
    """GAT (one head): the attention logit of an edge,
    :math:`\\mathbf{a}_s^\\top \\mathbf{W}\\mathbf{x}_j + \\mathbf{a}_d^\\top \\mathbf{W}\\mathbf{x}_i`,
    sums over every output unit, closed ones included. Their share is two
    linear functions of the input, kept as two extra columns (one read by
    each attention vector) that the layer computes and :class:`OutputSlice`
    drops; a folded output scale :math:`g` is undone in the attention
    vectors. The cut layer gives the kept columns exactly."""
    if conv.heads != 1 or getattr(conv, "lin", None) is None or conv.lin_edge is not None or conv.res is not None:
        raise TypeError("compact() supports single-head GATConv without edge features or residual")
    if bias_shift is not None:
        raise TypeError("a GAT layer cannot be a VGAE log-sigma head here")
    weight = sliced_weight(conv.lin.weight, in_index, in_scale, None)  # all outputs, kept inputs
    att_src, att_dst = conv.att_src.detach().view(-1), conv.att_dst.detach().view(-1)
    bias = conv.bias.detach() if conv.bias is not None else None
    extra: list = []
    if out_index is not None:
        closed = torch.ones(weight.size(0), dtype=torch.bool, device=weight.device)
        closed[out_index] = False
        if closed.any():
            extra = [att_src[closed] @ weight[closed], att_dst[closed] @ weight[closed]]
        weight, att_src, att_dst = weight[out_index], att_src[out_index], att_dst[out_index]
        bias = bias[out_index] if bias is not None else None
    if out_scale is not None:
        weight = weight * out_scale.unsqueeze(1)
        att_src, att_dst = att_src / out_scale, att_dst / out_scale
        bias = bias * out_scale if bias is not None else None
    keep = weight.size(0)
    if extra:
        weight = torch.cat([weight, torch.stack(extra)])
        zero, one = att_src.new_zeros(1), att_src.new_ones(1)
        att_src, att_dst = torch.cat([att_src, one, zero]), torch.cat([att_dst, zero, one])
        bias = torch.cat([bias, bias.new_zeros(2)]) if bias is not None else None
    new = GATConv(weight.size(1), weight.size(0), heads=1, concat=conv.concat,
                  negative_slope=conv.negative_slope, dropout=conv.dropout,
                  add_self_loops=conv.add_self_loops, fill_value=conv.fill_value,
                  bias=bias is not None).to(weight.device)
    with torch.no_grad():
        new.lin.weight.copy_(weight)
        new.att_src.copy_(att_src.view_as(new.att_src))
        new.att_dst.copy_(att_dst.view_as(new.att_dst))
        if bias is not None:
            new.bias.copy_(bias)
    return OutputSlice(new, keep) if extra else new


register_layer(LayerKind("gat", (GATConv, OutputSlice), lambda a, b: GATConv(a, b, heads=1), _no_weights("gat"),
                         _gat_forward, _gat_cut))
