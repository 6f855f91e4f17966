"""Training speed against plain PyG: ``python -m benchmarks.speed``.

The reference is written the way PyG's own autoencoder example
(``examples/autoencoder.py``) does it: a two-layer ``GCNConv`` encoder
(in -> 32 -> 16), ``GAE``, Adam at 0.01, ``recon_loss`` with PyG's negative
sampling every step, and ``GAE.test`` (scikit-learn AUC and AP) after every
step. One epoch is one training step plus the per-epoch validation scoring,
for every implementation:

* ``pyg-reference``: the above, scored on the validation split;
* ``damgraph``: :class:`damgraph.linkpred.LinkPredTask` with a DAM gate
  on the embedding (16 dimensions unless ``--dim``), timed through :func:`damgraph.training.fit`;
* ``damgraph-nogate``: the same model without the gate;
* with ``--ablations``, one lever off at a time: ``damgraph-dense-x``
  (features kept dense), ``damgraph-edge-index`` (no prebuilt
  adjacency: each ``GCNConv`` normalises the edge index at every call, as in
  PyG, and the sparse features are made dense at every call for it),
  ``damgraph-full-width`` (the output layer computed at its full width and
  then gated, instead of only the units DAM left open) and
  ``damgraph-two-passes`` (validation encodes the graph again instead of
  handing its forward pass to the next training step);
* with ``--maskgae``, MaskGAE (Li et al., KDD 2023) at damgraph's preset
  (path masking, MLP edge decoder, degree head, batch norm, ELU, dropout,
  gradient clipping): ``maskgae-reference``, written the way MaskGAE's own
  code trains (PyG ``GCNConv`` layers normalising the visible graph at every
  call, PyG's ``negative_sampling`` against the training graph with
  self-loops, scikit-learn's AUC on validation after every epoch; the same
  path masker as damgraph's, since the original draws its walks with
  ``torch-cluster``), and ``damgraph-maskgae`` (:class:`LinkPredTask` with
  the ``maskgae`` preset, DAM-gated); their ``ratio`` is relative to
  ``maskgae-reference``.

All run in one process on the same split and features, interleaved in
blocks of epochs (the order rotating), after a warm-up; the per-epoch time
is the median over blocks, and ``ratio`` is relative to ``pyg-reference``
on the same dataset. ``peak_mb`` is the peak resident memory during a block
above the resident memory before it (Linux; the peak is reset through
``/proc/self/clear_refs``). ``test_auc`` is the mean over seeds of a full
training run: the reference for the example's 400 epochs (last epoch),
damgraph with its own protocol (best validation epoch, patience 100).
"""
from __future__ import annotations

import argparse
import copy
import gc
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GAE, GCNConv

from benchmarks.store import environment, prepare_out, proc_status_mb, write_csv, write_json
from benchmarks.tables import save_figure, write_report
from damgraph import datasets
from damgraph.config import LinkPredConfig, add_config_arguments
from damgraph.datasets import DATA_ENV
from damgraph.linkpred import LinkPredTask, train_link_prediction
from damgraph.runtime import deterministic, resolve_device, seed_everything
from damgraph.splits import link_split
from damgraph.synthetic import synthetic_size

Split = Tuple[Data, Data, Data]
IMPLS = ("pyg-reference", "damgraph", "damgraph-nogate")
ABLATIONS = ("damgraph-dense-x", "damgraph-edge-index", "damgraph-full-width", "damgraph-two-passes")
MASKGAE_IMPLS = ("maskgae-reference", "damgraph-maskgae")
#: The implementation each one's ratio is taken against.
REFERENCE = {**{impl: "pyg-reference" for impl in IMPLS + ABLATIONS},
             **{impl: "maskgae-reference" for impl in MASKGAE_IMPLS}}
DIM = 16  # the embedding width of PyG's example, the default of --dim
MASKGAE_DIM = 128


@dataclass(frozen=True)
class Setup:
    """What every timed implementation shares: the embedding width of the
    GAEs (the reference's, and damgraph's starting width; MaskGAE keeps its
    preset's :data:`MASKGAE_DIM`) and the device."""

    dim: int = DIM
    device: str = "cpu"

    def synchronize(self) -> None:
        """Wait for the device's queued work (a GPU's), so that a timer reads its end."""
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


