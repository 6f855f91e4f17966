"""Size gates: the DiscriminAtive Masking (DAM) gate, the baselines
researchers use instead of it to learn a layer's width (an L1-penalised scale
and the hard-concrete L0 gate), the interface they share, and helpers to find
them in a model. Training, the harness and :func:`damgraph.compact` treat
every :class:`SizeGate` alike."""
from __future__ import annotations

import bisect
import math
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from damgraph import config


class SizeGate(nn.Module):
    """A per-unit gate that decides how many units of a layer are used.

    Subclasses give the deterministic gate values :meth:`values` (zero for a
    closed unit), the regulariser :meth:`regularization` that training adds
    (times :math:`\\lambda`), and may sample in :meth:`forward` while
    training. :func:`damgraph.compact` keeps the units with a non-zero gate.
    """

    width: int
    #: Whether the open width shows when the gate has settled, so that
    #: :func:`damgraph.training.fit` may size first and select after (DAM:
    #: a top block closing unit by unit). The baselines' widths move only
    #: when a scale or a logit crosses its threshold, late in a run, so the
    #: sizing schedule does not apply to them.
    settles = False
    #: Whether the open units are always the top block of the layer (DAM's
    #: order), so that the block alone can be read and its top units nest.
    top_block = False
    #: Whether the gate passes the same values in training as in evaluation
    #: (DAM's; L1's scale is thresholded in evaluation only, and L0 samples
    #: in training), so that validation's forward pass can serve the next step.
    same_in_training = False

    def values(self) -> Tensor:
        raise NotImplementedError

    def regularization(self) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return x * self.values()

    def project_(self) -> None:
        """Put the gate's parameters back into their allowed set; training
        calls it after every optimiser step (default: every value allowed)."""

    def harden_(self) -> None:
        """Let the open units pass at gain 1, the closed ones staying shut
        (a frozen gate's width trained as a fixed model of that width)."""
        raise NotImplementedError(f"{type(self).__name__} has no hard form")

    @property
    def num_open(self) -> int:
        """Number of open units (non-zero gate)."""
        with torch.no_grad():
            return int((self.values() != 0).sum())

    def open_indices(self) -> Tensor:
        """Indices of the open units, ascending."""
        with torch.no_grad():
            return torch.nonzero(self.values() != 0).flatten()


class DAMGate(SizeGate):
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
    :obj:`open_slice`, which :func:`damgraph.compact` cuts out. Only open
    units pass gradient to :math:`\beta`.

    A layer whose units are all closed passes no gradient to :math:`\beta`,
    so it could never reopen; and with an inner-product decoder the task's
    own gradient can push :math:`\beta` down far faster than :math:`\lambda`
    does (the gate doubles as a scale of the embedding), with Adam's momentum
    carrying it past the last unit. So :meth:`project_`, which training calls
    after every step, keeps :math:`\beta \ge -\mu_{n-k} + \min(\frac{5}{2n},
    \frac{1}{2})`: the top :math:`k` = :obj:`min_open` units stay open
    (``min_open=0`` is the paper's gate, unguarded; the models damgraph
    builds use 1). The floor changes nothing unless :math:`\beta` falls
    below it, which needs all but :obj:`min_open` units closed.

    Args:
        width (int): Number of units :math:`n` to gate.
        beta_init (float, optional): Initial :math:`\beta`. (default: :obj:`1.0`)
        alpha (float, optional): Fixed steepness :math:`\alpha`, not trained.
            (default: :obj:`1.0`)
        min_open (int, optional): Units that :func:`damgraph.training.fit`
            never closes (a :obj:`beta_init` below the floor is not raised
            until the first step).
            (default: :obj:`1`)
    """

    MU_SCALE = 5.0
    settles = True
    top_block = True
    same_in_training = True

    def __init__(self, width: int, beta_init: float = 1.0, alpha: float = 1.0, min_open: int = 1):
        super().__init__()
        if int(width) != width or width < 1:
            raise ValueError(f"DAMGate width must be a positive integer, got {width!r}")
        if int(min_open) != min_open or not 0 <= min_open <= width:
            raise ValueError(f"DAMGate min_open must be an integer from 0 to the width {width}, got {min_open!r}")
        self.width = int(width)
        self.beta_init = float(beta_init)
        self.min_open = int(min_open)
        mu = torch.arange(self.width, dtype=torch.float32) * self.MU_SCALE / self.width
        self.register_buffer("mu", mu)
        self.register_buffer("alpha", torch.tensor(float(alpha)))
        self.beta = nn.Parameter(torch.tensor(self.beta_init))
        self._mu_values: Optional[List[float]] = None  # mu as Python floats, for num_open

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.beta.fill_(self.beta_init)

    def values(self) -> Tensor:
        """The gate vector :math:`g` (differentiable in :math:`\\beta`)."""
        return torch.relu(torch.tanh(self.alpha * self.alpha * (self.mu + self.beta)))

    @property
    def num_open(self) -> int:
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
    def open_slice(self) -> slice:
        """The open units, always the top block ``[width - num_open, width)``."""
        return slice(self.width - self.num_open, self.width)

    def open_indices(self) -> Tensor:
        """Indices of the open units, ascending."""
        return torch.arange(self.width, device=self.mu.device)[self.open_slice]

    @torch.no_grad()
    def open_exactly_(self, k: int) -> None:
        """Set :math:`\\beta` midway between the points where unit :math:`n-k`
        opens and unit :math:`n-k-1` would, so that exactly the top
        :obj:`k` units are open (the structure of a saved compacted model)."""
        if not 0 <= k <= self.width:
            raise ValueError(f"a DAMGate of width {self.width} cannot have {k} open units")
        mu = self.mu.tolist()
        upper = mu[self.width - k] if k > 0 else mu[-1] + 1.0
        lower = mu[self.width - k - 1] if k < self.width else mu[0] - 1.0
        self.beta.fill_(-(upper + lower) / 2)

    def regularization(self) -> Tensor:
        """This layer's term of the DAM penalty: :math:`\\beta` itself."""
        return self.beta

    #: :meth:`harden_`'s :math:`\\alpha^2 (\\mu_j + \\beta)` at the least open
    #: unit: tanh(9) is 1 to float32's precision.
    HARD_MARGIN = 9.0

    @torch.no_grad()
    def harden_(self) -> None:
        """Steepen :math:`\\alpha` so that every open unit passes at gain 1
        (to float32's precision) and the same units stay open."""
        margins = self.mu + self.beta
        least = margins[margins > 0].min() if self.num_open else None
        if least is not None:
            self.alpha.fill_(math.sqrt(self.HARD_MARGIN / float(least)))

    @property
    def beta_floor(self) -> float:
        """The smallest :math:`\\beta` that :meth:`project_` allows
        (:math:`-\\infty` with ``min_open=0``): half a step of :math:`\\mu`
        (at most 0.5) above the point where unit :math:`n - k` closes."""
        if self.min_open == 0:
            return -math.inf
        margin = min(self.MU_SCALE / (2 * self.width), 0.5)
        return -self.MU_SCALE * (self.width - self.min_open) / self.width + margin

    def project_(self) -> None:
        """Raise :math:`\\beta` to :attr:`beta_floor` if a step took it below."""
        if self.min_open > 0:
            with torch.no_grad():  # in place, without reading beta back (no device sync on a GPU)
                self.beta.clamp_(min=self.beta_floor)

    def extra_repr(self) -> str:
        return f"width={self.width}, beta={self.beta.item():.4f}, open={self.num_open}, min_open={self.min_open}"


