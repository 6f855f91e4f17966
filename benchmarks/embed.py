"""The user's path: ``python -m benchmarks.embed``.

A user embeds a graph with ``damgraph embed`` (``DAMEmbedding`` at its
defaults) and scores node pairs with the written embeddings. This benchmark
does exactly that on graphs without node features, and sets beside it what
the user could use instead at the same width: a spectral embedding (the
``spectral`` sizing method's: top eigenvectors of the normalised adjacency,
scipy), the Adamic-Adar, resource-allocation and preferential-attachment
heuristics (networkx), and fast embedders from maintained packages where
they are installed (the ``peers`` extra: ``nodevectors``' ProNE,
``pecanpy``'s node2vec).

Per (graph, seed) 10% of the edges are held out with as many non-edges
(PyG's ``RandomLinkSplit``, seeded); every method sees only the rest. An
OGB dataset (``ogbl-ddi``) keeps its official split instead: every method
sees the training graph and is scored on the official test pairs.
Scores: test AUC and AP of the inner product of the embeddings (the model's
own score for ``damgraph``: its default decoder is the inner product),
Hits@20 against the test negatives (OGB's ddi metric), the AUC of their
cosine, the width, wall seconds and the process's peak memory.
One row per run in ``OUT/embed.csv`` (resumable, shared safely by several
processes), the settings in ``OUT/embed.json``, a mean ± std table in
``OUT/embed.md`` and a chart in ``OUT/embed.png``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np

from benchmarks.store import ResultFileError, live_claims, proc_status_mb, run_key, stored_runs
from benchmarks.sweep import (add_parallel_arguments, finish_sweep, parallel_options, refuse_repeats, run_sweep,
                              start_sweep)
from benchmarks.tables import save_figure
from damgraph.config import LATER_SETTINGS, add_config_arguments, model_config
from damgraph.estimator import DAMEmbedding

KEYS = ("graph", "method", "seed", "config_id")
GROUP = ("graph", "method")
METRICS = ("width", "test_auc", "test_ap", "test_hits@20", "test_auc_cosine", "seconds", "peak_rss_mb")
#: damgraph's settings this benchmark takes as flags (the rest stay at DAMEmbedding's defaults).
DAMGRAPH_SETTINGS = ("lam", "min_epochs", "val_window", "val_tolerance", "val_min_delta", "val_metric", "inputs",
                     "positives", "window")
#: DAMEmbedding's defaults of those settings (for a GAE), read from the estimator's own config.
DAMGRAPH_DEFAULTS = {k: getattr(DAMEmbedding().build_config(), k) for k in DAMGRAPH_SETTINGS}
#: The values a run's ``config_id`` leaves out: the harness's first preset,
#: so that rows stored before a setting became a flag keep their ids.
ID_NEUTRAL = {**LATER_SETTINGS, "lam": model_config("gae").lam}
#: Methods in the order they run (the spectral embedding takes damgraph's learned width).
METHODS = ("damgraph", "spectral", "adamic-adar", "resource-allocation", "preferential-attachment", "prone",
           "node2vec")
#: The link heuristics: networkx's function for each.
HEURISTICS = {"adamic-adar": "adamic_adar_index", "resource-allocation": "resource_allocation_index",
              "preferential-attachment": "preferential_attachment"}
#: Methods from the optional ``peers`` extra, and the module each needs.
PEERS = {"prone": "nodevectors", "node2vec": "pecanpy"}
QUICK_GRAPHS = ["cora", "synthetic-2000"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.embed",
        description="damgraph embed at its defaults against a spectral embedding, link heuristics and fast "
                    "embedders, on graphs without node features (10%% of edges held out).",
        epilog="example: python -m benchmarks.embed --graphs cora citeseer photo edges.txt --seeds 0 1 2")
    p.add_argument("--graphs", nargs="+", default=["cora", "citeseer", "photo", "cs", "synthetic-3000"],
                   help="dataset names (features withheld; ogbl-ddi with its official split), synthetic-<nodes>, or edge-list files")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=[m for m in METHODS if m not in PEERS],
                   help="methods to run (prone and node2vec need the peers extra: pip install 'damgraph[peers]')")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--dim", type=int, default=128, help="starting width of damgraph; the width of methods "
                   "without a learned one when damgraph has not run (default: 128)")
    add_config_arguments(p, DAMGRAPH_SETTINGS,  # DAMEmbedding's defaults
                         defaults={k: DAMGRAPH_DEFAULTS[k] for k in DAMGRAPH_SETTINGS})
    p.add_argument("--data-root", default=None, help="data root of the dataset names")
    p.add_argument("--out", default="results/embed", help="output folder (default: results/embed)")
    p.add_argument("--quick", action="store_true", help=f"graphs {' '.join(QUICK_GRAPHS)}, seed 0, "
                   "the methods installed (about a minute on 2 cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_parallel_arguments(p)
    args = p.parse_args(argv)
    if args.quick:
        args.graphs, args.seeds = QUICK_GRAPHS, [0]
    refuse_repeats(p, args, ("graphs", "methods", "seeds"))
    if any(s < 0 for s in args.seeds):
        p.error("--seeds: a seed must be >= 0")
    for flag in ("dim", "min_epochs", "val_window"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    import importlib.util

    missing = [m for m in args.methods if m in PEERS and importlib.util.find_spec(PEERS[m]) is None]
    if missing and not args.quick:
        p.error(f"--methods {' '.join(missing)} need {', '.join(PEERS[m] for m in missing)}; "
                "install them with: pip install 'damgraph[peers]'")
    args.methods = [m for m in args.methods if m not in missing]
    args.parallel = parallel_options(p, args, "embed")
    return args


def load_graph(name: str, root: str | None):
    """A graph by dataset name (its features withheld), ``synthetic-<n>``, or edge-list path, as a PyG ``Data``."""
    from damgraph.datasets import DATASET_NAMES, load_graph as load_named
    from damgraph.graphs import prepare_graph

    if name.lower() in DATASET_NAMES or name.startswith("synthetic-"):
        data = load_named(name.lower() if not name.startswith("synthetic-") else name, root)
    elif Path(name).is_file():
        data = prepare_graph(name).data
    else:
        raise ValueError(f"{name}: no such dataset or file; give one of {', '.join(DATASET_NAMES)}, "
                         "synthetic-<nodes> or an edge-list file")
    from torch_geometric.data import Data

    official = {k: getattr(data, k) for k in ("train_pos", "test_pos", "test_neg") if getattr(data, k, None) is not None}
    return Data(edge_index=data.edge_index, num_nodes=data.num_nodes, **official)  # features withheld


def held_out(data, seed: int):
    """``(training edge_index, test positives, test negatives)``: 10% of the
    edges held out, or the official split's test pairs where there is one."""
    from damgraph.splits import split_edges

    if getattr(data, "test_pos", None) is not None:
        return data.edge_index, data.test_pos, data.test_neg
    train, _, test = split_edges(data, seed, val_ratio=0.0, test_ratio=0.1, mrr_negatives=0)
    return train.edge_index, test.pos_edge_label_index, test.neg_edge_label_index


