"""Cut a DAM-gated model down to its open units, with no fine-tuning."""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

from damgraph.encoders import GNNEncoder, SIGNEncoder
from damgraph.gates import SizeGate, size_gates
from damgraph.inputs import LearnedInput
from damgraph.models import count_parameters


def _sliced_weight(weight: Tensor, in_index: Optional[Tensor], in_scale: Optional[Tensor],
                   out_index: Optional[Tensor]) -> Tensor:
    weight = weight.detach()  # (out, in)
    if in_index is not None:
        weight = weight[:, in_index]
        if in_scale is not None:
            weight = weight * in_scale.unsqueeze(0)
    return weight if out_index is None else weight[out_index]


def _sliced_conv(
    conv: nn.Module,
    out_index: Optional[Tensor] = None,
    out_scale: Optional[Tensor] = None,
    in_index: Optional[Tensor] = None,
    in_scale: Optional[Tensor] = None,
    bias_shift: Optional[Tensor] = None,
) -> nn.Module:
    """A new layer computing ``conv`` on the kept input columns (scaled by
    ``in_scale``) and returning the kept output columns (scaled by
    ``out_scale``, then shifted by ``bias_shift``): a GCN, SAGE or GAT layer."""
    if isinstance(conv, GATConv):
        if bias_shift is not None:
            raise TypeError("a GAT layer cannot be a VGAE log-sigma head here")
        return _sliced_gat(conv, out_index, out_scale, in_index, in_scale)
    if isinstance(conv, SAGEConv):
        if bias_shift is not None:
            raise TypeError("a SAGE layer cannot be a VGAE log-sigma head here")
        return _sliced_sage(conv, out_index, out_scale, in_index, in_scale)
    weight = _sliced_weight(conv.lin.weight, in_index, in_scale, out_index)
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


def _sliced_sage(conv: SAGEConv, out_index, out_scale, in_index, in_scale) -> SAGEConv:
    """SAGE: :math:`\\mathbf{W}_l\\,\\mathrm{mean}_j \\mathbf{x}_j + \\mathbf{b} +
    \\mathbf{W}_r \\mathbf{x}_i` is linear in each output unit: cut both weights."""
    if conv.normalize or conv.project or not conv.root_weight or not isinstance(conv.aggr, str):
        raise TypeError("compact() supports SAGEConv with its defaults (one aggregation, root weight, "
                        "no normalize or project)")
    w_l = _sliced_weight(conv.lin_l.weight, in_index, in_scale, out_index)
    w_r = _sliced_weight(conv.lin_r.weight, in_index, in_scale, out_index)
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


def _sliced_gat(conv: GATConv, out_index, out_scale, in_index, in_scale) -> nn.Module:
    """GAT (one head): the attention logit of an edge,
    :math:`\\mathbf{a}_s^\\top \\mathbf{W}\\mathbf{x}_j + \\mathbf{a}_d^\\top \\mathbf{W}\\mathbf{x}_i`,
    sums over every output unit, closed ones included. Their share is two
    linear functions of the input, kept as two extra columns (one read by
    each attention vector) that the layer computes and :class:`OutputSlice`
    drops; a folded output scale :math:`g` is undone in the attention
    vectors. The cut layer gives the kept columns exactly."""
    if conv.heads != 1 or getattr(conv, "lin", None) is None or conv.lin_edge is not None or conv.res is not None:
        raise TypeError("compact() supports single-head GATConv without edge features or residual")
    weight = _sliced_weight(conv.lin.weight, in_index, in_scale, None)  # all outputs, kept inputs
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


