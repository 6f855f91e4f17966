"""Does the learned width follow what the graph holds? ``python -m benchmarks.synthetic``.

Graphs whose structure has a known size, without features: planted
partitions of k communities (``sbm-<k>``,
:func:`damgraph.synthetic.community_graph`) and random dot-product graphs of
rank r (``rdpg-<r>``, :func:`damgraph.synthetic.dot_product_graph`), 2,048
nodes of mean degree 20. On each, 10% of the edges are held out for test;
``damgraph embed``'s model (:class:`~damgraph.DAMEmbedding` with its
defaults, from 128 units) learns a width, and fixed-width models (the same
model with the penalty off) give the size curve it is set against. Rows go to
``OUT/synthetic.csv``; the table (learned width against k or r, and against
the curve's knee: the smallest size within 1% of the best) to
``OUT/synthetic.md``; one panel per graph family to ``OUT/synthetic.png``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch_geometric.data import Data

from benchmarks.store import read_rows
from benchmarks.sweep import add_parallel_arguments, parallel_options, run_sweep, start_sweep
from benchmarks.tables import label_axes, panels, save_figure, write_report
from damgraph.config import config_id
from damgraph.estimator import DAMEmbedding
from damgraph.splits import holdout_split
from damgraph.synthetic import community_graph, dot_product_graph

NODES, DEGREE = 2048, 20.0
DEFAULT_GRAPHS = ("sbm-2", "sbm-4", "sbm-8", "sbm-16", "sbm-32", "sbm-64",
                  "rdpg-2", "rdpg-4", "rdpg-8", "rdpg-16", "rdpg-32", "rdpg-64")
FIXED_DIMS = (1, 2, 4, 8, 16, 32, 64)
KEYS = ("graph", "method", "dim", "seed", "config_id")


def make_graph(name: str) -> Data:
    """``sbm-<k>`` or ``rdpg-<r>``, seed 0, without features."""
    family, _, size = name.partition("-")
    if family not in ("sbm", "rdpg") or not size.isdigit() or int(size) < 1:
        raise ValueError(f"unknown graph {name!r}: use sbm-<communities> or rdpg-<rank>, e.g. sbm-8")
    if family == "sbm":
        g = community_graph(NODES, avg_degree=DEGREE, num_communities=int(size), seed=0)
        return Data(edge_index=g.edge_index, num_nodes=NODES)
    return dot_product_graph(NODES, int(size), avg_degree=DEGREE, seed=0)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("--graphs", nargs="+", default=list(DEFAULT_GRAPHS), help="sbm-<k> and rdpg-<r> graphs "
                   f"(default: {' '.join(DEFAULT_GRAPHS)})")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds of the split and the model (default: 0)")
    p.add_argument("--out", default="results/synthetic", help="output folder (default: results/synthetic)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_parallel_arguments(p)
    args = p.parse_args(argv)
    args.datasets = args.graphs
    args.parallel = parallel_options(p, args, "synthetic")
    return args


def summary(rows: List[dict]) -> List[dict]:
    """Per graph: the learned width and test AUC (means over the seeds), the
    fixed curve's best and knee, and the verdicts."""
    table = []
    for graph in dict.fromkeys(r["graph"] for r in rows):
        mine = [r for r in rows if r["graph"] == graph]
        curve: Dict[int, List[float]] = {}
        for r in mine:
            if r["method"] == "fixed":
                curve.setdefault(int(r["dim"]), []).append(float(r["test_auc"]))
        dam = [r for r in mine if r["method"] == "dam"]
        if not curve or not dam:
            continue
        means = {d: float(np.mean(v)) for d, v in sorted(curve.items())}
        best = max(means.values())
        knee = min(d for d, m in means.items() if m >= 0.99 * best)
        size = int(graph.split("-")[1])
        width = float(np.mean([float(r["width"]) for r in dam]))
        auc = float(np.mean([float(r["test_auc"]) for r in dam]))
        table.append(dict(graph=graph, size=size, width=width, auc=auc, best=best, knee=knee,
                          in_range=size <= width <= 2 * size, within=auc >= 0.99 * best,
                          at_knee=width <= 2 * knee and auc >= 0.99 * best))
    return table


def report(rows: List[dict]) -> str:
    lines = ["| graph | k or r | learned width | test AUC | best fixed | knee (smallest within 1%) | width in "
             "[k, 2k] | within 1% of the best | at the knee (within 1%, at most twice its size) |",
             "|" + "---|" * 9]
    yes = lambda ok: "yes" if ok else "no"  # noqa: E731
    for s in summary(rows):
        lines.append(f"| {s['graph']} | {s['size']} | {s['width']:.1f} | {s['auc']:.4f} | {s['best']:.4f} | "
                     f"{s['knee']} | {yes(s['in_range'])} | {yes(s['within'])} | {yes(s['at_knee'])} |")
    return "\n".join(lines)


def plot(rows: List[dict], path: Path) -> None:
    families = sorted({r["graph"].split("-")[0] for r in rows})
    fig, axes = panels(len(families), 6, 4.2)
    for ax, family in zip(axes, families):
        for graph in dict.fromkeys(r["graph"] for r in rows if r["graph"].split("-")[0] == family):
            fixed = sorted((int(r["dim"]), float(r["test_auc"])) for r in rows
                           if r["graph"] == graph and r["method"] == "fixed")
            line, = ax.plot([d for d, _ in fixed], [a for _, a in fixed], marker="o", label=graph)
            for r in (r for r in rows if r["graph"] == graph and r["method"] == "dam"):
                ax.plot([float(r["width"])], [float(r["test_auc"])], marker="*", markersize=14,
                        color=line.get_color(), linestyle="none")
        label_axes(ax, family, "embedding size (stars: the learned width)", "test AUC", log_base=2)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        graphs = start_sweep("synthetic", args, DAMEmbedding().build_config(), argv, make_graph)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cid = config_id(DAMEmbedding().build_config(), ("dim", "lam", "seed"))
    plan = [{"graph": g, "method": "fixed", "dim": d, "seed": s, "config_id": cid}
            for g in args.graphs for s in args.seeds for d in FIXED_DIMS]
    plan += [{"graph": g, "method": "dam", "dim": 128, "seed": s, "config_id": cid}
             for g in args.graphs for s in args.seeds]

    def run(entry: dict) -> dict:
        train, test = holdout_split(graphs[entry["graph"]], entry["seed"], 0.1)
        fixed = {"lam": 0.0} if entry["method"] == "fixed" else {}
        est = DAMEmbedding(dim=entry["dim"], seed=entry["seed"], **fixed).fit(
            Data(edge_index=train.edge_index, num_nodes=train.num_nodes))
        z = torch.as_tensor(est.embedding_)
        pairs = torch.cat([test.pos_edge_label_index, test.neg_edge_label_index], dim=1)
        labels = np.r_[np.ones(test.pos_edge_label_index.size(1)), np.zeros(test.neg_edge_label_index.size(1))]
        scores = (z[pairs[0]] * z[pairs[1]]).sum(1).numpy()
        return {"width": est.width_, "test_auc": float(roc_auc_score(labels, scores)), "val_auc": est.val_auc_,
                "best_epoch": est.best_epoch_, "epochs": len(est.history_),
                "width_trajectory": " ".join(str(h["width"]) for h in est.history_)}

    out = Path(args.out)
    run_sweep(out / "synthetic.csv", plan, run, KEYS, quiet=args.quiet, numeric=("width", "test_auc"),
              parallel=args.parallel)
    rows = read_rows(out / "synthetic.csv")
    write_report(out, "synthetic", report(rows), lambda path: plot(rows, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