def pair_scores(z: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The inner product of the two rows of each pair."""
    return np.einsum("ij,ij->i", z[pairs[0]], z[pairs[1]])


def heuristic(name: str, edge_index, n: int, pairs: np.ndarray) -> np.ndarray:
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edge_index.t().tolist())
    score = getattr(nx, HEURISTICS[name])
    return np.array([s for _, _, s in score(g, list(zip(pairs[0].tolist(), pairs[1].tolist())))], dtype=float)


def peer_embedding(name: str, edge_index, n: int, width: int, seed: int) -> np.ndarray:
    """An embedding by a fast embedder of the ``peers`` extra."""
    import scipy.sparse as sp

    ei = edge_index.numpy()
    adjacency = sp.csr_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(n, n))
    if name == "prone":
        from nodevectors import ProNE

        np.random.seed(seed)  # ProNE draws from NumPy's global generator and takes no seed
        return np.asarray(ProNE(n_components=width).fit_transform(adjacency))
    import tempfile

    from pecanpy.pecanpy import SparseOTF

    with tempfile.TemporaryDirectory() as folder:  # pecanpy reads an edge-list file
        path = Path(folder) / "edges.txt"
        np.savetxt(path, ei[:, ei[0] < ei[1]].T, fmt="%d", delimiter="\t")
        walker = SparseOTF(p=1, q=1, workers=1, verbose=False, random_state=seed)
        walker.read_edg(str(path), weighted=False, directed=False)
        vectors = walker.embed(dim=width)
        order = [int(i) for i in walker.nodes]
    z = np.zeros((n, width))
    z[order] = vectors
    return z


def runner(args: argparse.Namespace, graphs: Dict[str, object], csv_path: Path) -> Callable[[dict], dict]:
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.preprocessing import normalize

    from damgraph.spectral import spectral_embedding
    from damgraph.evaluation import hits_at_k

    splits: Dict = {}

    def learned_width(entry: dict) -> int:
        """damgraph's width in the same sweep, graph and seed (a run of another process is waited for);
        without damgraph in the sweep, ``--dim``."""
        if "damgraph" not in args.methods:
            return args.dim
        graph, seed = entry["graph"], entry["seed"]
        key = run_key({**entry, "method": "damgraph"}, KEYS)
        while True:
            row = stored_runs(csv_path, KEYS, METRICS).get(key)
            if row is not None:
                return int(float(row["width"]))
            if key not in live_claims(csv_path):
                raise ResultFileError(f"the {graph} seed {seed} runs take damgraph's learned width, but no "
                                      "process has stored or is running that damgraph run; run the command again")
            time.sleep(1.0)

    def run(entry: dict) -> dict:
        import torch

        graph, method, seed = entry["graph"], entry["method"], entry["seed"]
        data = graphs[graph]
        if (graph, seed) not in splits:
            splits[(graph, seed)] = held_out(data, seed)
        train, pos, neg = splits[(graph, seed)]
        n = data.num_nodes
        pairs = torch.cat([pos, neg], dim=1).numpy()
        labels = np.r_[np.ones(pos.size(1)), np.zeros(neg.size(1))]
        _reset_peak_memory()
        start = time.perf_counter()
        row: dict = {}
        if method == "damgraph":
            from torch_geometric.data import Data

            settings = {k: getattr(args, k) for k in DAMGRAPH_SETTINGS}
            est = DAMEmbedding(dim=args.dim, seed=seed, **settings).fit(Data(edge_index=train, num_nodes=n))
            z = est.embedding_
            row.update(best_epoch=est.best_epoch_, val_auc=est.val_auc_)
        elif method == "spectral":
            z = spectral_embedding(train, n, learned_width(entry), seed).numpy()
        elif method in PEERS:
            z = peer_embedding(method, train, n, learned_width(entry), seed)
        else:
            z = None
            scores = heuristic(method, train, n, pairs)
        seconds = time.perf_counter() - start
        if z is not None:
            scores = pair_scores(z, pairs)
            row.update(width=z.shape[1], test_auc_cosine=roc_auc_score(labels, pair_scores(normalize(z), pairs)))
        at_20 = hits_at_k(*map(torch.from_numpy, (scores[:pos.size(1)], scores[pos.size(1):])), 20)
        row.update(test_auc=roc_auc_score(labels, scores), test_ap=average_precision_score(labels, scores),
                   **{"test_hits@20": at_20},
                   seconds=round(seconds, 3), peak_rss_mb=proc_status_mb("VmHWM"), nodes=n,
                   edges=int(train.size(1)) // 2, test_pairs=int(pairs.shape[1]))
        return row

    return run


def _reset_peak_memory() -> None:
    """Reset the process's peak RSS (Linux), so that VmHWM is this run's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def plot(rows: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graphs = list(dict.fromkeys(r["graph"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 + 1.4 * len(graphs)), 3.6))
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        means = [np.mean([float(r["test_auc"]) for r in rows if r["graph"] == g and r["method"] == method] or [np.nan])
                 for g in graphs]
        ax.bar(np.arange(len(graphs)) + i * width, means, width, label=method)
    ax.set_xticks(np.arange(len(graphs)) + 0.4 - width / 2, graphs)
    ax.set_ylabel("held-out test AUC")
    ax.set_ylim(0.5, 1.0)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("embeddings of graphs without features (10% of edges held out)")
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = {"dim": args.dim, "damgraph": "DAMEmbedding defaults (GAE, inner-product decoder)",
                **{k: getattr(args, k) for k in DAMGRAPH_SETTINGS}, "held_out": 0.1}
    try:
        args.datasets = args.graphs  # start_sweep loads every graph before creating --out
        graphs = start_sweep("embed", args, {}, argv, lambda name: load_graph(name, args.data_root))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    cid = f"dim={args.dim}|held_out=0.1" + "".join(f"|{k}={getattr(args, k)}" for k in DAMGRAPH_SETTINGS
                                                    if getattr(args, k) != ID_NEUTRAL[k])
    # damgraph's runs first: the spectral and peer runs of a graph and seed take its learned width
    plan: List[dict] = [{"graph": g, "method": m, "seed": s, "config_id": cid}
                        for first in (True, False) for g in args.graphs for s in args.seeds for m in args.methods
                        if (m == "damgraph") == first]
    try:
        rows = run_sweep(out / "embed.csv", plan, runner(args, graphs, out / "embed.csv"), KEYS, quiet=args.quiet,
                         numeric=METRICS, parallel=args.parallel, unit=("graph", "seed"))
    except ResultFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    plot(rows, out / "embed.png")
    finish_sweep("embed", out, rows, GROUP, METRICS, [f"settings: {settings}"], ["embed.png"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
