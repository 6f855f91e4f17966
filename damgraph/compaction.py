"""Cut a DAM-gated model down to its open units, with no fine-tuning."""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor, nn

from damgraph.encoders import GNNEncoder, SIGNEncoder
from damgraph.gates import SizeGate, size_gates
from damgraph.inputs import LearnedInput
from damgraph.layers import layer_kind
from damgraph.models import count_parameters


def _sliced_conv(conv: nn.Module, **cut) -> nn.Module:
    """:obj:`conv` cut as its kind cuts (:attr:`~damgraph.layers.LayerKind.cut`)."""
    return layer_kind(conv).cut(conv, **cut)


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