class ReferenceEncoder(torch.nn.Module):
    """The encoder of PyG's autoencoder example: two GCNConv layers."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = GCNConv(in_channels, 2 * out_channels)
        self.conv2 = GCNConv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


class ReferenceRun:
    """PyG's autoencoder example: ``train()`` then ``test()`` per epoch."""

    def __init__(self, split: Split, seed: int, dim: int = DIM, device: str = "cpu"):
        self.train_data, self.val_data, self.test_data = (copy.copy(d).to(device) for d in split)
        seed_everything(seed)
        # A graph without features gets a learned input vector per node, as PyG's ogbl-ddi example.
        featureless = self.train_data.x is None
        self.embedding = torch.nn.Embedding(self.train_data.num_nodes, 64).to(device) if featureless else None
        in_channels = 64 if featureless else self.train_data.num_features
        self.model = GAE(ReferenceEncoder(in_channels, dim)).to(device)
        params = list(self.model.parameters()) + (list(self.embedding.parameters()) if featureless else [])
        self.optimizer = torch.optim.Adam(params, lr=0.01)

    def x(self, data: Data) -> torch.Tensor:
        return self.embedding.weight if self.embedding is not None else data.x

    def train(self) -> float:
        self.model.train()
        self.optimizer.zero_grad()
        z = self.model.encode(self.x(self.train_data), self.train_data.edge_index)
        loss = self.model.recon_loss(z, self.train_data.pos_edge_label_index)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    @torch.no_grad()
    def test(self, data: Data) -> Tuple[float, float]:
        self.model.eval()
        z = self.model.encode(self.x(data), data.edge_index)
        return self.model.test(z, data.pos_edge_label_index, data.neg_edge_label_index)

    def epochs(self, n: int) -> None:
        for _ in range(n):
            self.train()
            self.test(self.val_data)


class MaskGAEReference:
    """MaskGAE trained the way its authors' code does, on PyG's building
    blocks, with damgraph's ``maskgae`` preset as its settings: per epoch,
    hide edges (path masking), encode the visible graph with ``GCNConv``
    layers (dropout, conv, batch norm, ELU; the output layer without
    ELU), score the hidden edges against as many negatives from PyG's
    ``negative_sampling`` with an MLP on ``z_i * z_j``, add the degree
    regression, clip the gradient norm at 1, one Adam step; then the
    validation AUC (scikit-learn) on the training graph."""

    def __init__(self, split: Split, seed: int, device: str = "cpu"):
        from damgraph.config import model_config
        from damgraph.masking import make_masker

        self.config = config = model_config("maskgae", dim=MASKGAE_DIM, gate=None, seed=seed)
        self.train_data, self.val_data, self.test_data = (copy.copy(d).to(device) for d in split)
        seed_everything(seed)
        data = self.train_data
        featureless = data.x is None
        self.embedding = torch.nn.Embedding(data.num_nodes, 64).to(device) if featureless else None
        widths = [64 if featureless else data.num_features, config.hidden, config.dim]
        nn = torch.nn
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in widths[1:])

        def mlp(out_act: bool) -> nn.Module:
            layers = [nn.Dropout(config.decoder_dropout), nn.Linear(config.dim, config.decoder_hidden), nn.ReLU(),
                      nn.Linear(config.decoder_hidden, 1)]
            return nn.Sequential(*layers, *([nn.ReLU()] if out_act else []))

        self.edge_mlp, self.degree_mlp = mlp(False), mlp(True)
        self.net = nn.ModuleList([self.convs, self.norms, self.edge_mlp, self.degree_mlp]).to(device)
        params = list(self.net.parameters()) + (list(self.embedding.parameters()) if featureless else [])
        self.optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        self.masker = make_masker(data.pos_edge_label_index, data.num_nodes, config.masking, config.mask_ratio,
                                  config.walk_length)
        from torch_geometric.utils import add_self_loops

        self.sampling_graph = add_self_loops(data.edge_index)[0]

    def encode(self, data: Data, edge_index: torch.Tensor) -> torch.Tensor:
        x = self.embedding.weight if self.embedding is not None else data.x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(torch.nn.functional.dropout(x, self.config.dropout, self.net.training), edge_index))
            if i < len(self.convs) - 1:
                x = torch.nn.functional.elu(x)
        return x

    def edge_logits(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        return self.edge_mlp(z[pairs[0]] * z[pairs[1]]).view(-1)

    def train(self) -> float:
        from torch_geometric.utils import negative_sampling

        F = torch.nn.functional
        self.net.train()
        data = self.train_data
        pos = data.pos_edge_label_index
        hidden = self.masker()
        visible = pos[:, ~hidden]
        masked = pos[:, hidden]
        neg = negative_sampling(self.sampling_graph, num_nodes=data.num_nodes, num_neg_samples=masked.size(1))
        self.optimizer.zero_grad()
        z = self.encode(data, torch.cat([visible, visible.flip(0)], dim=1))
        pos_out, neg_out = self.edge_logits(z, masked), self.edge_logits(z, neg)
        loss = F.binary_cross_entropy_with_logits(pos_out, torch.ones_like(pos_out)) + \
            F.binary_cross_entropy_with_logits(neg_out, torch.zeros_like(neg_out))
        degree = torch.bincount(masked.flatten(), minlength=data.num_nodes).float()
        loss = loss + self.config.degree_weight * F.mse_loss(self.degree_mlp(z).view(-1), degree)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return loss.item()

    @torch.no_grad()
    def test(self, data: Data) -> float:
        from sklearn.metrics import roc_auc_score

        self.net.eval()
        z = self.encode(data, data.edge_index)
        pos, neg = self.edge_logits(z, data.pos_edge_label_index), self.edge_logits(z, data.neg_edge_label_index)
        y = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).cpu().numpy()
        return float(roc_auc_score(y, torch.cat([pos, neg]).sigmoid().cpu().numpy()))

    def epochs(self, n: int) -> None:
        for _ in range(n):
            self.train()
            self.test(self.val_data)


