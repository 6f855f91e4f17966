"""Learned node inputs for graphs without features: a table of one vector
per node (OGB's ``nn.Embedding`` inputs of its ``ogbl-ddi`` examples, Hu et
al., NeurIPS 2020), optionally with its columns behind a size gate."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from damgraph.config import LinkPredConfig
from damgraph.gates import SizeGate, make_gate

#: The standard deviation a random-projection start is scaled to. It does
#: not shrink with the graph, unlike a Xavier start's spread (about
#: ``1/sqrt(num_nodes)``), which on a large graph Adam's first steps (about
#: ``lr`` each) swamp before the start's structure is used.
PROJECTION_STD = 0.1


class LearnedInput(nn.Module):
    """An input vector per node, for graphs without features (the encoder's
    first layer then acts on learned node embeddings). With
    ``trainable=False`` the vectors are a buffer, not a parameter: fixed
    features that the optimiser never sees and parameter counts leave out.
    With a :obj:`gate` (a :class:`~damgraph.gates.SizeGate` over the
    columns) :meth:`forward` returns the gated table, so one run learns the
    table's width; :func:`damgraph.compact` cuts the closed columns."""

    def __init__(self, num_nodes: int, channels: int, start: Optional[Tensor] = None, trainable: bool = True,
                 start_std: Optional[float] = None, gate: Optional[SizeGate] = None):
        super().__init__()
        self.start_std = start_std
        x = torch.empty(num_nodes, channels)
        if trainable:
            self.x = nn.Parameter(x)
        else:
            self.register_buffer("x", x)
        self.gate = gate if gate is not None else nn.Identity()
        self.reset_parameters(start)

    @classmethod
    def for_config(cls, config: LinkPredConfig, num_nodes: int, start: Optional[Tensor] = None) -> "LearnedInput":
        """The inputs a run with :obj:`config` trains, ``config.input_width``
        wide: fixed with ``inputs="spectral-fixed"``; a random-projection
        start at the spread :data:`PROJECTION_STD`; behind the run's gate
        with ``gate_inputs``."""
        width = config.input_width
        gate = (make_gate(config.gate, width, alpha=config.gate_alpha)
                if config.gate is not None and config.gate_inputs else None)
        return cls(num_nodes, width, start, trainable=config.inputs != "spectral-fixed",
                   start_std=PROJECTION_STD if config.inputs == "projection" else None, gate=gate)

    def reset_parameters(self, start: Optional[Tensor] = None) -> None:
        """Xavier-uniform values; with :obj:`start` (``num_nodes x k``,
        ``k <= channels``), its columns rescaled to the same overall spread
        (or to the standard deviation ``start_std`` where set) in the first
        ``k`` channels and zeros in the rest."""
        nn.init.xavier_uniform_(self.x)
        if start is not None:
            with torch.no_grad():
                spread = self.x.std() if self.start_std is None else self.start_std
                scale = spread / start.std().clamp_min(1e-12)
                self.x.zero_()
                self.x[:, :start.size(1)] = start.to(self.x) * scale

    @torch.no_grad()
    def keep_columns_(self, index: Tensor, scale: Optional[Tensor] = None) -> None:
        """Keep only the columns :obj:`index` (times :obj:`scale`), with no
        gate left: the gated table's open columns, in place."""
        x = self.x[:, index] * (scale if scale is not None else 1)
        if isinstance(self.x, nn.Parameter):
            self.x = nn.Parameter(x.contiguous())
        else:
            self.x = x.contiguous()
        self.gate = nn.Identity()

    def forward(self) -> Tensor:
        return self.gate(self.x)


def trained_modules(model: nn.Module, inputs: Optional[LearnedInput]) -> nn.Module:
    """What training updates and a checkpoint holds: the model, with the
    learned node inputs beside it (``net``, ``inputs``) when featureless."""
    return nn.ModuleDict({"net": model, "inputs": inputs}) if inputs is not None else model
