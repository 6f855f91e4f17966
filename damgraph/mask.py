"""The DiscriminAtive Masking (DAM) gate, the interface every size gate
shares, and helpers to find gates in a model."""
from __future__ import annotations

import bisect
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn


class SizeGate(nn.Module):
    """A per-unit gate that decides how many units of a layer are used.

    Subclasses give the deterministic gate values :meth:`mask` (zero for a
    closed unit), the regulariser :meth:`regularization` that training adds
    (times :math:`\\lambda`), and may sample in :meth:`forward` while
    training. :func:`damgraph.compact` keeps the units with a non-zero gate.
    """

    width: int

    def mask(self) -> Tensor:
        raise NotImplementedError

    def regularization(self) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return x * self.mask()

    @property
    def num_active(self) -> int:
        """Number of open units (non-zero gate)."""
        with torch.no_grad():
            return int((self.mask() != 0).sum())

    def active_indices(self) -> Tensor:
        """Indices of the open units, ascending."""
        with torch.no_grad():
            return torch.nonzero(self.mask() != 0).flatten()


class DAMMask(SizeGate):
    r"""The DiscriminAtive Masking gate from `"Learning Compact Representations
    of Neural Networks using DiscriminAtive Masking (DAM)"
    <https://arxiv.org/abs/2110.00684>`_ (Bu, Daw, Maruf, Karpatne, NeurIPS 2021).

    A layer of width :math:`n` is gated unit by unit with a single trainable
    scalar :math:`\beta`:

    .. math::
        g_j = \mathrm{ReLU}\big(\tanh\big(\alpha^2 (\mu_j + \beta)\big)\big),
        \qquad \mu_j = \frac{5\,j}{n}, \quad j = 0, \dots, n-1,

    and :obj:`forward(x)` returns :math:`x \odot g`. Training adds
    :math:`\lambda\,\beta` (averaged over the gated layers, see
    :func:`dam_penalty`) to the loss, so :math:`\beta` drifts down and closes
    the lowest-index units first until the task gradient holds it. The open
    units (:math:`g_j > 0`) always form a contiguous top block
    :obj:`active_slice`, which :func:`damgraph.compact` cuts out. Only open
    units pass gradient to :math:`\beta`.

    Args:
        width (int): Number of units :math:`n` to gate.
        beta_init (float, optional): Initial :math:`\beta`. (default: :obj:`1.0`)
        alpha (float, optional): Fixed steepness :math:`\alpha`, not trained.
            (default: :obj:`1.0`)
    """

    MU_SCALE = 5.0

    def __init__(self, width: int, beta_init: float = 1.0, alpha: float = 1.0):
        super().__init__()
        if int(width) != width or width < 1:
            raise ValueError(f"DAMMask width must be a positive integer, got {width!r}")
        self.width = int(width)
        self.beta_init = float(beta_init)
        mu = torch.arange(self.width, dtype=torch.float32) * self.MU_SCALE / self.width
        self.register_buffer("mu", mu)
        self.register_buffer("alpha", torch.tensor(float(alpha)))
        self.beta = nn.Parameter(torch.tensor(self.beta_init))
        self._mu_values: Optional[List[float]] = None  # mu as Python floats, for num_active

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.beta.fill_(self.beta_init)

    def mask(self) -> Tensor:
        """The gate vector :math:`g` (differentiable in :math:`\\beta`)."""
        return torch.relu(torch.tanh(self.alpha * self.alpha * (self.mu + self.beta)))

    @property
    def num_active(self) -> int:
        """Number of open units, :math:`|\\{j : g_j > 0\\}|`, counted without
        computing :math:`g` (training asks every epoch): ReLU∘tanh keeps the
        units with :math:`\\alpha^2(\\mu_j + \\beta) > 0`, and the sign of a
        float32 sum is that of the exact sum, so with the :math:`\\mu_j`
        ascending the open ones are those above :math:`-\\beta`."""
        if float(self.alpha) == 0.0:
            return 0
        if self._mu_values is None or len(self._mu_values) != self.width:
            self._mu_values = self.mu.tolist()
        return self.width - bisect.bisect_right(self._mu_values, -self.beta.item())

    @property
    def active_slice(self) -> slice:
        """The open units, always the top block ``[width - num_active, width)``."""
        return slice(self.width - self.num_active, self.width)

    def active_indices(self) -> Tensor:
        """Indices of the open units, ascending."""
        return torch.arange(self.width, device=self.mu.device)[self.active_slice]

    def regularization(self) -> Tensor:
        """This layer's term of the DAM penalty: :math:`\\beta` itself."""
        return self.beta

    def extra_repr(self) -> str:
        return f"width={self.width}, beta={self.beta.item():.4f}, active={self.num_active}"


def dam_masks(model: nn.Module) -> List[DAMMask]:
    """All :class:`DAMMask` gates inside :obj:`model`, in module order."""
    return [m for m in model.modules() if isinstance(m, DAMMask)]


def size_gates(model: nn.Module) -> List[SizeGate]:
    """All :class:`SizeGate` modules (DAM or other) inside :obj:`model`."""
    return [m for m in model.modules() if isinstance(m, SizeGate)]


def gate_penalty(model: Union[nn.Module, Sequence[SizeGate]]) -> Tensor:
    """The mean of :meth:`SizeGate.regularization` over every gate of
    :obj:`model` (or over the given gates); for DAM gates alone this is
    :func:`dam_penalty`."""
    gates = size_gates(model) if isinstance(model, nn.Module) else list(model)
    if not gates:
        return torch.zeros(())
    if len(gates) == 1:
        return gates[0].regularization()
    return torch.stack([g.regularization() for g in gates]).mean()


def dam_penalty(model: nn.Module) -> Tensor:
    r"""The DAM regulariser :math:`\frac{1}{L}\sum_{l} \beta_l` over the
    :math:`L` gated layers of :obj:`model` (zero when there are none).
    Multiply by :math:`\lambda` and add to the task loss."""
    return gate_penalty(dam_masks(model))


def active_widths(model: nn.Module) -> Dict[str, int]:
    """Open units per gated layer, keyed by the gate's module name."""
    return {name: m.num_active for name, m in model.named_modules() if isinstance(m, SizeGate)}


def gate_parameters(model: nn.Module) -> List[nn.Parameter]:
    """The parameters of every gate (DAM's betas and the others' scales or
    logits), kept out of weight decay and given their own learning rate."""
    return [p for g in size_gates(model) for p in g.parameters()]
