"""Training speed of the ``sage-mlp`` / ``gcn-mlp`` presets against OGB's own
example: ``python -m benchmarks.ogb_speed``.

The reference is written as OGB's ``examples/linkproppred/ddi/gnn.py``
trains (Hu et al., NeurIPS 2020): a node table (``nn.Embedding``), PyG's
``SAGEConv`` or ``GCNConv(cached=True)`` layers on the sparse adjacency PyG's
``ToSparseTensor`` gives (a torch CSR tensor here, where ``torch-sparse``
is not installed), ReLU and dropout between layers, the ``LinkPredictor``
MLP on :math:`h_i \\odot h_j` with ReLU and dropout, ``-log(p + 1e-15)``
losses, PyG's ``negative_sampling(method="dense")`` at every step, every
gradient norm clipped to 1 on its own and one Adam step.
``damgraph`` is :class:`~damgraph.linkpred.LinkPredTask` with the preset,
timed through :func:`damgraph.training.fit` (fixed width, and with
``--dam`` DAM-gated from the full width). Both take full mini-batches of
the preset's size from the same training edges (the reference walks a twin
task's shuffle; damgraph's ``fit`` shuffles afresh at every call and takes
the first batches), each draws its own negatives.

In one process, after one warm-up step each, blocks of :obj:`--block`
steps alternate between the implementations (the order rotating);
``s_per_step`` is the median over blocks of a block's mean step, and
``s_per_epoch`` that times the steps of an epoch of the preset's batch size
(validation, every 5 epochs in OGB's protocol, not included). ``ratio`` is
damgraph's time over the reference's at the same layer kind and width.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv, SAGEConv
from torch_geometric.utils import negative_sampling

from benchmarks.store import environment, prepare_out, write_csv, write_json
from benchmarks.tables import write_report
from damgraph.config import LinkPredConfig, model_config
from damgraph.datasets import DATASET_NAMES, load_dataset
from damgraph.linkpred import LinkPredTask
from damgraph.models import count_parameters
from damgraph.splits import link_split
from damgraph.training import fit


class ReferenceEncoder(nn.Module):
    """OGB's ``SAGE`` / ``GCN`` of ``gnn.py``: layers, then ReLU and dropout between them."""

    def __init__(self, conv: str, width: int, num_layers: int, dropout: float):
        super().__init__()
        make = (lambda: SAGEConv(width, width)) if conv == "sage" else (lambda: GCNConv(width, width, cached=True))
        self.convs = nn.ModuleList(make() for _ in range(num_layers))
        self.dropout = dropout

    def forward(self, x: Tensor, adj_t: Tensor) -> Tensor:
        for conv in self.convs[:-1]:
            x = F.dropout(F.relu(conv(x, adj_t)), p=self.dropout, training=self.training)
        return self.convs[-1](x, adj_t)


