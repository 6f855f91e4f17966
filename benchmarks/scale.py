"""Cost against graph size: ``python -m benchmarks.scale``.

Synthetic community graphs (:func:`damgraph.synthetic.community_graph`,
average degree about 10, 64 informative features, seed 0) from 10^4 nodes
up, split 85/5/10 as every link-prediction run. Two modes:

* ``full``: full-batch DAM-GAE (:class:`damgraph.linkpred.LinkPredTask`),
  one step over every training edge per epoch;
* ``precomputed``: features propagated once (SIGN), then an MLP encoder on
  mini-batches of edges (the task's ``precomputed`` mode); memory does not grow
  with the number of steps.

Each (mode, size) runs in a fresh process, so its peak resident memory
(``peak_rss_mb``, the whole process: data, graph and training) is its own.
A size that fails (out of memory, killed) is recorded and ends that mode's
sweep. Rows go to ``OUT/scale.csv`` as they finish; ``OUT/scale.md`` gives
the table and the slope of log(seconds per epoch) against log(edges) per
mode (1.0 is linear in edges), ``OUT/scale.png`` the log-log figure.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmarks.store import environment, prepare_out, proc_status_mb, write_csv, write_json
from benchmarks.tables import save_figure, write_report
from damgraph.config import MODES, LinkPredConfig, add_config_arguments


def _peak_rss_mb() -> Optional[float]:
    peak = proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource  # not Linux: ru_maxrss (bytes on macOS)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def run_one(mode: str, num_nodes: int, epochs: int, batch_size: int, threads: int, device: str) -> Dict:
    """One (mode, size) measurement, in the calling process."""
    import torch

    from damgraph.config import LinkPredConfig
    from damgraph.linkpred import LinkPredTask
    from damgraph.splits import split_edges
    from damgraph.synthetic import community_graph

    torch.set_num_threads(threads)
    start = time.perf_counter()
    data = community_graph(num_nodes, seed=0)
    split = split_edges(data, 0, mrr_negatives=0)
    prepare_s = time.perf_counter() - start
    row = {"mode": mode, "num_nodes": num_nodes, "num_edges": data.edge_index.size(1) // 2,
           "prepare_s": round(prepare_s, 2)}
    del data
    # Every epoch is kept (patience = epochs): the time per epoch is that of a full run.
    # Many steps per epoch in precomputed mode: the betas take the weights' learning rate.
    config = LinkPredConfig(dim=16, epochs=epochs, patience=epochs, device=device, mode=mode, batch_size=batch_size,
                            beta_lr=0.01 if mode == "precomputed" else 0.2)
    start = time.perf_counter()
    task = LinkPredTask(split, config)
    task.encoder_inputs(task.split[0])  # the normalised adjacency, or the propagated features
    setup_s = time.perf_counter() - start
    record = task.fit()
    test = task.test_metrics()
    row.update(setup_s=round(setup_s, 2), test_auc=test["auc"], val_auc=record.val_score,
               width=task.model.encoder.out_gate.num_open)
    row.update(epochs=record.epochs, s_per_epoch=record.train_s / record.epochs,
               peak_rss_mb=round(_peak_rss_mb() or float("nan"), 1), threads=threads, status="ok")
    return row


def _child(queue, *args) -> None:
    try:
        queue.put(run_one(*args))
    except BaseException as err:  # report, do not hang the parent
        queue.put({"status": f"error: {type(err).__name__}: {err}"[:300]})


def run_isolated(mode: str, num_nodes: int, epochs: int, batch_size: int, threads: int, device: str,
                 timeout: float) -> Dict:
    """:func:`run_one` in a fresh process; a crash or kill becomes a row
    with its status instead of a figure."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, mode, num_nodes, epochs, batch_size, threads, device))
    proc.start()
    try:
        row = queue.get(timeout=timeout)
    except Exception:
        proc.kill()
        row = {"status": f"no result (exit code {proc.exitcode}; killed for memory or past {timeout:.0f} s)"}
    proc.join(timeout=60)
    return {"mode": mode, "num_nodes": num_nodes, **row}


def slope(rows: Sequence[dict], mode: str) -> Optional[float]:
    """Least-squares slope of log(s/epoch) against log(edges) over a mode's
    finished sizes of at least 10^5 nodes (below that, fixed per-step
    overheads dominate), or over all when fewer than two are that large."""
    ok = [r for r in rows if r["mode"] == mode and r.get("status") == "ok"]
    large = [r for r in ok if r["num_nodes"] >= 100_000]
    use = large if len(large) >= 2 else ok
    if len(use) < 2:
        return None
    x = np.log([r["num_edges"] for r in use])
    y = np.log([r["s_per_epoch"] for r in use])
    return float(np.polyfit(x, y, 1)[0])


