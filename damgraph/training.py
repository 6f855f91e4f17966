"""The one training loop: steps per epoch on a task's loss plus the gate
penalty, model selection on a validation score, a patience-based stop, and
the record of the run (losses, the gates' width trajectory)."""
from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from damgraph.config import REWIND_EPOCHS, REWIND_GAINS
from damgraph.gates import DAMGate, SizeGate, gate_penalty
from damgraph.runtime import reuse_freed_memory


@dataclass
class TrainingRecord:
    """How a run went: the best validation score (``None`` without
    validation), its epoch, epochs run, seconds, and per epoch the training
    loss (penalty included), the open width of every gate and the
    validation score (empty without validation)."""

    val_score: Optional[float]
    best_epoch: int
    epochs: int
    train_s: float
    width_trajectory: List[Dict[str, int]]
    losses: List[float]
    val_scores: List[float] = field(default_factory=list)
    #: The epoch of each validation score (every epoch unless ``val_every`` > 1).
    val_epochs: List[int] = field(default_factory=list)
    #: Per epoch, the :math:`\beta` of every DAM gate (empty without one).
    beta_trajectory: List[Dict[str, float]] = field(default_factory=list)
    #: With ``settle``: the epoch whose end froze the gates (``None``: they
    #: never settled, or no settling was asked for).
    settled_epoch: Optional[int] = None