def damgraph_config(impl: str, seed: int, setup: Setup) -> LinkPredConfig:
    if impl == "damgraph-maskgae":
        from damgraph.config import model_config

        return model_config("maskgae", dim=MASKGAE_DIM, seed=seed, device=setup.device)
    return LinkPredConfig(dim=setup.dim, gate=None if impl == "damgraph-nogate" else "dam", seed=seed,
                          device=setup.device)


def make_runner(impl: str, split: Split, seed: int, setup: Setup) -> Callable[[int], None]:
    """A function that runs ``n`` epochs of :obj:`impl` (state kept across calls)."""
    if impl == "pyg-reference":
        return ReferenceRun(split, seed, setup.dim, setup.device).epochs
    if impl == "maskgae-reference":
        return MaskGAEReference(split, seed, setup.device).epochs
    task = LinkPredTask(split, damgraph_config(impl, seed, setup), sparse_features=impl != "damgraph-dense-x",
                        prebuilt_graph=impl != "damgraph-edge-index", reuse_forward=impl != "damgraph-two-passes")
    task.model.encoder.open_block = impl != "damgraph-full-width"
    return lambda n: task.fit(epochs=n, patience=n)


def _memory_probe(impl: str, name: str, root: Optional[str], block: int, threads: int, setup: Setup,
                  queue) -> None:
    """In a fresh process: load and split the graph, then train :obj:`impl`
    for two blocks and report the peak resident memory above the resident
    memory before the model was built (MiB)."""
    torch.set_num_threads(threads)
    split = link_split(load_graph(name, root), 0)
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM, the peak resident set size
    except OSError:
        queue.put(None)
        return
    before = proc_status_mb("VmRSS")
    with deterministic():
        run = make_runner(impl, split, 0, setup)
        run(2 * block)
    peak = proc_status_mb("VmHWM")
    queue.put(None if before is None or peak is None else round(max(peak - before, 0), 1))


