"""Graph autoencoders (GAE/VGAE) and the GCN classifier with DAM-gated widths."""
from __future__ import annotations

import pkgutil
from dataclasses import replace
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GAE, VGAE
from torch_geometric.nn.models.autoencoder import MAX_LOGSTD
from torch_geometric.nn.models.autoencoder import InnerProductDecoder as _PyGInnerProductDecoder

from damgraph.config import MODEL_FAMILIES, LinkPredConfig, model_config
from damgraph.encoders import GNNEncoder, SIGNEncoder
from damgraph.gates import SizeGate, gate_parameters
from damgraph.propagation import pair_dot


class InnerProductDecoder(_PyGInnerProductDecoder):
    r"""PyG's inner-product decoder :math:`\sigma(\mathbf{z}_i^\top\mathbf{z}_j)`
    (the same numbers up to float rounding), computed by
    :func:`~damgraph.propagation.pair_dot`: a sampled dense-dense product
    forward and two CSR products backward, instead of gathering both
    endpoint rows of every pair, the decoder's main cost on large graphs."""

    #: Scores the top block of the embedding's columns alone when given only
    #: those (the closed units' columns are zeros and add nothing).
    reads_top_block = True

    def forward(self, z: Tensor, edge_index: Tensor, sigmoid: bool = True) -> Tensor:
        value = pair_dot(z, edge_index)
        return torch.sigmoid(value) if sigmoid else value


class _TwoLayerMLP(nn.Module):
    """``Linear -> ReLU -> Linear`` to one output, with dropout on its input
    (:obj:`dropout_at` ``"input"``, MaskGAE's decoder) or after the hidden
    layer (``"hidden"``, OGB's ``LinkPredictor``); :meth:`keep_inputs` cuts
    the input columns of closed embedding units."""

    def __init__(self, in_channels: int, hidden_channels: int = 64, dropout: float = 0.0,
                 dropout_at: str = "input"):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"decoder dropout must be in [0, 1), got {dropout}")
        if dropout_at not in ("input", "hidden"):
            raise ValueError(f"dropout_at must be 'input' or 'hidden', got {dropout_at!r}")
        self.dropout, self.dropout_at = dropout, dropout_at
        self.lin_in = nn.Linear(in_channels, hidden_channels)
        self.lin_out = nn.Linear(hidden_channels, 1)

    def reset_parameters(self) -> None:
        self.lin_in.reset_parameters()
        self.lin_out.reset_parameters()

    @property
    def reads_top_block(self) -> bool:
        """Whether an input of only the last columns (a DAM gate's open
        block, the others being zeros) gives the same scores and the same
        dropout draws: with no dropout on the input."""
        return self.dropout == 0 or self.dropout_at == "hidden"

    def mlp(self, h: Tensor) -> Tensor:
        """The MLP of :obj:`h`; an :obj:`h` narrower than the input is the
        last columns of one whose other columns are zeros."""
        if self.dropout_at == "input":
            h = F.dropout(h, self.dropout, self.training)
        weight = self.lin_in.weight if h.size(1) == self.lin_in.in_features else self.lin_in.weight[:, -h.size(1):]
        h = torch.relu(F.linear(h, weight, self.lin_in.bias))
        if self.dropout_at == "hidden":
            h = F.dropout(h, self.dropout, self.training)
        return self.lin_out(h).view(-1)

    @torch.no_grad()
    def keep_inputs(self, index: Tensor) -> None:
        """Keep only the input units :obj:`index` (in place)."""
        lin = nn.Linear(int(index.numel()), self.lin_in.out_features).to(self.lin_in.weight.device)
        lin.weight.copy_(self.lin_in.weight[:, index])
        lin.bias.copy_(self.lin_in.bias)
        self.lin_in = lin


class MLPEdgeDecoder(_TwoLayerMLP):
    r"""An MLP edge decoder, as MaskGAE's (Li et al., KDD 2023):
    :math:`\sigma(\mathrm{MLP}(\mathbf{z}_i \odot \mathbf{z}_j))` with one
    hidden ReLU layer and dropout on its input. With it the embedding size no
    longer equals the decoder's capacity: result tables record which decoder
    a row used. Closed embedding units feed zeros, so :func:`damgraph.compact`
    drops their input columns (:meth:`keep_inputs`)."""

    def forward(self, z: Tensor, edge_index: Tensor, sigmoid: bool = True) -> Tensor:
        value = self.mlp(z.index_select(0, edge_index[0]) * z.index_select(0, edge_index[1]))
        return torch.sigmoid(value) if sigmoid else value


class DegreeDecoder(_TwoLayerMLP):
    """MaskGAE's auxiliary degree regressor: an MLP from a node's embedding to
    the number of its masked edges (``ReLU`` output, squared error), which
    pushes structural information into the embedding."""

    def forward(self, z: Tensor) -> Tensor:
        return torch.relu(self.mlp(z))


