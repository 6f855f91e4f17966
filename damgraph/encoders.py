"""GNN encoder (GCN, GraphSAGE or GAT layers) whose output (and optionally
hidden) width sits behind DAM gates."""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GCNConv

from damgraph.gates import DAMGate, make_gate
from damgraph.layers import LAYERS, Features, Graph, conv_layer, gcn_units, make_conv
from damgraph.propagation import SparseOperator

ACTIVATIONS = {"relu": F.relu, "elu": F.elu}


class GNNEncoder(nn.Module):
    r"""A stack of message-passing layers, by default
    :class:`~torch_geometric.nn.conv.GCNConv` (`Kipf and Welling, ICLR 2017
    <https://arxiv.org/abs/1609.02907>`_), whose output passes through a
    :class:`~damgraph.DAMGate`:

    .. math::
        \mathbf{H}^{(l+1)} = g^{(l+1)} \odot \sigma\big(\mathrm{BN}\big(\hat{\mathbf{A}}\,
        \mathrm{dropout}(\mathbf{H}^{(l)})\,\mathbf{W}^{(l)} + \mathbf{b}^{(l)}\big)\big),
        \qquad \mathbf{Z} = g^{\mathrm{out}} \odot \mathrm{BN}\big(\hat{\mathbf{A}}
        \mathbf{H}^{(L-1)} \mathbf{W}^{(L-1)} + \mathbf{b}^{(L-1)}\big),

    with :math:`\hat{\mathbf{A}}` the symmetric-normalised adjacency with self
    loops, and the batch norms (BN) only with :obj:`batch_norm`. With both
    gates switched off and no batch norm it is the plain GCN encoder of GAE.
    ``conv="sage"`` (:class:`~torch_geometric.nn.conv.SAGEConv`, mean
    aggregation) and ``conv="gat"`` (:class:`~torch_geometric.nn.conv.GATConv`,
    one head) replace the GCN layers; they take an edge index (see
    :meth:`prepare_graph`).

    With :obj:`variational=True` the last layer is two heads, and
    :meth:`forward` returns the *ungated* :math:`(\mu, \log\sigma)`; the output
    gate is then applied by :class:`~damgraph.DAMVGAE` to the sampled latent.

    Args:
        in_channels (int): Input feature size.
        out_channels (int): Embedding size (the starting width when gated).
        hidden_channels (int, optional): Hidden width; defaults to
            :obj:`2 * out_channels` as in PyG's autoencoder example.
        num_layers (int, optional): Number of layers. (default: :obj:`2`)
        dropout (float, optional): Dropout on the input of every layer.
            (default: :obj:`0.0`)
        dropout_input (bool, optional): Dropout on the encoder's own input
            too; :obj:`False`: between layers only, as OGB's examples.
            (default: :obj:`True`)
        gate_output (bool, optional): Gate the output with DAM. (default: :obj:`True`)
        gate_hidden (bool, optional): Gate every hidden layer with DAM too.
            (default: :obj:`False`)
        variational (bool, optional): Two output heads for VGAE. (default: :obj:`False`)
        beta_init (float, optional): Initial :math:`\beta` of every gate.
            (default: :obj:`1.0`)
        gate_alpha (float, optional): Steepness :math:`\alpha` of DAM gates.
            (default: :obj:`1.0`)
        gate (str, optional): The kind of gate: ``"dam"``, or the baselines
            ``"l1"`` (:class:`~damgraph.gates.L1Scale`) and ``"l0"``
            (:class:`~damgraph.gates.HardConcreteGate`). (default: :obj:`"dam"`)
        conv (str, optional): ``"gcn"``, ``"sage"`` or ``"gat"``. (default: :obj:`"gcn"`)
        batch_norm (bool, optional): Batch norm after every layer (before the
            activation; on the output layer too unless variational), as in
            MaskGAE. (default: :obj:`False`)
        activation (str, optional): ``"relu"`` or ``"elu"`` on the hidden
            layers. (default: :obj:`"relu"`)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: Optional[int] = None,
        num_layers: int = 2,
        dropout: float = 0.0,
        dropout_input: bool = True,
        gate_output: bool = True,
        gate_hidden: bool = False,
        variational: bool = False,
        beta_init: float = 1.0,
        gate_alpha: float = 1.0,
        gate: str = "dam",
        conv: str = "gcn",
        batch_norm: bool = False,
        activation: str = "relu",
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if conv not in LAYERS:
            raise ValueError(f"unknown conv {conv!r}: choose one of {', '.join(LAYERS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        hidden_channels = hidden_channels or 2 * out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout, self.dropout_input = dropout, dropout_input
        self.variational = variational
        self.conv = conv
        self.activation = activation

        widths = [in_channels] + [hidden_channels] * (num_layers - 1)
        self.convs = nn.ModuleList(make_conv(conv, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(b) if batch_norm else nn.Identity() for b in widths[1:])
        self.hidden_gates = nn.ModuleList(
            make_gate(gate, b, beta_init, gate_alpha) if gate_hidden else nn.Identity() for b in widths[1:])
        if variational:
            self.conv_mu = make_conv(conv, widths[-1], out_channels)
            self.conv_logstd = make_conv(conv, widths[-1], out_channels)
        else:
            self.conv_out = make_conv(conv, widths[-1], out_channels)
        self.out_norm = nn.BatchNorm1d(out_channels) if batch_norm and not variational else nn.Identity()
        self.out_gate = make_gate(gate, out_channels, beta_init, gate_alpha) if gate_output else nn.Identity()
        #: With units closed by the output's DAM gate, a GCN output layer on a prebuilt graph computes only
        #: the open block (the same embedding and gradients up to float rounding, at a cost that falls with the width;
        #: reading the width costs one read of beta a forward pass, a device sync on a GPU); the speed
        #: benchmark switches it off to measure the full-width computation.
        self.open_block = True

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def output_convs(self) -> List[nn.Module]:
        """The layer(s) producing the embedding (one, or the mu/logstd heads)."""
        return [self.conv_mu, self.conv_logstd] if self.variational else [self.conv_out]

    def prepare_graph(self, edge_index: Tensor, num_nodes: int, edge_weight: Optional[Tensor] = None) -> Graph:
        """The graph in the form :meth:`forward` is fastest with, built once
        (:attr:`~damgraph.layers.LayerKind.prepare_graph`): for GCN layers
        :math:`\\hat{\\mathbf{A}}` (:func:`~damgraph.propagation.gcn_adjacency`),
        for SAGE layers the mean over neighbours
        (:func:`~damgraph.propagation.mean_adjacency`), for GAT the edge
        index itself (SAGE and GAT use no edge weights)."""
        return LAYERS[self.conv].prepare_graph(edge_index, num_nodes, edge_weight)

    def _dropout(self, x: Features) -> Features:
        if self.dropout == 0.0 or not self.training:
            return x
        if isinstance(x, SparseOperator):  # sparse features: draw only for the non-zeros
            return x.dropout(self.dropout)
        return F.dropout(x, p=self.dropout, training=True)

    def hidden(self, x: Features, edge_index: Graph, edge_weight: Optional[Tensor] = None) -> Tensor:
        """The last hidden representation (the input of the output layer)."""
        act = ACTIVATIONS[self.activation]
        first = True
        for conv, norm, gate in zip(self.convs, self.norms, self.hidden_gates):
            x = x if first and not self.dropout_input else self._dropout(x)
            # in place: the layer's output is a fresh tensor that no backward needs (torch checks it)
            x, first = gate(act(norm(conv_layer(conv, x, edge_index, edge_weight)), inplace=True)), False
        return x if first and not self.dropout_input else self._dropout(x)

    def forward(
        self, x: Features, edge_index: Graph, edge_weight: Optional[Tensor] = None
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Embeddings of every node. :obj:`edge_index` is either an edge
        index (with optional :obj:`edge_weight`) or, for GCN layers, a prebuilt
        :func:`~damgraph.propagation.gcn_adjacency`, which is faster when the
        same graph is encoded many times; :obj:`x` may be a sparse
        :func:`~damgraph.propagation.feature_operator`."""
        h = self.hidden(x, edge_index, edge_weight)
        if self.variational:
            return (conv_layer(self.conv_mu, h, edge_index, edge_weight),
                    conv_layer(self.conv_logstd, h, edge_index, edge_weight))
        gate = self.out_gate
        if (self.open_block and isinstance(gate, DAMGate) and isinstance(self.out_norm, nn.Identity)
                and isinstance(self.conv_out, GCNConv) and isinstance(edge_index, SparseOperator)):
            units = gate.open_slice
            if units.start > 0:  # units closed by DAM: compute only the open block, the rest are zeros
                block = gcn_units(self.conv_out, h, edge_index, units) * gate.values()[units]
                return F.pad(block, (units.start, 0))
        return gate(self.out_norm(conv_layer(self.conv_out, h, edge_index, edge_weight)))


