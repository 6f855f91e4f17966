"""Data-parallel link prediction past one machine, with
:class:`torch.nn.parallel.DistributedDataParallel`. Launch with ``torchrun``::

    torchrun --standalone --nproc_per_node 2 -m damgraph.distributed --dataset cora --out ddp.json
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 2 --rdzv_backend c10d \\
        --rdzv_endpoint HOST:29500 -m damgraph.distributed --dataset cora --out ddp.json

Every rank holds the graph and the model (the model is small; the edges
are what is many). In ``full`` mode each rank computes the reconstruction
loss on its own shard of the training edges (every ``world_size``-th edge)
with its own negatives; in ``precomputed`` mode it takes every
``world_size``-th mini-batch. DDP averages the gradients, so one step is a
step on the whole edge set. Backend: gloo on CPU, nccl on GPU. Rank 0
writes the result JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from typing import Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from damgraph.datasets import DATA_ENV, load_graph
from damgraph.io import atomic_write_text, versions
from damgraph.linkpred import (LinkPredConfig, LinkPredTraining, link_metrics, resolve_device, split_edges)
from damgraph.training import deterministic, fit


class ShardLoss(nn.Module):
    """This rank's reconstruction loss: its shard of the training positives
    against as many fresh negatives (plus VGAE's KL). Wrapped in DDP, its
    backward all-reduces the gradients of the whole autoencoder."""

    def __init__(self, training: LinkPredTraining, rank: int, world_size: int):
        super().__init__()
        self.model = training.model
        self.training_run = training
        self.pos = training.split[0].pos_edge_label_index[:, rank::world_size]

    def forward(self) -> Tensor:
        run = self.training_run
        z = self.model.encode(*run.train_inputs)
        loss = self.model.recon_loss(z, self.pos, run.negatives(self.pos.size(1)))
        if run.config.model == "vgae":
            loss = loss + self.model.kl_loss() / run.split[0].num_nodes
        return loss


def rank0_value(value: float, device: torch.device) -> float:
    """Rank 0's :obj:`value` on every rank, so that every rank takes the
    same model-selection and stopping decisions (DDP would hang otherwise)."""
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


@deterministic()
def train_distributed(split, config: LinkPredConfig, mode: str = "full", batch_size: int = 65536) -> dict:
    """Train on this rank's share under an initialised process group and
    return the test scores (the same on every rank)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    device = resolve_device(config.device)
    ddp_args = {"device_ids": [device.index]} if device.type == "cuda" else {}
    if mode == "precomputed":
        from damgraph.precomputed import train_link_prediction_precomputed

        result = train_link_prediction_precomputed(
            split, config, batch_size=batch_size, rank=rank, world_size=world,
            wrap=lambda m: DistributedDataParallel(m, **ddp_args),
            sync_score=lambda s: rank0_value(s, device))
        return {"test_auc": result.test_auc, "val_auc": result.val_auc, "active_dim": result.active_dim,
                "best_epoch": result.record.best_epoch, "epochs": result.record.epochs,
                "train_s": result.record.train_s}
    training = LinkPredTraining(split, config)
    torch.manual_seed(config.seed * 1000 + rank)  # the model is built; now each rank its own negatives
    loss = DistributedDataParallel(ShardLoss(training, rank, world), **ddp_args)
    record = fit(training.model, training.optimizer, loss, lambda: rank0_value(training.val_score(), device),
                 config.lam, config.epochs, config.patience)
    scores = link_metrics(training.model, training.split[2])
    gate = training.model.encoder.out_mask
    return {"test_auc": scores["auc"], "test_ap": scores["ap"],
            **{f"test_{k}": v for k, v in scores.items() if k not in ("auc", "ap")},
            "val_auc": record.val_score, "active_dim": getattr(gate, "num_active", config.dim),
            "best_epoch": record.best_epoch, "epochs": record.epochs, "train_s": record.train_s}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    defaults = LinkPredConfig()
    p = argparse.ArgumentParser(
        prog="torchrun ... -m damgraph.distributed",
        description="Data-parallel (DDP) DAM-GAE link prediction; launch with torchrun.")
    p.add_argument("--dataset", default="cora", help="cora, citeseer, pubmed or synthetic-<nodes>")
    p.add_argument("--data-root", default=None, help=f"data root (default: ${DATA_ENV}, else data/)")
    p.add_argument("--mode", choices=["full", "precomputed"], default="full")
    p.add_argument("--model", choices=["gae", "vgae"], default=defaults.model)
    p.add_argument("--dim", type=int, default=defaults.dim)
    p.add_argument("--lam", type=float, default=defaults.lam)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--patience", type=int, default=defaults.patience)
    p.add_argument("--batch-size", type=int, default=65536, help="edges per mini-batch, precomputed mode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda (each rank takes cuda:LOCAL_RANK)")
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
        data = load_graph(args.dataset, args.data_root)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        config = LinkPredConfig(model=args.model, dim=args.dim, lam=args.lam, lr=args.lr, epochs=args.epochs,
                                patience=args.patience, seed=args.seed, device=device)
        if args.mode == "precomputed":
            config = replace(config, beta_lr=config.lr)
        split = split_edges(data, args.seed)
        start = time.perf_counter()
        result = train_distributed(split, config, args.mode, args.batch_size)
        if dist.get_rank() == 0:
            atomic_write_text(args.out, json.dumps({
                **result, "wall_s": time.perf_counter() - start, "world_size": dist.get_world_size(),
                "mode": args.mode, "dataset": args.dataset, "config": asdict(config), "versions": versions(),
                "threads_per_rank": torch.get_num_threads()}, indent=2) + "\n")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