class ReferencePredictor(nn.Module):
    """OGB's ``LinkPredictor``: an MLP on :math:`h_i \\odot h_j`, ReLU and dropout after each hidden layer."""

    def __init__(self, width: int, num_layers: int, dropout: float):
        super().__init__()
        self.lins = nn.ModuleList([nn.Linear(width, width) for _ in range(num_layers - 1)] + [nn.Linear(width, 1)])
        self.dropout = dropout

    def forward(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        x = x_i * x_j
        for lin in self.lins[:-1]:
            x = F.dropout(F.relu(lin(x)), p=self.dropout, training=self.training)
        return torch.sigmoid(self.lins[-1](x))


class ReferenceRun:
    """One training run of OGB's example, a step at a time."""

    def __init__(self, data: Data, config: LinkPredConfig):
        from torch_geometric.transforms import ToSparseTensor

        torch.manual_seed(config.seed)
        self.edge_index, self.num_nodes = data.edge_index, data.num_nodes
        self.adj_t = ToSparseTensor(layout=torch.sparse_csr)(Data(edge_index=data.edge_index,
                                                                  num_nodes=data.num_nodes)).adj_t
        width = config.dim
        self.emb = nn.Embedding(data.num_nodes, width)
        nn.init.xavier_uniform_(self.emb.weight)
        self.model = ReferenceEncoder(config.conv, width, config.num_layers, config.dropout)
        self.predictor = ReferencePredictor(width, config.num_layers, config.decoder_dropout)
        self.optimizer = torch.optim.Adam([*self.model.parameters(), *self.emb.parameters(),
                                           *self.predictor.parameters()], lr=config.lr)

    def num_params(self) -> int:
        return sum(count_parameters(m) for m in (self.emb, self.model, self.predictor))

    def step(self, edge: Tensor) -> float:
        self.model.train()
        self.predictor.train()
        self.optimizer.zero_grad()
        h = self.model(self.emb.weight, self.adj_t)
        pos_loss = -torch.log(self.predictor(h[edge[0]], h[edge[1]]) + 1e-15).mean()
        neg = negative_sampling(self.edge_index, num_nodes=self.num_nodes, num_neg_samples=edge.size(1),
                                method="dense")
        neg_loss = -torch.log(1 - self.predictor(h[neg[0]], h[neg[1]]) + 1e-15).mean()
        loss = pos_loss + neg_loss
        loss.backward()
        for part in (self.emb.parameters(), self.model.parameters(), self.predictor.parameters()):
            nn.utils.clip_grad_norm_(part, 1.0)
        self.optimizer.step()
        return loss.item()


def runners(data: Data, config: LinkPredConfig, dam: bool) -> Dict[str, Callable[[int], None]]:
    """``impl -> run(steps)``, each on full batches of the preset's size: the
    reference walks a twin task's shuffle (same seed), damgraph's tasks take
    the first batches of a fresh shuffle at every call."""
    split = link_split(data, 0)
    twin = LinkPredTask(split, config)
    reference = ReferenceRun(data, config)
    tasks = {"damgraph": LinkPredTask(split, config)}
    if dam:
        tasks["damgraph-dam"] = LinkPredTask(split, model_config(config.model, dim=config.dim, seed=config.seed))
    batch = {"step": 0}

    def run_reference(steps: int) -> None:
        for _ in range(steps):
            reference.step(twin._batch(batch["step"] % twin.steps_per_epoch))
            batch["step"] += 1

    def run_task(task: LinkPredTask) -> Callable[[int], None]:
        c = task.config
        return lambda steps: fit(task.module, task.optimizer, task.loss, None, c.lam, 1, 1, steps_per_epoch=steps,
                                 grad_clip=c.grad_clip, clip_parts=task.parts() if c.clip_per_part else None)

    out = {"ogb-reference": run_reference, **{impl: run_task(task) for impl, task in tasks.items()}}
    out["ogb-reference"].num_params = reference.num_params()  # type: ignore[attr-defined]
    for impl, task in tasks.items():
        out[impl].num_params = count_parameters(task.module)  # type: ignore[attr-defined]
    for run in out.values():
        run.steps_per_epoch = twin.steps_per_epoch  # type: ignore[attr-defined]
    return out


def time_steps(runs: Dict[str, Callable[[int], None]], repeats: int, block: int) -> Dict[str, float]:
    """Median over :obj:`repeats` blocks of the mean seconds per step, per implementation."""
    for run in runs.values():  # warm-up: caches, the cached GCN normalisation, allocator
        run(1)
    times: Dict[str, List[float]] = {impl: [] for impl in runs}
    names = list(runs)
    for r in range(repeats):
        for impl in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            runs[impl](block)
            times[impl].append((time.perf_counter() - start) / block)
    return {impl: statistics.median(t) for impl, t in times.items()}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ogb_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ogbl-ddi", choices=DATASET_NAMES, help="a graph (default: ogbl-ddi); "
                   "its features are left out, as the node table replaces them")
    p.add_argument("--data-root", default=None, help="data root (default: $DAMGRAPH_DATA, else data/)")
    p.add_argument("--convs", nargs="+", default=["sage", "gcn"], choices=["sage", "gcn"],
                   help="layer kinds: the sage-mlp and gcn-mlp presets (default: sage gcn)")
    p.add_argument("--widths", nargs="+", type=int, default=[64, 256], help="widths (default: 64 256)")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks per implementation (default: 3)")
    p.add_argument("--block", type=int, default=2, help="steps per block (default: 2)")
    p.add_argument("--dam", action="store_true", help="also time the DAM-gated preset (all units open at first)")
    p.add_argument("--out", default="results/ogb-speed", help="output folder (default: results/ogb-speed)")
    args = p.parse_args(argv)
    if min(args.repeats, args.block, *args.widths) < 1:
        p.error("--repeats, --block and --widths must be >= 1")
    return args


def markdown(rows: Sequence[dict]) -> str:
    lines = ["| layers | width | implementation | parameters | s per step | s per epoch | ratio |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['conv']} | {r['width']} | {r['impl']} | {r['num_params']:,} | {r['s_per_step']:.3f} | "
              f"{r['s_per_epoch']:.1f} | {r['ratio']:.2f} |" for r in rows]
    return "\n".join(lines)


def plot(rows: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.tables import save_figure

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"{r['conv']} {r['width']}\n{r['impl']}" for r in rows]
    ax.barh(range(len(rows)), [r["s_per_epoch"] for r in rows], color="tab:blue")
    ax.set_yticks(range(len(rows)), labels, fontsize=6)
    ax.set_xlabel("seconds per epoch (one thread)")
    ax.invert_yaxis()
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    try:
        prepare_out(out)
        data = load_dataset(args.dataset, root=args.data_root)[0]
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    data = data.clone()
    data.x = None  # the node table replaces features
    write_json(out / "ogb_speed.json", {
        "command": "python -m benchmarks.ogb_speed " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args), "environment": environment()})
    rows: List[dict] = []
    for conv in args.convs:
        for width in args.widths:
            config = model_config(f"{conv}-mlp", dim=width, gate=None)
            runs = runners(data, config, args.dam)
            timing = time_steps(runs, args.repeats, args.block)
            for impl, seconds in timing.items():
                steps = runs[impl].steps_per_epoch
                rows.append({"dataset": args.dataset, "conv": conv, "width": width, "impl": impl,
                             "num_params": runs[impl].num_params, "s_per_step": seconds,
                             "s_per_epoch": seconds * steps, "steps_per_epoch": steps,
                             "ratio": seconds / timing["ogb-reference"], "threads": torch.get_num_threads()})
                print(f"{conv} {width:>4} {impl:>14}: {seconds:.3f} s/step, ratio {rows[-1]['ratio']:.2f}", flush=True)
            write_csv(out / "ogb_speed.csv", rows)
    write_report(out, "ogb_speed", markdown(rows), lambda path: plot(rows, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