class DAMGAE(GAE):
    """PyG's :class:`~torch_geometric.nn.GAE` (Kipf and Welling, 2016) with
    what damgraph's task asks of every autoencoder: whether its encoder is
    :attr:`variational`, whether it :attr:`takes_edge_weights`, and the loss
    terms beside the reconstruction (:meth:`regularization_loss`; none for
    the GAE). Whether a family masks edges is its
    :class:`~damgraph.config.ModelFamily` entry's to say: the settings'
    checks read it."""

    variational = False
    takes_edge_weights = True

    def regularization_loss(self, z: Tensor, hidden_edges: Optional[Tensor], num_nodes: int) -> Tensor:
        """The loss terms beside the reconstruction of :obj:`z`."""
        return z.new_zeros(())


class DAMVGAE(VGAE):
    r"""The Variational Graph Auto-Encoder (`Kipf and Welling, 2016
    <https://arxiv.org/abs/1611.07308>`_) with a DAM-gated latent.

    The encoder returns the ungated :math:`(\mu, \log\sigma)`; the gate
    :math:`g` of :obj:`encoder.out_gate` multiplies the *sampled* latent,

    .. math::
        \mathbf{z} = g \odot (\mu + \sigma \odot \epsilon), \qquad
        \epsilon \sim \mathcal{N}(0, \mathbf{I}),

    so closed units carry neither signal nor noise, and in evaluation the
    embedding is :math:`g \odot \mu`. The KL term is summed over the open
    units only: closed units are neither reconstructed nor regularised,
    which is exactly the latent of the compacted model.
    :func:`damgraph.compact` folds :math:`g` into the :math:`\mu` head and
    shifts the :math:`\log\sigma` head by :math:`\log g`, which gives the same
    embedding and the same distribution of :math:`\mathbf{z}`.

    Args:
        encoder (GNNEncoder): A variational encoder.
        decoder (torch.nn.Module, optional): Defaults to the inner product.
    """

    variational = True
    takes_edge_weights = True

    def __init__(self, encoder: GNNEncoder, decoder: Optional[nn.Module] = None):
        if not getattr(encoder, "variational", False):
            raise ValueError("DAMVGAE needs a GNNEncoder built with variational=True")
        super().__init__(encoder, decoder or InnerProductDecoder())

    def encode(self, *args, **kwargs) -> Tensor:
        mu, logstd = self.encoder(*args, **kwargs)
        logstd = logstd.clamp(max=MAX_LOGSTD)
        gate = self.encoder.out_gate
        if isinstance(gate, SizeGate):
            keep = gate.open_indices()
            self.__mu__, self.__logstd__ = mu[:, keep], logstd[:, keep]
        else:
            self.__mu__, self.__logstd__ = mu, logstd
        return gate(self.reparametrize(mu, logstd))

    def regularization_loss(self, z: Tensor, hidden_edges: Optional[Tensor], num_nodes: int) -> Tensor:
        """The KL term of the last encoding over the open units, per node (:math:`\frac{1}{N}` KL)."""
        return self.kl_loss() / num_nodes

    def __getstate__(self) -> dict:
        # The last (mu, logstd) are non-leaf tensors that cannot be copied or
        # pickled; they belong to one forward pass, not to the model.
        state = self.__dict__.copy()
        state.pop("__mu__", None)
        state.pop("__logstd__", None)
        return state


class MaskGAE(GAE):
    r"""The graph autoencoder of MaskGAE (`Li et al., KDD 2023
    <https://arxiv.org/abs/2205.10053>`_): a GAE trained to reconstruct edges
    hidden from its encoder (the masking lives in
    :meth:`damgraph.linkpred.LinkPredTask.loss`), with an optional
    auxiliary :class:`DegreeDecoder` (:obj:`degree_decoder`) regressing each
    node's number of hidden edges from its embedding, weighted by
    :obj:`degree_weight` in :meth:`regularization_loss`. The output gate of
    the encoder works as for GAE; :func:`damgraph.compact` also cuts the
    degree decoder's inputs."""

    variational = False
    takes_edge_weights = False

    def __init__(self, encoder: nn.Module, decoder: Optional[nn.Module] = None,
                 degree_decoder: Optional[DegreeDecoder] = None, degree_weight: float = 0.0):
        super().__init__(encoder, decoder or InnerProductDecoder())
        self.degree_decoder = degree_decoder
        self.degree_weight = degree_weight

    def regularization_loss(self, z: Tensor, hidden_edges: Optional[Tensor], num_nodes: int) -> Tensor:
        """The degree loss of the edges hidden this step, times :obj:`degree_weight`."""
        if hidden_edges is None or self.degree_weight == 0:
            return z.new_zeros(())
        return self.degree_weight * self.degree_loss(z, hidden_edges)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.degree_decoder is not None:
            self.degree_decoder.reset_parameters()

    def degree_loss(self, z: Tensor, hidden_edges: Tensor) -> Tensor:
        """Squared error of the predicted against the true number of hidden
        edges at each node (zero without a degree decoder)."""
        if self.degree_decoder is None:
            return z.new_zeros(())
        target = torch.bincount(hidden_edges.flatten(), minlength=z.size(0)).to(z.dtype)
        return F.mse_loss(self.degree_decoder(z), target)


