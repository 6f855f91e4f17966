"""Cut a DAM-gated model down to its open units, with no fine-tuning."""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv

from damgraph.encoders import GCNEncoder
from damgraph.mask import SizeGate, size_gates
from damgraph.models import count_parameters


def _sliced_conv(
    conv: GCNConv,
    out_index: Optional[Tensor] = None,
    out_scale: Optional[Tensor] = None,
    in_index: Optional[Tensor] = None,
    in_scale: Optional[Tensor] = None,
    bias_shift: Optional[Tensor] = None,
) -> GCNConv:
    """A new :class:`GCNConv` computing ``conv`` on the kept input columns
    (scaled by ``in_scale``) and returning the kept output columns (scaled by
    ``out_scale``, then shifted by ``bias_shift``)."""
    weight = conv.lin.weight.detach()  # (out, in)
    bias = conv.bias.detach() if conv.bias is not None else None
    if in_index is not None:
        weight = weight[:, in_index]
        if in_scale is not None:
            weight = weight * in_scale.unsqueeze(0)
    if out_index is not None:
        weight = weight[out_index]
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


def _open_units(gate: SizeGate, where: str) -> tuple[Tensor, Tensor]:
    with torch.no_grad():
        g = gate.mask()
    keep = gate.active_indices()
    if keep.numel() == 0:
        raise ValueError(
            f"every unit of the {where} gate is closed ({gate.__class__.__name__}); "
            "nothing to keep: train with a smaller lam")
    return keep, g[keep]


def _compact_encoder(encoder: GCNEncoder) -> None:
    """Fold and cut every gate of ``encoder`` in place."""
    for i, gate in enumerate(encoder.hidden_masks):
        if not isinstance(gate, SizeGate):
            continue
        keep, g = _open_units(gate, f"hidden layer {i}")
        # ReLU then gate: drop the closed outputs, and fold g into the next
        # layer's input weights (exact for any activation).
        encoder.convs[i] = _sliced_conv(encoder.convs[i], out_index=keep)
        if i + 1 < len(encoder.convs):
            encoder.convs[i + 1] = _sliced_conv(encoder.convs[i + 1], in_index=keep, in_scale=g)
        elif encoder.variational:
            encoder.conv_mu = _sliced_conv(encoder.conv_mu, in_index=keep, in_scale=g)
            encoder.conv_logstd = _sliced_conv(encoder.conv_logstd, in_index=keep, in_scale=g)
        else:
            encoder.conv_out = _sliced_conv(encoder.conv_out, in_index=keep, in_scale=g)
        encoder.hidden_masks[i] = nn.Identity()

    gate = encoder.out_mask
    if isinstance(gate, SizeGate):
        keep, g = _open_units(gate, "output")
        if encoder.variational:
            # z = g*(mu + sigma*eps) = g*mu + (g*sigma)*eps
            encoder.conv_mu = _sliced_conv(encoder.conv_mu, out_index=keep, out_scale=g)
            encoder.conv_logstd = _sliced_conv(encoder.conv_logstd, out_index=keep, bias_shift=g.abs().log())
        else:
            encoder.conv_out = _sliced_conv(encoder.conv_out, out_index=keep, out_scale=g)
        encoder.out_mask = nn.Identity()
        encoder.out_channels = int(keep.numel())


def compact(model: nn.Module) -> nn.Module:
    """A physically smaller copy of :obj:`model` with no DAM gate left inside.

    Every gated layer is cut to its open units (the contiguous top block, see
    :class:`~damgraph.DAMMask`) with the gate values folded into the weights:
    a gated hidden layer loses its closed output units and the next layer's
    matching input weights are scaled by :math:`g`; the output gate is folded
    into the output layer's weights and bias. The compacted model's embedding
    equals the open columns of the gated model's embedding (to float
    rounding), without fine-tuning. :obj:`model` itself is left unchanged.

    Args:
        model (torch.nn.Module): A :class:`~damgraph.GCNEncoder`, or any
            module containing them (GAE, VGAE, classifier).
    """
    model = copy.deepcopy(model)
    encoders = [m for m in model.modules() if isinstance(m, GCNEncoder)]
    if not encoders and size_gates(model):
        raise TypeError("compact() supports gates inside damgraph.GCNEncoder only")
    for module in model.modules():  # an MLP decoder reads the embedding: cut its closed inputs too
        decoder, encoder = getattr(module, "decoder", None), getattr(module, "encoder", None)
        if hasattr(decoder, "keep_inputs") and isinstance(getattr(encoder, "out_mask", None), SizeGate):
            decoder.keep_inputs(_open_units(encoder.out_mask, "output")[0])
    for encoder in encoders:
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