class L1Scale(SizeGate):
    r"""A trainable scale per unit with an :math:`\ell_1` penalty, in the
    style of network slimming (`Liu et al., ICCV 2017
    <https://arxiv.org/abs/1708.06519>`_): :math:`x \odot s`, regulariser
    :math:`\sum_j |s_j|`. Adam does not drive scales to exact zeros, so
    after (and, for model selection, during) training a unit counts as
    closed when :math:`|s_j| < \tau \max_k |s_k|`, and :meth:`values` zeroes it.

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

    def values(self) -> Tensor:
        magnitude = self.scale.detach().abs()
        return self.scale * (magnitude >= self.threshold * magnitude.max()).to(self.scale.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return x * (self.scale if self.training else self.values())

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

    def values(self) -> Tensor:
        return self._stretch(torch.sigmoid(self.log_alpha))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x * self.values()
        u = torch.rand(self.width, device=x.device).clamp(1e-6, 1 - 1e-6)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_alpha) / self.BETA)
        return x * self._stretch(s)

    def regularization(self) -> Tensor:
        return torch.sigmoid(self.log_alpha - self.BETA * math.log(-self.GAMMA / self.ZETA)).sum()


#: Every kind of size gate by name (the ``gate`` setting's choices,
#: :data:`damgraph.config.GATES`): a function of the width, DAM's starting
#: :math:`\beta` and its steepness :math:`\alpha` giving the gate.
GATE_KINDS: Dict[str, Callable[[int, float, float], SizeGate]] = {}


def register_gate(name: str, make: Callable[[int, float, float], SizeGate]) -> None:
    """Add a kind of size gate; ``gate=name`` then builds it wherever a gate goes."""
    if name in GATE_KINDS:
        raise ValueError(f"a gate kind named {name!r} is registered already")
    GATE_KINDS[name] = make
    if name not in config.GATES:
        config.GATES.append(name)


register_gate("dam", lambda width, beta_init, alpha: DAMGate(width, beta_init=beta_init, alpha=alpha))
register_gate("l1", lambda width, beta_init, alpha: L1Scale(width))
register_gate("l0", lambda width, beta_init, alpha: HardConcreteGate(width))


def make_gate(kind: str, width: int, beta_init: float = 1.0, alpha: float = 1.0) -> SizeGate:
    """A gate of :obj:`kind` (one of :data:`GATE_KINDS`) over :obj:`width`
    units; :obj:`beta_init` and :obj:`alpha` are DAM's starting
    :math:`\\beta` and steepness."""
    if kind not in GATE_KINDS:
        raise ValueError(f"unknown gate {kind!r}: choose one of {', '.join(GATE_KINDS)}")
    return GATE_KINDS[kind](width, beta_init, alpha)


def dam_gates(model: nn.Module) -> List[DAMGate]:
    """All :class:`DAMGate` gates inside :obj:`model`, in module order."""
    return [m for m in model.modules() if isinstance(m, DAMGate)]


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
    return gate_penalty(dam_gates(model))


def gate_widths(model: nn.Module) -> Dict[str, int]:
    """Open units per gated layer, keyed by the gate's module name."""
    return {name: m.num_open for name, m in model.named_modules() if isinstance(m, SizeGate)}


def gate_parameters(model: nn.Module) -> List[nn.Parameter]:
    """The parameters of every gate (DAM's betas and the others' scales or
    logits), kept out of weight decay and given their own learning rate."""
    return [p for g in size_gates(model) for p in g.parameters()]