def build_autoencoder(config: Union[LinkPredConfig, str], in_channels: int, dim: Optional[int] = None,
                      beta_init: float = 1.0, **settings: Any) -> GAE:
    """The untrained autoencoder a :class:`~damgraph.LinkPredConfig`
    describes, or the one of a model name with its preset
    (:func:`~damgraph.config.model_config`) and :obj:`dim` and
    :obj:`settings` (config field names) on top, e.g.
    ``build_autoencoder("gae", 1433, 64, gate=None)``.

    ``gae`` builds PyG's :class:`~torch_geometric.nn.GAE`, ``vgae`` a
    :class:`DAMVGAE` and ``maskgae`` a :class:`MaskGAE` (with a
    :class:`DegreeDecoder` when ``degree_weight > 0``), on a
    :class:`~damgraph.GNNEncoder` whose output (and with ``gate_hidden``
    hidden) width sits behind ``config.gate`` (``None``: a plain
    fixed-width model); in ``mode="precomputed"`` the encoder is a
    :class:`~damgraph.encoders.SIGNEncoder` on features propagated
    ``hops`` times. The decoder is the inner product or an
    :class:`MLPEdgeDecoder` (``decoder="mlp"``)."""
    if dim is not None:
        settings["dim"] = dim
    config = model_config(config, **settings) if isinstance(config, str) else replace(config, **settings)
    family = autoencoder_class(config.model)
    if config.mode == "precomputed":
        encoder: nn.Module = SIGNEncoder(in_channels, config.dim, config.hops, config.hidden_width, config.gate,
                                         beta_init=beta_init, gate_alpha=config.gate_alpha)
    else:
        encoder = GNNEncoder(
            in_channels, config.dim, hidden_channels=config.hidden_width, num_layers=config.num_layers,
            dropout=config.dropout, dropout_input=config.dropout_input, gate_output=config.gate is not None,
            gate_hidden=config.gate is not None and config.gate_hidden,
            variational=family.variational,
            beta_init=beta_init, gate_alpha=config.gate_alpha, gate=config.gate or "dam", conv=config.conv,
            batch_norm=config.batch_norm,
            activation=config.activation)
    decoder = (MLPEdgeDecoder(config.dim, config.decoder_width, config.decoder_dropout, config.decoder_dropout_at)
               if config.decoder == "mlp" else InnerProductDecoder())
    if MODEL_FAMILIES[config.model].masks_edges:
        degree = (DegreeDecoder(config.dim, config.decoder_width, config.decoder_dropout, config.decoder_dropout_at)
                  if config.degree_weight > 0 else None)
        return family(encoder, decoder, degree, config.degree_weight)
    return family(encoder, decoder)


def autoencoder_class(model: str) -> type:
    """The autoencoder class of a model name: its
    :class:`~damgraph.config.ModelFamily` entry's ``"module:Class"``."""
    return pkgutil.resolve_name(MODEL_FAMILIES[model].autoencoder)


def build_classifier(
    in_channels: int,
    num_classes: int,
    hidden_channels: int = 64,
    num_layers: int = 2,
    dropout: float = 0.5,
    dam: bool = True,
    beta_init: float = 1.0,
) -> GNNEncoder:
    """The GCN node classifier of Kipf and Welling (2017) returning logits,
    with DAM gates on its hidden layer(s) (never on the class logits)."""
    return GNNEncoder(
        in_channels, num_classes, hidden_channels=hidden_channels, num_layers=num_layers,
        dropout=dropout, gate_output=False, gate_hidden=dam, beta_init=beta_init)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (gate betas included)."""
    return sum(p.numel() for p in model.parameters())


def make_optimizer(
    model: nn.Module, lr: float = 0.01, weight_decay: float = 0.0, beta_lr: Optional[float] = None
) -> torch.optim.Adam:
    """Adam with the gate parameters (DAM's betas) in their own group: no
    weight decay, and their own learning rate (:obj:`beta_lr`, default :obj:`lr`)."""
    betas = {id(p) for p in gate_parameters(model)}
    weights = [p for p in model.parameters() if id(p) not in betas]
    gates = [p for p in model.parameters() if id(p) in betas]
    groups = [{"params": weights, "weight_decay": weight_decay}]
    if gates:
        groups.append({"params": gates, "weight_decay": 0.0, "lr": lr if beta_lr is None else beta_lr})
    return torch.optim.Adam(groups, lr=lr)