def _sliced_norm(norm: nn.Module, keep: Tensor, scale: Optional[Tensor] = None) -> nn.Module:
    """A batch norm over the kept units (per-unit, so cutting is exact), with
    an output scale folded into its affine weight and bias."""
    if not isinstance(norm, nn.BatchNorm1d):
        return norm
    new = nn.BatchNorm1d(int(keep.numel()), eps=norm.eps, momentum=norm.momentum,
                         affine=True, track_running_stats=norm.track_running_stats).to(keep.device)
    with torch.no_grad():
        weight = norm.weight[keep] if norm.affine else torch.ones(keep.numel(), device=keep.device)
        bias = norm.bias[keep] if norm.affine else torch.zeros(keep.numel(), device=keep.device)
        if scale is not None:
            weight, bias = weight * scale, bias * scale
        new.weight.copy_(weight)
        new.bias.copy_(bias)
        if norm.track_running_stats:
            new.running_mean.copy_(norm.running_mean[keep])
            new.running_var.copy_(norm.running_var[keep])
            new.num_batches_tracked.copy_(norm.num_batches_tracked)
    return new


def _open_units(gate: SizeGate, where: str) -> tuple[Tensor, Tensor]:
    with torch.no_grad():
        g = gate.values()
    keep = gate.open_indices()
    if keep.numel() == 0:
        raise ValueError(
            f"every unit of the {where} gate is closed ({gate.__class__.__name__}); "
            "nothing to keep: train with a smaller lam")
    return keep, g[keep]


def _compact_encoder(encoder: GNNEncoder) -> None:
    """Fold and cut every gate of ``encoder`` in place."""
    for i, gate in enumerate(encoder.hidden_gates):
        if not isinstance(gate, SizeGate):
            continue
        keep, g = _open_units(gate, f"hidden layer {i}")
        # ReLU then gate: drop the closed outputs, and fold g into the next
        # layer's input weights (exact for any activation).
        encoder.convs[i] = _sliced_conv(encoder.convs[i], out_index=keep)
        encoder.norms[i] = _sliced_norm(encoder.norms[i], keep)
        if i + 1 < len(encoder.convs):
            encoder.convs[i + 1] = _sliced_conv(encoder.convs[i + 1], in_index=keep, in_scale=g)
        elif encoder.variational:
            encoder.conv_mu = _sliced_conv(encoder.conv_mu, in_index=keep, in_scale=g)
            encoder.conv_logstd = _sliced_conv(encoder.conv_logstd, in_index=keep, in_scale=g)
        else:
            encoder.conv_out = _sliced_conv(encoder.conv_out, in_index=keep, in_scale=g)
        encoder.hidden_gates[i] = nn.Identity()

    gate = encoder.out_gate
    if isinstance(gate, SizeGate):
        keep, g = _open_units(gate, "output")
        if encoder.variational:
            # z = g*(mu + sigma*eps) = g*mu + (g*sigma)*eps
            encoder.conv_mu = _sliced_conv(encoder.conv_mu, out_index=keep, out_scale=g)
            encoder.conv_logstd = _sliced_conv(encoder.conv_logstd, out_index=keep, bias_shift=g.abs().log())
        elif isinstance(encoder.out_norm, nn.BatchNorm1d):  # g folds into the norm's affine map
            encoder.conv_out = _sliced_conv(encoder.conv_out, out_index=keep)
            encoder.out_norm = _sliced_norm(encoder.out_norm, keep, scale=g)
        else:
            encoder.conv_out = _sliced_conv(encoder.conv_out, out_index=keep, out_scale=g)
        encoder.out_gate = nn.Identity()
        encoder.out_channels = int(keep.numel())


def _compact_sign(encoder: SIGNEncoder) -> None:
    """Fold and cut the output gate of a SIGN encoder in place: its output
    map's rows of the closed units go, the open ones are scaled by :math:`g`."""
    gate = encoder.out_gate
    if not isinstance(gate, SizeGate):
        return
    keep, g = _open_units(gate, "output")
    lin = nn.Linear(encoder.lin_out.in_features, int(keep.numel())).to(keep.device)
    with torch.no_grad():
        lin.weight.copy_(encoder.lin_out.weight[keep] * g.unsqueeze(1))
        lin.bias.copy_(encoder.lin_out.bias[keep] * g)
    encoder.lin_out, encoder.out_gate = lin, nn.Identity()
    encoder.out_channels = int(keep.numel())


