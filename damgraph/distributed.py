"""Data-parallel link prediction past one machine, with
:class:`torch.nn.parallel.DistributedDataParallel`. Launch with ``torchrun``::

    torchrun --standalone --nproc_per_node 2 -m damgraph.distributed --dataset cora --out ddp.json
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 2 --rdzv_backend c10d \\
        --rdzv_endpoint HOST:29500 -m damgraph.distributed --dataset cora --out ddp.json

Every rank holds the graph and the model (the model is small; the edges
are what is many) and trains the one :class:`~damgraph.linkpred.LinkPredTask`
on its share: in ``full`` mode the reconstruction loss of every
``world_size``-th training edge (for MaskGAE, of the edges rank 0's mask
hides, broadcast to every rank) with its own negatives; in ``precomputed``
mode every ``world_size``-th mini-batch. DDP averages the gradients, so one
step is a step on the whole edge set, and one process trains exactly as
:func:`~damgraph.linkpred.train_link_prediction`. Every model and setting of
the full-batch path is supported in ``full`` mode. Backend: gloo on CPU,
nccl on GPU. Rank 0 writes the result JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from typing import Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from damgraph.config import LinkPredConfig, add_config_arguments, model_config
from damgraph.settings import settings_from_args
from damgraph.datasets import DATA_ENV, DATASET_NAMES, load_graph
from damgraph.io import atomic_write_text, check_outputs, versions
from damgraph.linkpred import LinkPredTask
from damgraph.runtime import deterministic, resolve_device
from damgraph.splits import split_edges


class RankLoss(nn.Module):
    """:meth:`LinkPredTask.loss` as a module, so that
    :class:`~torch.nn.parallel.DistributedDataParallel` can wrap it: its
    backward all-reduces the gradients of the whole autoencoder (the task
    computes this rank's share of the positives)."""

    def __init__(self, task: LinkPredTask):
        super().__init__()
        self.trained = task.module  # registered, so DDP finds its parameters
        self.task = task

    def forward(self, step: int) -> Tensor:
        return self.task.loss(step)


def rank0_value(value: float, device: torch.device) -> float:
    """Rank 0's :obj:`value` on every rank, so that every rank takes the
    same model-selection and stopping decisions (DDP would hang otherwise)."""
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def broadcast_mask(hidden: Tensor) -> None:
    """Rank 0's MaskGAE mask (a boolean per edge) on every rank, in place, so
    that every rank encodes the same visible graph."""
    t = hidden.to(torch.uint8)
    dist.broadcast(t, src=0)
    hidden.copy_(t.bool())


@deterministic()
def train_distributed(split, config: LinkPredConfig) -> dict:
    """Train :class:`LinkPredTask` on this rank's share under an initialised
    process group and return the test scores (the same on every rank). One
    process (``world_size`` 1) trains exactly as
    :func:`~damgraph.linkpred.train_link_prediction`."""
    rank, world = dist.get_rank(), dist.get_world_size()
    device = resolve_device(config.device)
    task = LinkPredTask(split, config, rank=rank, world_size=world, sync_mask=broadcast_mask)
    ddp = DistributedDataParallel(RankLoss(task), **({"device_ids": [device.index]} if device.type == "cuda" else {}))
    record = task.fit(loss=ddp, validation_score=lambda: rank0_value(task.validation_score(), device))
    scores = task.test_metrics()
    gate = task.model.encoder.out_gate
    return {"test_auc": scores.pop("auc"), "test_ap": scores.pop("ap"), **{f"test_{k}": v for k, v in scores.items()},
            "val_auc": record.val_score, "width": getattr(gate, "num_open", config.dim),
            "best_epoch": record.best_epoch, "epochs": record.epochs, "train_s": record.train_s}


#: The settings ``damgraph.distributed`` takes as flags.
FLAGS = ("mode", "dim", "lam", "lr", "beta_lr", "gate_alpha", "gate_delay", "settle", "rewind", "epochs", "patience", "batch_size",
         "hops", "seed", "matryoshka")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="torchrun ... -m damgraph.distributed",
        description="Data-parallel (DDP) DAM-GAE link prediction; launch with torchrun.")
    p.add_argument("--dataset", default="cora", help=f"{', '.join(DATASET_NAMES)} or synthetic-<nodes>")
    p.add_argument("--data-root", default=None, help=f"data root (default: ${DATA_ENV}, else data/)")
    add_config_arguments(p, ("model",), defaults={"model": "gae"})
    add_config_arguments(p, FLAGS)
    add_config_arguments(p, ("device",), defaults={"device": "cpu"},
                         device="cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    p.add_argument("--out", required=True, help="result JSON, written by rank 0")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if "RANK" not in os.environ:
        print("error: run this under torchrun, e.g. torchrun --standalone --nproc_per_node 2 "
              "-m damgraph.distributed --dataset cora --out ddp.json", file=sys.stderr)
        return 2
    device = args.device
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    try:
        dev = resolve_device(device)
        config = model_config(args.model, device=device, **settings_from_args(args, FLAGS))
        check_outputs({"--out": args.out})  # before any training
        data = load_graph(args.dataset, args.data_root)
    except (OSError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        split = split_edges(data, config.seed)
        start = time.perf_counter()
        result = train_distributed(split, config)
        if dist.get_rank() == 0:
            atomic_write_text(args.out, json.dumps({
                **result, "wall_s": time.perf_counter() - start, "world_size": dist.get_world_size(),
                "dataset": args.dataset, "config": asdict(config), "versions": versions(),
                "threads_per_rank": torch.get_num_threads()}, indent=2) + "\n")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