@reuse_freed_memory()
def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: Callable[[int], Tensor],
    val_score: Optional[Callable[[], float]],
    lam: float,
    epochs: int,
    patience: int,
    steps_per_epoch: int = 1,
    desc: Optional[str] = None,
    grad_clip: float = 0.0,
    min_epochs: int = 1,
    val_window: int = 1,
    val_tolerance: float = 0.0,
    min_delta: float = 0.0,
    gate_delay: int = 0,
    settle: int = 0,
    rewind: bool = False,
    rewind_epochs: str = "rest",
    rewind_gains: str = "gate",
    val_every: int = 1,
    clip_parts: Optional[Sequence[nn.Module]] = None,
) -> TrainingRecord:
    """Train :obj:`model` for up to :obj:`epochs` epochs of
    :obj:`steps_per_epoch` optimiser steps each on ``loss(step) + lam *
    gate_penalty(model)`` (the DAM penalty for DAM gates), putting each
    gate back into its allowed set after every step (:meth:`SizeGate.project_`:
    a DAM gate keeps its top unit open), scoring ``val_score()`` after each
    epoch. Keeps (loads back) the weights of the
    best validation epoch and stops after :obj:`patience` epochs without
    improvement; with ``val_score=None`` it trains every epoch and keeps the
    last. With :obj:`desc` a tqdm bar shows the epochs; a positive
    :obj:`grad_clip` clips the total gradient norm of the weights (not of the
    gates, whose drift stays steady) before each step, of all the weights
    together or, with :obj:`clip_parts`, of each part's weights on its own
    (OGB's examples clip the node table, the encoder and the predictor
    apart). The record's loss of an epoch is the mean over its steps.
    With :obj:`val_every` > 1 validation is scored every that many epochs
    and at the last (OGB's ``eval_steps``); only those epochs are candidates.

    Selection can be made robust to a small, noisy validation set: only
    epochs from :obj:`min_epochs` on are candidates (the patience counts
    from there), and a candidate is ranked by the mean validation score of
    its last :obj:`val_window` epochs (never one from before the gates
    froze, nor the epoch they froze); the record's ``val_score`` is the
    kept epoch's own score.

    A run whose validation score has not moved for its last
    :data:`STALL_EPOCHS` epochs while its training loss ended at more than
    twice its first epoch's has stopped learning (a step too large at the
    start can leave every hidden ReLU dead, so that every node gets the same
    embedding): it warns (:class:`RuntimeWarning`) and names the fixes.

    With a positive :obj:`val_tolerance` a narrower model is preferred when
    it scores as well: an epoch whose rank is within :obj:`val_tolerance` of
    the best rank so far replaces the kept one if its gates leave fewer units
    open (or as many, with a better rank), and when the best rank rises
    beyond the kept epoch's tolerance the new best is kept: a greedy, online
    form of "the narrowest epoch within the tolerance of the best". The
    patience counts from the last change of the kept epoch. A model without
    gates keeps its best epoch.

    With a positive :obj:`min_delta` a newly kept epoch restarts the
    patience only if its rank beats the rank of the last restart by more
    than :obj:`min_delta`: gains smaller than that (validation noise, or a
    model closing its last few units one by one) still replace the kept
    epoch, but no longer keep the run going (Keras' ``min_delta``).

    Sizing and selection can be kept apart (for gates whose width shows
    when they have settled, :attr:`SizeGate.settles`: DAM's), so that the width is the
    penalty's equilibrium rather than wherever :math:`\beta` was when the
    validation score peaked. The gates are held still for the first
    :obj:`gate_delay` epochs (the weights train at full width first, as in
    DAM's reference code; at most a quarter of :obj:`epochs`). With a positive :obj:`settle`, the gates train
    until the open width has fallen by at most
    :func:`settled_change` over the last :obj:`settle` epochs, or until half
    of :obj:`epochs` have run; then the gates are frozen and only the
    later epochs are candidates for selection (the patience counts from
    there): the kept model is trained at its learned width. With
    :obj:`rewind` the weights go back to their start when the gates freeze
    (the optimiser's moments forgotten), so the learned width is trained
    afresh, as a fixed model of that width would be: for the run's
    remaining epochs (:obj:`rewind_epochs` ``"rest"``), or for all of
    :obj:`epochs` again (``"all"``: a fixed model's budget, the sizing
    epochs added on top); with :obj:`rewind_gains` ``"one"`` the open units
    then pass at gain 1 (:meth:`~damgraph.gates.SizeGate.harden_`), so the
    rewound model is a fixed model of the learned width.

    Large freed tensors are kept for reuse while it trains
    (:func:`~damgraph.runtime.reuse_freed_memory`)."""
    for name, value, choices in (("rewind_epochs", rewind_epochs, REWIND_EPOCHS),
                                 ("rewind_gains", rewind_gains, REWIND_GAINS)):
        if value not in choices:
            raise ValueError(f"{name} must be {' or '.join(map(repr, choices))}, got {value!r}")
    if min(epochs, patience, steps_per_epoch, min_epochs, val_window, val_every) < 1:
        raise ValueError(f"epochs, patience, steps_per_epoch, min_epochs, val_window and val_every must be >= 1, "
                         f"got {epochs}, {patience}, {steps_per_epoch}, {min_epochs}, {val_window} and {val_every}")
    if not val_tolerance >= 0:
        raise ValueError(f"val_tolerance must be >= 0, got {val_tolerance}")
    if not min_delta >= 0:
        raise ValueError(f"min_delta must be >= 0, got {min_delta}")
    min_epochs = min(min_epochs, epochs)
    gates = {name: m for name, m in model.named_modules() if isinstance(m, SizeGate)}
    gate_list = list(gates.values())
    gate_ids = {id(p) for gate in gate_list for p in gate.parameters()}
    weights = [p for p in model.parameters() if id(p) not in gate_ids]
    clipped = [[p for p in part.parameters() if id(p) not in gate_ids] for part in clip_parts] \
        if clip_parts is not None else [weights]
    # the optimiser's groups that hold gate parameters, with their learning rates: 0 while the gates are held
    gate_groups = [(g, g["lr"]) for g in optimizer.param_groups if any(id(p) in gate_ids for p in g["params"])]
    betas = {name: gate for name, gate in gates.items() if isinstance(gate, DAMGate)}
    settled_epoch: Optional[int] = None
    if not gate_list or not all(gate.settles for gate in gate_list):  # no schedule for gates without one
        gate_delay, settle, rewind = 0, 0, False
    sizing = settle > 0  # while True and no settled_epoch yet: the gates size the model, nothing is selected
    gate_delay = min(gate_delay, epochs // 4)  # a short run still sizes and selects
    sizing_cap = max(epochs // 2, gate_delay + 1)
    start_state = snapshot(model) if rewind else None  # the weights a rewound run trains again from
    best_score, best_epoch, best_state = -float("inf"), 0, None
    best_rank = -float("inf")  # the best rank so far
    beta_trajectory: List[Dict[str, float]] = []
    kept_rank, kept_width = -float("inf"), 0  # the kept epoch's rank and open units
    restart_epoch, restart_rank = 0, -float("inf")  # the patience counts from this kept epoch
    scores: List[float] = []
    scored_epochs: List[int] = []
    window_from = 0  # the first score a val_window may average: none from before the gates froze
    trajectory: List[Dict[str, int]] = []
    losses: List[float] = []
    last = epochs  # the last epoch the run may reach (moved on by a rewind with rewind_epochs "all")
    epoch_range = range(1, epochs + (sizing_cap if rewind and rewind_epochs == "all" else 0) + 1)
    if desc is not None:
        from tqdm.auto import tqdm

        epoch_range = tqdm(epoch_range, desc=desc, leave=False)
    start = time.perf_counter()
    epoch = 0
    for epoch in epoch_range:
        if epoch > last:
            break
        model.train()
        total = 0.0
        held = epoch <= gate_delay or settled_epoch is not None
        for group, group_lr in gate_groups:
            group["lr"] = 0.0 if held else group_lr
        for step in range(steps_per_epoch):
            optimizer.zero_grad()
            value = loss(step)
            if gate_list:
                value = value + lam * gate_penalty(gate_list)
            if not torch.isfinite(value):
                raise FloatingPointError(f"the training loss became {value.item()} at epoch {epoch}; "
                                         "lower the learning rate or lam, or scale the features")
            value.backward()
            if grad_clip > 0:
                for part in clipped:
                    nn.utils.clip_grad_norm_(part, grad_clip)
            optimizer.step()
            for gate in gate_list:
                gate.project_()
            total += value.item()

        trajectory.append({name: gate.num_open for name, gate in gates.items()})
        beta_trajectory.append({name: round(gate.beta.item(), 4) for name, gate in betas.items()})
        losses.append(total / steps_per_epoch)
        if sizing and settled_epoch is None and epoch > gate_delay and (
                epoch >= sizing_cap or (epoch - gate_delay >= settle and _width_settled(trajectory, settle))):
            settled_epoch = epoch  # the gates are held from the next epoch on
            if start_state is not None:
                _rewind(model, optimizer, start_state, gates, hard=rewind_gains == "one")
                last = epoch + epochs if rewind_epochs == "all" else last
            min_epochs = max(min_epochs, min(epoch + 1, last))  # the last epoch stays a candidate
            window_from = len(scores)
        if desc is not None:
            epoch_range.set_postfix(loss=f"{losses[-1]:.4f}", width="/".join(map(str, trajectory[-1].values())))
        if val_score is None:  # no selection: the last epoch is kept
            continue
        if epoch % val_every and epoch < last:  # not an epoch that is scored
            continue
        if sizing and settled_epoch is None:  # still sizing: no selection yet
            scores.append(val_score())
            scored_epochs.append(epoch)
            continue
        score = val_score()
        scores.append(score)
        scored_epochs.append(epoch)
        if epoch == settled_epoch:  # the frozen (or rewound) model's first score is no candidate's either
            window_from = len(scores)
        if epoch < min_epochs:
            continue
        window = scores[max(len(scores) - val_window, window_from):]
        rank = sum(window) / len(window)
        width = sum(trajectory[-1].values())
        best_rank = max(best_rank, rank)
        if val_tolerance > 0:  # the new best once the kept epoch falls out of the tolerance, or a narrower one in it
            keep = kept_rank < best_rank - val_tolerance or (
                rank >= best_rank - val_tolerance and (width, -rank) < (kept_width, -kept_rank))
        else:
            keep = rank > kept_rank
        if keep:
            kept_rank, kept_width, best_score, best_epoch = rank, width, score, epoch
            best_state = snapshot(model)
            if min_delta == 0 or rank > restart_rank + min_delta:
                restart_epoch, restart_rank = epoch, rank
        if epoch - max(restart_epoch, min_epochs) >= patience:
            break
    train_s = time.perf_counter() - start
    for group, group_lr in gate_groups:
        group["lr"] = group_lr
    extra = dict(beta_trajectory=beta_trajectory, settled_epoch=settled_epoch, val_epochs=scored_epochs)
    if val_score is None:
        return TrainingRecord(None, epoch, epoch, train_s, trajectory, losses, scores, **extra)
    if best_state is None:
        raise FloatingPointError(f"the validation score was never a number ({best_score}) in {epoch} epochs; "
                                 "check the validation split, or lower the learning rate or lam")
    model.load_state_dict(best_state)
    warn_if_stalled(losses, scores, best_epoch)
    return TrainingRecord(best_score, best_epoch, epoch, train_s, trajectory, losses, scores, **extra)


def _rewind(model: nn.Module, optimizer: torch.optim.Optimizer, start: Dict[str, object],
            gates: Dict[str, SizeGate], hard: bool = False) -> None:
    """Put every weight back to :obj:`start` and forget the optimiser's
    moments, keeping the gates as they are (:obj:`hard`: their open units
    at gain 1): the rest of the run trains the learned width afresh (Liu et
    al., ICLR 2019, "Rethinking the value of network pruning")."""
    current = model.state_dict()
    kept = {k for k in current if any(k == n or k.startswith(n + ".") for n in gates)}
    model.load_state_dict({k: current[k] if k in kept else v for k, v in start.items()})
    optimizer.state.clear()
    if hard:
        for gate in gates.values():
            gate.harden_()


#: The share of the width a settled gate may still lose over the settling window.
SETTLED_SHARE = 0.1


def settled_change(width: int) -> int:
    """How many units the open width may fall by over the settling window
    and still count as settled: :data:`SETTLED_SHARE` of it, at least 1."""
    return max(1, int(SETTLED_SHARE * width))


def _width_settled(trajectory: List[Dict[str, int]], window: int) -> bool:
    """Whether the total open width fell by at most :func:`settled_change`
    over the last :obj:`window` epochs (and never rose by more)."""
    totals = [sum(widths.values()) for widths in trajectory[-window - 1:]]
    allowed = settled_change(totals[-1])
    return max(totals) - totals[-1] <= allowed and totals[-1] - min(totals) <= allowed


def snapshot(model: nn.Module) -> Dict[str, object]:
    """A copy of :obj:`model`'s state (tensors cloned: a deepcopy of the
    state dict costs several times more, at every improving epoch)."""
    return {k: v.detach().clone() if isinstance(v, Tensor) else copy.deepcopy(v)
            for k, v in model.state_dict().items()}


@dataclass
class RunResult:
    """What every training run produces: its settings, its record, the open
    width of each gate, the parameter count before and after
    :func:`~damgraph.compact`, and the selected model. A task's result adds
    its scores (:meth:`scores`); :meth:`row` flattens it for a results table."""

    config: Any
    record: TrainingRecord
    widths: Dict[str, int]
    num_params: int
    num_params_compact: Optional[int]
    model: nn.Module = field(repr=False)

    @property
    def width(self) -> int:
        raise NotImplementedError

    def scores(self) -> Dict[str, object]:
        raise NotImplementedError

    def row(self) -> Dict[str, object]:
        record = self.record
        return {**asdict(self.config), "width": self.width, **self.scores(),
                "best_epoch": record.best_epoch, "epochs": record.epochs, "train_s": round(record.train_s, 3),
                "num_params": self.num_params, "num_params_compact": self.num_params_compact,
                "gate_widths": " ".join(f"{k}={v}" for k, v in self.widths.items()),
                "width_trajectory": format_trajectory(record.width_trajectory),
                "beta_trajectory": format_trajectory(record.beta_trajectory),
                "settled_epoch": record.settled_epoch,
                "val_trajectory": " ".join(f"{e}:{v:.4f}" for e, v in zip(record.val_epochs, record.val_scores))}


def format_trajectory(trajectory: List[Dict[str, Any]]) -> str:
    """Per-epoch widths (or betas) as text for a CSV cell: epochs separated
    by spaces, gates within an epoch by ``/`` (empty for a model without gates)."""
    return " ".join("/".join(str(w) for w in widths.values()) for widths in trajectory if widths)


#: How many final epochs of an unchanged validation score (with a training
#: loss at more than twice its first epoch's) make :func:`fit` warn that a
#: run stalled.
STALL_EPOCHS = 10


def warn_if_stalled(losses: List[float], scores: List[float], kept_epoch: int) -> None:
    """Warn when a run stopped learning: its last :data:`STALL_EPOCHS`
    validation scores are one and the same value and its last training loss
    is more than twice its first (diverged first steps, then dead units)."""
    flat = 0
    while flat < len(scores) and scores[-1 - flat] == scores[-1]:
        flat += 1
    if flat < STALL_EPOCHS or not losses[-1] > 2 * abs(losses[0]):
        return
    warnings.warn(f"training stalled: the validation score stayed at {scores[-1]:.4g} for the last {flat} epochs "
                  f"while the training loss rose from {losses[0]:.4g} to {losses[-1]:.4g}, so the kept epoch is "
                  f"{kept_epoch}; clip the gradients (grad_clip=1.0), lower the learning rate or scale the features",
                  RuntimeWarning, stacklevel=2)
