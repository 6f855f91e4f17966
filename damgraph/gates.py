"""The gates researchers use instead of DAM to learn a layer's width, as
:class:`~damgraph.mask.SizeGate` subclasses, so that training, the harness and
:func:`damgraph.compact` treat them exactly like :class:`~damgraph.DAMMask`."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from damgraph.mask import SizeGate


class L1Scale(SizeGate):
    r"""A trainable scale per unit with an :math:`\ell_1` penalty, in the
    style of network slimming (`Liu et al., ICCV 2017
    <https://arxiv.org/abs/1708.06519>`_): :math:`x \odot s`, regulariser
    :math:`\sum_j |s_j|`. Adam does not drive scales to exact zeros, so
    after (and, for model selection, during) training a unit counts as
    closed when :math:`|s_j| < \tau \max_k |s_k|`, and :meth:`mask` zeroes it.

    Args:
        width (int): Number of units.
        threshold (float, optional): Relative threshold :math:`\tau`.
            (default: :obj:`0.05`)
    """

    def __init__(self, width: int, threshold: float = 0.05):
        super().__init__()
        self.width = int(width)
        self.threshold = float(threshold)
        self.scale = nn.Parameter(torch.ones(self.width))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.scale.fill_(1.0)

    def mask(self) -> Tensor:
        magnitude = self.scale.detach().abs()
        return self.scale * (magnitude >= self.threshold * magnitude.max()).to(self.scale.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return x * (self.scale if self.training else self.mask())

    def regularization(self) -> Tensor:
        return self.scale.abs().sum()


class HardConcreteGate(SizeGate):
    r"""Hard-concrete :math:`L_0` gates per unit (`Louizos, Welling and
    Kingma, ICLR 2018 <https://arxiv.org/abs/1712.01312>`_). While training,

    .. math::
        s = \sigma\big((\log u - \log(1-u) + \log\alpha_j)/\beta\big), \quad
        z_j = \min(1, \max(0, s(\zeta - \gamma) + \gamma)), \quad u \sim U(0, 1),

    with :math:`\beta = 2/3`, :math:`\gamma = -0.1`, :math:`\zeta = 1.1`;
    the regulariser is the expected number of open gates
    :math:`\sum_j \sigma(\log\alpha_j - \beta \log(-\gamma/\zeta))`. At test
    time the gates are deterministic,
    :math:`z_j = \min(1, \max(0, \sigma(\log\alpha_j)(\zeta - \gamma) + \gamma))`.

    Args:
        width (int): Number of units.
        init_open (float, optional): Initial probability of a gate being open
            (sets :math:`\log\alpha`). (default: :obj:`0.9`)
    """

    BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1

    def __init__(self, width: int, init_open: float = 0.9):
        super().__init__()
        self.width = int(width)
        self.init_log_alpha = math.log(init_open / (1.0 - init_open))
        self.log_alpha = nn.Parameter(torch.full((self.width,), self.init_log_alpha))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.log_alpha.fill_(self.init_log_alpha)

    def _stretch(self, s: Tensor) -> Tensor:
        return torch.clamp(s * (self.ZETA - self.GAMMA) + self.GAMMA, 0.0, 1.0)

    def mask(self) -> Tensor:
        return self._stretch(torch.sigmoid(self.log_alpha))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x * self.mask()
        u = torch.rand(self.width, device=x.device).clamp(1e-6, 1 - 1e-6)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_alpha) / self.BETA)
        return x * self._stretch(s)

    def regularization(self) -> Tensor:
        return torch.sigmoid(self.log_alpha - self.BETA * math.log(-self.GAMMA / self.ZETA)).sum()