class SIGNEncoder(nn.Module):
    r"""The SIGN encoder on precomputed features: one linear map per hop,
    concatenated, ReLU, then a linear map to the embedding, behind a size
    gate (DAM by default):

    .. math::
        \mathbf{Z} = g \odot \Big(\mathrm{ReLU}\big(\big\Vert_{k=0}^{K}
        \hat{\mathbf{A}}^k \mathbf{X} \mathbf{W}_k\big)\,\mathbf{W}_{\mathrm{out}}\Big).

    Args:
        in_channels (int): Feature size :math:`F` of :math:`\mathbf{X}`.
        out_channels (int): Embedding size (the starting width when gated).
        hops (int): :math:`K`. (default: :obj:`2`)
        hidden_channels (int, optional): Width of each hop's map; defaults to
            :obj:`2 * out_channels`.
        gate (str, optional): ``"dam"``, ``"l1"``, ``"l0"`` or ``None``.
        beta_init (float, optional): Initial :math:`\beta` of a DAM gate.
        gate_alpha (float, optional): Its steepness :math:`\alpha`.

    Its input is :func:`~damgraph.propagation.propagate_features` of the
    graph (a row per node, or the rows of a mini-batch's nodes), so
    :meth:`forward` takes no graph; :func:`damgraph.compact` cuts it like a
    :class:`GNNEncoder`.
    """

    def __init__(self, in_channels: int, out_channels: int, hops: int = 2,
                 hidden_channels: Optional[int] = None, gate: Optional[str] = "dam", beta_init: float = 1.0,
                 gate_alpha: float = 1.0):
        super().__init__()
        hidden_channels = hidden_channels or 2 * out_channels
        self.in_channels, self.out_channels, self.hops = in_channels, out_channels, hops
        self.hop_lins = nn.ModuleList(nn.Linear(in_channels, hidden_channels) for _ in range(hops + 1))
        self.lin_out = nn.Linear((hops + 1) * hidden_channels, out_channels)
        self.out_gate = make_gate(gate, out_channels, beta_init, gate_alpha) if gate is not None else nn.Identity()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, features: Tensor) -> Tensor:
        """Embeddings of the rows of :func:`propagate_features`."""
        blocks = features.split(self.in_channels, dim=1)
        h = torch.cat([lin(b) for lin, b in zip(self.hop_lins, blocks)], dim=1)
        return self.out_gate(self.lin_out(F.relu(h)))