def _compact_table(inputs: LearnedInput, encoder: GNNEncoder) -> None:
    """Cut a gated node table to its open columns (the gate folded into
    them) and the encoder's first layer to the matching input columns."""
    keep, g = _open_units(inputs.gate, "node table")
    if len(encoder.convs):
        encoder.convs[0] = _sliced_conv(encoder.convs[0], in_index=keep)
    elif encoder.variational:
        encoder.conv_mu = _sliced_conv(encoder.conv_mu, in_index=keep)
        encoder.conv_logstd = _sliced_conv(encoder.conv_logstd, in_index=keep)
    else:
        encoder.conv_out = _sliced_conv(encoder.conv_out, in_index=keep)
    encoder.in_channels = int(keep.numel())
    inputs.keep_columns_(keep, g)


def compact(model: nn.Module) -> nn.Module:
    """A physically smaller copy of :obj:`model` with no DAM gate left inside.

    Every gated layer is cut to its open units (the contiguous top block, see
    :class:`~damgraph.DAMGate`) with the gate values folded into the weights:
    a gated hidden layer loses its closed output units and the next layer's
    matching input weights are scaled by :math:`g`; the output gate is folded
    into the output layer's weights and bias. The compacted model's embedding
    equals the open columns of the gated model's embedding (to float
    rounding), without fine-tuning. :obj:`model` itself is left unchanged.

    Args:
        model (torch.nn.Module): A :class:`~damgraph.GNNEncoder` or
            :class:`~damgraph.encoders.SIGNEncoder`, or any module containing
            them (GAE, VGAE, MaskGAE, classifier), or a model with its learned
            node inputs (:func:`~damgraph.inputs.trained_modules`), whose
            gated table is cut to its open columns with the encoder's first
            layer. Gates anywhere else are refused with a :class:`TypeError`.
    """
    model = copy.deepcopy(model)
    encoders = [m for m in model.modules() if isinstance(m, (GNNEncoder, SIGNEncoder))]
    inside = {id(g) for e in encoders for g in size_gates(e)}
    table = model["inputs"] if isinstance(model, nn.ModuleDict) and "inputs" in model else None
    if isinstance(table, LearnedInput) and isinstance(table.gate, SizeGate):
        encoder = getattr(model["net"], "encoder", None)
        if not isinstance(encoder, GNNEncoder):
            raise TypeError("compact() cuts a gated node table read by a damgraph.GNNEncoder only")
        inside.add(id(table.gate))
        _compact_table(table, encoder)
    if any(id(g) not in inside for g in size_gates(model)):
        raise TypeError("compact() cuts gates inside damgraph.GNNEncoder and damgraph.encoders.SIGNEncoder "
                        "only; this model has a gate elsewhere")
    for module in model.modules():  # MLP (edge, degree) decoders read the embedding: cut their closed inputs
        encoder = getattr(module, "encoder", None)
        if not isinstance(getattr(encoder, "out_gate", None), SizeGate):
            continue
        for name in ("decoder", "degree_decoder"):
            head = getattr(module, name, None)
            if hasattr(head, "keep_inputs"):
                head.keep_inputs(_open_units(encoder.out_gate, "output")[0])
    for encoder in encoders:
        if isinstance(encoder, SIGNEncoder):
            _compact_sign(encoder)
        else:
            _compact_encoder(encoder)
    return model


def compacted_size(model: nn.Module) -> Optional[int]:
    """Parameter count of :func:`compact` of :obj:`model` (of :obj:`model`
    itself when it has no gate); :obj:`None` when a gate has closed every unit."""
    if not size_gates(model):
        return count_parameters(model)
    try:
        return count_parameters(compact(model))
    except ValueError:
        return None
