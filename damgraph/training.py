"""The shared full-batch training loop: one step per epoch, model selection on
a validation score, patience-based stop, the DAM width trajectory."""
from __future__ import annotations

import contextlib
import copy
import random
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from torch import Tensor, nn

from damgraph.mask import SizeGate, gate_penalty


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Run the block with torch's deterministic algorithms (warn-only where a
    kernel has none), then restore the caller's setting. Without it, the
    parallel sums in message passing differ in the last bits from run to run
    on 2 threads, and rankings with near-ties (MRR) can change."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainingRecord:
    """How a run went: the best validation score (``None`` without
    validation), its epoch, epochs run, seconds, and per epoch the training
    loss (penalty included) and the open width of every gate."""

    val_score: Optional[float]
    best_epoch: int
    epochs: int
    train_s: float
    width_trajectory: List[Dict[str, int]]
    losses: List[float]


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    task_loss: Callable[[], Tensor],
    val_score: Optional[Callable[[], float]],
    lam: float,
    epochs: int,
    patience: int,
    desc: Optional[str] = None,
    grad_clip: float = 0.0,
) -> TrainingRecord:
    """Train :obj:`model` for up to :obj:`epochs` steps of
    ``task_loss() + lam * gate_penalty(model)`` (the DAM penalty for DAM gates), scoring ``val_score()`` after
    each step. Keeps (loads back) the weights of the best validation epoch and
    stops after :obj:`patience` epochs without improvement; with
    ``val_score=None`` it trains every epoch and keeps the last. With
    :obj:`desc` a tqdm bar shows the epochs; a positive :obj:`grad_clip`
    clips the total gradient norm of the weights (not of the gates, whose
    drift stays steady) before each step."""
    if epochs < 1 or patience < 1:
        raise ValueError(f"epochs and patience must be >= 1, got {epochs} and {patience}")
    gates = {name: m for name, m in model.named_modules() if isinstance(m, SizeGate)}
    gate_list = list(gates.values())
    gate_ids = {id(p) for gate in gate_list for p in gate.parameters()}
    weights = [p for p in model.parameters() if id(p) not in gate_ids]
    best_score, best_epoch, best_state = -float("inf"), 0, None
    trajectory: List[Dict[str, int]] = []
    losses: List[float] = []
    steps = range(1, epochs + 1)
    if desc is not None:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=desc, leave=False)
    start = time.perf_counter()
    epoch = 0
    for epoch in steps:
        model.train()
        optimizer.zero_grad()
        loss = task_loss()
        if gate_list:
            loss = loss + lam * gate_penalty(gate_list)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss.item()} at epoch {epoch}; "
                                     "lower the learning rate or lam, or scale the features")
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(weights, grad_clip)
        optimizer.step()

        trajectory.append({name: gate.num_active for name, gate in gates.items()})
        losses.append(loss.item())
        if desc is not None:
            steps.set_postfix(loss=f"{losses[-1]:.4f}", width="/".join(map(str, trajectory[-1].values())))
        if val_score is None:  # no selection: the last epoch is kept
            continue
        score = val_score()
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_state = snapshot(model)
        elif epoch - best_epoch >= patience:
            break
    train_s = time.perf_counter() - start
    if val_score is None:
        return TrainingRecord(None, epoch, epoch, train_s, trajectory, losses)
    model.load_state_dict(best_state)
    return TrainingRecord(best_score, best_epoch, epoch, train_s, trajectory, losses)


def snapshot(model: nn.Module) -> Dict[str, object]:
    """A copy of :obj:`model`'s state (tensors cloned: a deepcopy of the
    state dict costs several times more, at every improving epoch)."""
    return {k: v.detach().clone() if isinstance(v, Tensor) else copy.deepcopy(v)
            for k, v in model.state_dict().items()}


def run_columns(record: TrainingRecord, widths: Dict[str, int], num_params: int,
                num_params_compact: Optional[int]) -> Dict[str, object]:
    """The result-table columns every training run shares."""
    return {"best_epoch": record.best_epoch, "epochs": record.epochs, "train_s": round(record.train_s, 3),
            "num_params": num_params, "num_params_compact": num_params_compact,
            "gate_widths": " ".join(f"{k}={v}" for k, v in widths.items()),
            "width_trajectory": format_trajectory(record.width_trajectory)}


def format_trajectory(trajectory: List[Dict[str, int]]) -> str:
    """Per-epoch widths as text for a CSV cell: epochs separated by spaces,
    gates within an epoch by ``/`` (empty for a model without gates)."""
    return " ".join("/".join(str(w) for w in widths.values()) for widths in trajectory if widths)