def markdown(rows: Sequence[dict]) -> str:
    lines = ["| mode | nodes | edges | s/epoch | epochs | setup s | peak RSS MB | test AUC | width | status |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("status") == "ok":
            lines.append(f"| {r['mode']} | {r['num_nodes']:,} | {r['num_edges']:,} | {r['s_per_epoch']:.3f} | "
                         f"{r['epochs']} | {r['setup_s']} | {r['peak_rss_mb']:,.0f} | {r['test_auc']:.4f} | "
                         f"{r['width']} | ok |")
        else:
            lines.append(f"| {r['mode']} | {r['num_nodes']:,} | | | | | | | | {r['status']} |")
    for mode in dict.fromkeys(r["mode"] for r in rows):
        s = slope(rows, mode)
        ok = [r["num_nodes"] for r in rows if r["mode"] == mode and r.get("status") == "ok"]
        lines.append(f"\n- {mode}: largest graph {max(ok):,} nodes" if ok else f"\n- {mode}: no size finished")
        if s is not None:
            lines.append(f"  slope of log(s/epoch) against log(edges): {s:.2f}")
    return "\n".join(lines)


def plot(rows: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for mode in dict.fromkeys(r["mode"] for r in rows):
        ok = [r for r in rows if r["mode"] == mode and r.get("status") == "ok"]
        if not ok:
            continue
        edges = [r["num_edges"] for r in ok]
        s = slope(rows, mode)
        axes[0].loglog(edges, [r["s_per_epoch"] for r in ok], "o-",
                       label=f"{mode} (slope {s:.2f})" if s is not None else mode)
        axes[1].loglog(edges, [r["peak_rss_mb"] for r in ok], "o-", label=mode)
    axes[0].set_ylabel("seconds per epoch")
    axes[1].set_ylabel("peak resident memory (MB)")
    for ax in axes:
        ax.set_xlabel("undirected edges")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("DAM-GAE on synthetic community graphs (average degree 10)")
    fig.tight_layout()
    save_figure(fig, path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description="Seconds per epoch, peak memory and test AUC against graph size, full-batch and precomputed.",
        epilog="example: python -m benchmarks.scale --sizes 10000 100000 1000000 --out results/scale")
    p.add_argument("--sizes", nargs="+", type=float, default=[1e4, 3e4, 1e5, 3e5, 1e6],
                   help="numbers of nodes (default: 1e4 3e4 1e5 3e5 1e6)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    add_config_arguments(p, ("epochs", "batch_size", "device"), epochs="epochs per run",
                         defaults={"epochs": 20, "batch_size": LinkPredConfig.batch_size, "device": "cpu"})
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed per run (default: 3600)")
    p.add_argument("--out", default="results/scale", help="output folder (default: results/scale)")
    p.add_argument("--quick", action="store_true", help="sizes 1e4 3e4 1e5, 10 epochs: about a minute")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.epochs = [1e4, 3e4, 1e5], 10
    if min(args.sizes) < 100:
        p.error("--sizes must be at least 100 nodes")
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be >= 1")
    try:
        from damgraph.runtime import resolve_device

        resolve_device(args.device)
    except ValueError as err:
        p.error(str(err))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    out = Path(args.out)
    try:
        prepare_out(out)
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    threads = args.threads or torch.get_num_threads()
    write_json(out / "scale.json", {
        "command": "python -m benchmarks.scale " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args), "graph": "community_graph(n, avg_degree=10, num_communities=10, num_features=64, seed=0)",
        "model": "DAM-GAE, GCN in-32-16 (full) / SIGN hops 2, 32 per hop, 16 out (precomputed), lam 0.03",
        "environment": environment()})
    rows: List[dict] = []
    for mode in args.modes:
        for n in sorted(int(s) for s in args.sizes):
            start = time.perf_counter()
            row = run_isolated(mode, n, args.epochs, args.batch_size, threads, args.device, args.timeout)
            row["wall_s"] = round(time.perf_counter() - start, 1)
            rows.append(row)
            write_csv(out / "scale.csv", rows)
            if row.get("status") == "ok":
                print(f"{mode:>12} {n:>10,} nodes: {row['s_per_epoch']:.3f} s/epoch, peak {row['peak_rss_mb']:,.0f} MB, "
                      f"test AUC {row['test_auc']:.4f}, width {row['width']}", flush=True)
            else:
                print(f"{mode:>12} {n:>10,} nodes: {row['status']}", flush=True)
                break
    text = markdown(rows)
    write_report(out, "scale", text, lambda path: plot(rows, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