def peak_memory_mb(impl: str, name: str, root: Optional[str], block: int, setup: Setup) -> Optional[float]:
    """Peak training memory of :obj:`impl` on :obj:`name`, measured in a
    fresh process so that memory freed by earlier runs does not hide it;
    ``None`` where ``/proc/self/clear_refs`` is missing (not Linux)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_probe, args=(impl, name, root, block, torch.get_num_threads(), setup, queue))
    proc.start()
    try:
        return queue.get(timeout=600)
    except Exception:  # the probe died: no figure rather than a wrong one
        return None
    finally:
        proc.join(timeout=60)


@deterministic()
def time_epochs(impls: Sequence[str], split: Split, repeats: int, block: int, setup: Setup
                ) -> Dict[str, Dict[str, float]]:
    """Median seconds per epoch and peak memory of each implementation,
    interleaved in blocks of :obj:`block` epochs."""
    runners = {impl: make_runner(impl, split, 0, setup) for impl in impls}
    for run in runners.values():  # warm-up
        run(block)
    times: Dict[str, List[float]] = {impl: [] for impl in impls}
    for r in range(repeats):
        order = list(impls[r % len(impls):]) + list(impls[:r % len(impls)])
        for impl in order:
            setup.synchronize()
            start = time.perf_counter()
            runners[impl](block)
            setup.synchronize()
            times[impl].append((time.perf_counter() - start) / block)
    return {impl: {"s_per_epoch": statistics.median(times[impl]), "s_per_epoch_min": min(times[impl])}
            for impl in impls}


@deterministic()
def test_auc(impl: str, split: Split, seed: int, epochs: int, setup: Setup, maskgae_epochs: Optional[int] = None
             ) -> Tuple[float, int]:
    """Test AUC and embedding width of a full training run of :obj:`impl`
    under :obj:`seed` (:obj:`epochs` for the GAE reference; the MaskGAE
    implementations train :obj:`maskgae_epochs`, default the preset's, and
    keep their best validation epoch)."""
    if impl == "pyg-reference":
        run = ReferenceRun(split, seed, setup.dim, setup.device)
        run.epochs(epochs)
        return float(run.test(run.test_data)[0]), setup.dim
    if impl == "maskgae-reference":  # the preset's epochs, the best validation epoch's test AUC (as MaskGAE reports)
        run = MaskGAEReference(split, seed, setup.device)
        best = (-1.0, 0.0)
        for _ in range(maskgae_epochs or run.config.epochs):
            run.train()
            val = run.test(run.val_data)
            if val > best[0]:
                best = (val, run.test(run.test_data))
        return best[1], MASKGAE_DIM
    config = damgraph_config(impl, seed, setup)
    if impl == "damgraph-maskgae" and maskgae_epochs:
        config = replace(config, epochs=maskgae_epochs, patience=maskgae_epochs)
    result = train_link_prediction(split, config)
    return result.test_auc, result.width


def load_graph(name: str, root: Optional[str]) -> Data:
    """A dataset by name with row-normalised features (as PyG's example),
    ``synthetic-<N>``: :func:`damgraph.synthetic.community_graph` with N
    nodes, or a graph file (:func:`damgraph.graphs.prepare_graph`; without
    features, so every implementation learns node inputs)."""
    if Path(name).is_file():
        from damgraph.graphs import prepare_graph

        return prepare_graph(name).data
    return datasets.load_graph(name, root, normalize_features=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description="Per-epoch training time of damgraph against a PyG-example GAE, in one process.",
        epilog="example: python -m benchmarks.speed --quick --out results/speed")
    p.add_argument("--datasets", nargs="+", default=["cora", "citeseer", "synthetic-10000"],
                   help="dataset names (cora, citeseer, photo, cs, ogbl-ddi, ...; a graph without features gets "
                        "learned node inputs in every implementation), synthetic-<nodes>, a graph file "
                        "(default: cora citeseer synthetic-10000)")
    p.add_argument("--seeds", nargs="+", type=int, default=list(range(10)),
                   help="seeds of the test-AUC runs (default: 0-9)")
    p.add_argument("--repeats", type=int, default=20, help="timed blocks per implementation (default: 20)")
    p.add_argument("--block", type=int, default=10, help="epochs per timed block (default: 10)")
    p.add_argument("--reference-epochs", type=int, default=400,
                   help="epochs of the reference's test-AUC runs, as PyG's example (default: 400)")
    p.add_argument("--dim", type=int, default=DIM,
                   help=f"embedding width of the reference and of damgraph's starting width; the hidden layer "
                        f"is twice as wide (default: {DIM}, as PyG's example)")
    p.add_argument("--ablations", action="store_true",
                   help="also time damgraph with dense features, with per-call normalisation, with the "
                        "output layer at full width and with a second encoding for validation")
    p.add_argument("--maskgae", action="store_true",
                   help="also time MaskGAE (damgraph's preset) against a reference trained as MaskGAE's code does")
    p.add_argument("--maskgae-epochs", type=int, default=None,
                   help="epochs of both MaskGAE test-AUC runs, each keeping its best validation epoch "
                        "(default: the preset's 800)")
    p.add_argument("--data-root", default=None, help=f"data root (default: ${DATA_ENV}, else data/)")
    add_config_arguments(p, ("device",), defaults={"device": "cpu"},
                         device="cpu, cuda or cuda:N; memory is measured on CPU only")
    p.add_argument("--out", default="results/speed", help="output folder (default: results/speed)")
    p.add_argument("--quick", action="store_true",
                   help="Cora and CiteSeer, seeds 0 1, 8 blocks: about a minute")
    args = p.parse_args(argv)
    try:
        resolve_device(args.device)
    except ValueError as err:
        p.error(str(err))
    if args.quick:
        args.datasets, args.seeds, args.repeats = ["cora", "citeseer"], [0, 1], 8
    for name in ("dim", "repeats", "block", "reference_epochs", "maskgae_epochs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in args.datasets:
        if name.startswith("synthetic-"):
            try:
                synthetic_size(name)
            except ValueError as err:
                p.error(str(err))
    return args


def plot(rows: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    fig, ax = plt.subplots(figsize=(1.6 + 1.6 * len(datasets), 3.4))
    width = 0.8 / len(impls)
    for i, impl in enumerate(impls):
        ys = [next((r["s_per_epoch"] * 1e3 for r in rows if r["dataset"] == d and r["impl"] == impl), np.nan)
              for d in datasets]
        ax.bar(np.arange(len(datasets)) + i * width, ys, width, label=impl)
    ax.set_xticks(np.arange(len(datasets)) + width * (len(impls) - 1) / 2, datasets)
    ax.set_ylabel("ms per epoch (median)")
    ax.set_title(f"training epoch time, {torch.get_num_threads()} threads")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def markdown(rows: Sequence[dict]) -> str:
    lines = ["| dataset | impl | ms/epoch | ratio | against | test AUC | width | peak MB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        auc = f"{r['test_auc']:.4f} ± {r['test_auc_std']:.4f}" if r["test_auc"] == r["test_auc"] else "-"
        lines.append(f"| {r['dataset']} | {r['impl']} | {r['s_per_epoch'] * 1e3:.2f} | {r['ratio']:.3f} "
                     f"| {REFERENCE[r['impl']]} | {auc} "
                     f"| {r['width']:.1f} | {r['peak_mb']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup = Setup(args.dim, args.device)
    out = Path(args.out)
    try:
        prepare_out(out)
        graphs = {name: load_graph(name, args.data_root) for name in args.datasets}
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    impls = IMPLS + (ABLATIONS if args.ablations else ()) + (MASKGAE_IMPLS if args.maskgae else ())
    write_json(out / "speed.json", {
        "command": "python -m benchmarks.speed " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args), "impls": impls, "damgraph_config": asdict(damgraph_config("damgraph", 0, setup)),
        "environment": environment()})
    rows: List[dict] = []
    for name, data in graphs.items():
        split = link_split(data, 0)
        timing = time_epochs(impls, split, args.repeats, args.block, setup)
        for impl in impls:
            reference = timing[REFERENCE[impl]]["s_per_epoch"]
            aucs, widths = [], []
            if impl not in ABLATIONS:  # the ablations compute the same function as damgraph
                for seed in args.seeds:
                    auc, width = test_auc(impl, link_split(data, seed) if seed else split, seed,
                                          args.reference_epochs, setup, args.maskgae_epochs)
                    aucs.append(auc)
                    widths.append(width)
            row = {"dataset": name, "impl": impl, "num_nodes": data.num_nodes,
                   "num_edges": data.edge_index.size(1) // 2, **timing[impl],
                   "ratio": timing[impl]["s_per_epoch"] / reference,
                   "peak_mb": (peak_memory_mb(impl, name, args.data_root, args.block, setup)
                               if setup.device == "cpu" else None),
                   "width": float(np.mean(widths)) if widths else setup.dim,
                   "test_auc": float(np.mean(aucs)) if aucs else float("nan"),
                   "test_auc_std": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
                   "seeds": " ".join(map(str, args.seeds)) if aucs else "",
                   "threads": torch.get_num_threads(), "device": setup.device}
            rows.append(row)
            print(f"{name:>16} {impl:>20}: {row['s_per_epoch'] * 1e3:7.2f} ms/epoch  ratio {row['ratio']:.3f}  "
                  f"test AUC {row['test_auc']:.4f}  peak {row['peak_mb']} MB", flush=True)
        write_csv(out / "speed.csv", rows)  # after each dataset: an interruption keeps the finished ones
    gated = {r["dataset"]: r["s_per_epoch"] for r in rows if r["impl"] == "damgraph"}
    ungated = {r["dataset"]: r["s_per_epoch"] for r in rows if r["impl"] == "damgraph-nogate"}
    overhead = "\n".join(f"- {d}: DAM gate overhead {100 * (gated[d] / ungated[d] - 1):+.1f}% "
                         f"({gated[d] * 1e3:.2f} vs {ungated[d] * 1e3:.2f} ms/epoch)" for d in gated)
    text = markdown(rows) + "\n\n" + overhead
    write_report(out, "speed", text, lambda path: plot(rows, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
