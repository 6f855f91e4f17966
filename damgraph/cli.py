"""The ``damgraph`` command: ``damgraph embed``, ``damgraph predict`` and ``damgraph info``.

Bad input ends with one line, ``error: <problem>; <fix>``, exit code 2, no
traceback and no half-written file.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from damgraph.config import ESTIMATOR_SETTINGS, USER_DEFAULTS, USER_POSITIVES, add_config_arguments
from damgraph.settings import settings_from_args

# torch, PyG and the modules that load them are imported inside the commands,
# so that --help answers at once.

INPUT_FORMATS = ("auto", "edgelist", "csv", "graphml", "gml", "npz")
SUFFIX_INPUT = {".txt": "edgelist", ".edges": "edgelist", ".edgelist": "edgelist", ".tsv": "edgelist",
                ".el": "edgelist", ".csv": "csv", ".graphml": "graphml", ".gml": "gml", ".npz": "npz"}


class UsageError(Exception):
    """Bad input on the command line: printed as one line, exit code 2."""


def penalty_text(config, weight: float) -> str:
    """How the penalty's weight :obj:`weight` was set, for the summary line."""
    if weight < config.lam:
        return (f"lam {config.lam:g} lowered for a graph of more than {config.penalty_edges:,} training edges; "
                "--penalty-edges 0 keeps lam")
    return f"lam {config.lam:g}"


def read_graph(source: str, fmt: str = "auto", data_root: Optional[str] = None) -> Any:
    """A graph from a dataset name or a graph file, in a form :func:`prepare_graph` takes."""
    from damgraph.datasets import DATASET_NAMES, load_dataset

    if source.lower() in DATASET_NAMES and not Path(source).exists():
        dataset = load_dataset(source, root=data_root)
        if getattr(dataset, "feature_note", None):
            print(dataset.feature_note, file=sys.stderr)
        return dataset[0]
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"{source}: no such file or dataset; give a graph file or one of "
                         f"{', '.join(DATASET_NAMES)}")
    if path.stat().st_size == 0:
        raise UsageError(f"{source}: the file is empty; give a graph with at least one edge")
    if fmt == "auto":
        fmt = SUFFIX_INPUT.get(path.suffix.lower(), "edgelist")
    if fmt in ("edgelist", "csv"):
        return path  # prepare_graph parses edge lists with line-numbered errors
    import networkx as nx
    import scipy.sparse as sp

    readers = {"graphml": nx.read_graphml, "gml": nx.read_gml, "npz": sp.load_npz}
    try:
        return readers[fmt](path)
    except Exception as err:
        raise UsageError(f"{source}: not a readable {fmt} file ({err}); check the file or pass --format") from err


def read_features(path: str) -> Dict[str, Any]:
    """Node features: a CSV ``id,f1,..`` with any ids (a header line is
    allowed), or a ``.npy`` 2-d array whose row i belongs to node ``i``."""
    import numpy as np

    from damgraph.io import is_number, text_lines

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such features file; give a CSV 'id,f1,..' or a .npy array")
    if p.suffix.lower() == ".npy":
        try:
            x = np.load(p, allow_pickle=False)
        except ValueError as err:
            what = "Python objects" if "pickle" in str(err) else "no readable array"
            raise UsageError(f"{path} holds {what}; save a numeric 2-d array with numpy.save") from None
        if x.ndim != 2:
            raise UsageError(f"{path} holds a {x.ndim}-d array; give a 2-d array with one row per node")
        if x.shape[1] == 0:
            raise UsageError(f"{path} has 0 feature columns; give at least one, or leave --features out")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise UsageError(f"{path} holds {x.dtype} values; give real numbers")
        return {str(i): row for i, row in enumerate(x)}
    import csv

    rows = [r for r in csv.reader(line for _, line in text_lines(p)) if r]
    if not rows:
        raise UsageError(f"{path}: the file holds no features; give one line 'id,f1,..' per node")
    if not is_number(rows[0][-1]) or len(rows[0]) == 1 and len(rows) > 1 and not is_number(rows[1][-1]):
        rows = rows[1:] if len(rows[0]) > 1 else rows  # a header names the columns
    if rows and len(rows[0]) == 1:
        raise UsageError(f"{path} holds node ids but no feature values; give one line 'id,f1,..' per node")
    features = {}
    for number, row in enumerate(rows, start=1):
        if len(row) != len(rows[0]):
            raise UsageError(f"{path}, row {number}: {len(row) - 1} values where row 1 has "
                             f"{len(rows[0]) - 1}; give every node the same number of features")
        try:
            features[row[0]] = [float(v) for v in row[1:]]
        except ValueError:
            raise UsageError(f"{path}, row {number}: a value is not a number; fix it") from None
    return features


def output_files(args: argparse.Namespace) -> Dict[str, Path]:
    """Every file ``damgraph embed`` will write, by a name for messages."""
    from damgraph.io import checkpoint_files, embedding_files, embedding_format

    out = Path(args.out)
    try:
        fmt = embedding_format(out, args.out_format)
    except ValueError as err:
        raise UsageError(str(err)) from err
    files = dict(zip(["--out", "--out (node ids)"], embedding_files(out, fmt)))
    files["--out (sidecar)"] = out.with_name(out.name + ".json")
    if args.save_model:
        files.update(zip(["--save-model", "--save-model (config)"], checkpoint_files(args.save_model)))
    return files


def cmd_embed(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from damgraph.estimator import DAMEmbedding
    from damgraph.graphs import prepare_graph
    from damgraph.io import OutputSet, check_outputs, jsonable, save_embeddings, versions

    files = output_files(args)
    check_outputs(files, {"input graph": args.input, "--features file": args.features})
    est = DAMEmbedding(val_fraction=args.val_fraction, directed=args.directed, verbose=not args.quiet,
                       **settings_from_args(args, ESTIMATOR_SETTINGS))
    est.build_config()  # bad settings are refused before the input is read
    start = time.perf_counter()
    graph = read_graph(args.input, args.format, args.data_root)
    features = read_features(args.features) if args.features else None
    graph = prepare_graph(graph, features, directed=args.directed, header=args.header)  # parses edge lists
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    est.fit(graph)
    seconds = time.perf_counter() - start
    out, sidecar = files["--out"], files["--out (sidecar)"]
    with OutputSet() as outputs:
        try:
            save_embeddings(out, est.embedding_, est.node_ids_, args.out_format, outputs=outputs)
            if args.save_model:
                est.save(args.save_model, outputs=outputs)
            outputs.write_text(sidecar, json.dumps({
                "input": args.input, "params": est.get_params(), "config": asdict(est.config_),
                "versions": versions(), "nodes": len(est.node_ids_), "learned_width": est.width_,
                "val_auc": est.val_auc_, "val_metric": est.config_.val_metric, "val_score": est.val_score_,
                "best_epoch": est.best_epoch_, "seconds": round(seconds, 3),
                "read_seconds": round(read_s, 3),
                "decoder": est.config_.decoder, "scores": SCORE_NOTE[est.config_.decoder],
                "graph_report": est.graph_report_, "files": [str(f) for f in files.values()],
                "node_ids": [jsonable(i) for i in est.node_ids_]}, indent=2) + "\n")
            outputs.commit()
        finally:
            args.written.extend(outputs.committed)
    report = est.graph_report_
    if "header" in report:
        print(f"read line 1 ({report['header']!r}) as a header; pass --no-header to read it as an edge")
    val = f"{est.val_auc_:.4f}" if est.val_auc_ is not None else "n/a (--val-fraction 0)"
    if est.val_auc_ is not None and est.config_.val_metric != "auc":  # the score that selected the epoch
        val += f" (selected on val {est.config_.val_metric} {est.val_score_:.4f})"
    print(f"embedded {len(est.node_ids_)} nodes, {report['input_edges']} input edges "
          f"({report['self_loops']} self-loops, {report['duplicates']} duplicates merged, "
          f"{report['isolated']} isolated): learned width {est.width_} of {est.config_.dim} (penalty weight "
          f"{est.penalty_weight_:.4g}: {penalty_text(est.config_, est.penalty_weight_)}), val AUC {val}, "
          f"best epoch {est.best_epoch_}, {seconds:.1f} s training (reading and preparing the input {read_s:.1f} s)")
    if est.config_.decoder != "inner":
        print(f"note: {SCORE_NOTE[est.config_.decoder]}")
    print("wrote " + ", ".join(str(f) for f in args.written))
    return 0


#: What the embeddings' scores are, by decoder (in the sidecar, and said when it is not the inner product).
SCORE_NOTE = {
    "inner": "the inner product of two embeddings is the model's edge score (logit)",
    "mlp": "the model scores edges with its MLP decoder, not by the inner product of these embeddings; "
           "save the model (--save-model) and score pairs with 'damgraph predict'",
}


def read_pairs(path: str, header: Optional[bool]) -> list:
    """Node pairs, one ``u v`` per line (the edge-list format)."""
    from damgraph.graphs import read_edge_list

    if not Path(path).is_file():
        raise UsageError(f"{path}: no such pairs file; give one 'u v' per line")
    src, dst, _, _, lone = read_edge_list(path, header)
    if lone:
        raise UsageError(f"{path}: a line holds one id ({lone[0]!r}); give one pair 'u v' per line")
    return list(zip(src, dst))


def cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io as text_io

    from damgraph.estimator import DAMEmbedding
    from damgraph.io import check_outputs, atomic_write_text

    if args.pairs is None and args.nodes is None and not args.all:
        raise UsageError("say what to predict: --pairs FILE, --nodes ID [ID ...] or --all")
    if args.out:
        check_outputs({"--out": args.out}, {"model": args.model, "model's config": args.model + ".json",
                                            "--pairs file": args.pairs})
    est = DAMEmbedding.load(args.model)
    buf = text_io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if args.pairs is not None:
        pairs = read_pairs(args.pairs, args.header)
        writer.writerow(["source", "target", "probability"])
        writer.writerows((u, v, f"{p:.6g}") for (u, v), p in zip(pairs, est.edge_scores(pairs)))
    else:
        rows = est.likely_neighbours(None if args.all else args.nodes, k=args.top)
        writer.writerow(["node", "rank", "candidate", "probability"])
        writer.writerows((node, rank, other, f"{p:.6g}") for node, rank, other, p in rows)
    if args.out:
        atomic_write_text(args.out, buf.getvalue())
        args.written.append(Path(args.out))
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(buf.getvalue())
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    from damgraph.graphs import prepare_graph

    prepared = prepare_graph(read_graph(args.input, args.format, args.data_root), directed=args.directed,
                             header=args.header)
    data, n = prepared.data, prepared.num_nodes
    ei = data.edge_index.numpy()
    adj = sp.coo_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(n, n))
    components = connected_components(adj, directed=args.directed, connection="weak")[0]
    degree = np.asarray(adj.sum(axis=1)).ravel()
    x = getattr(data, "x", None)
    report = prepared.report
    if "header" in report:
        print(f"header       line 1 ({report['header']!r}) skipped; pass --no-header to read it as an edge")
    print(f"nodes        {n}")
    print(f"edges        {prepared.num_edges} ({'directed' if args.directed else 'undirected'}, "
          f"{report['input_edges']} in the input)")
    print(f"self-loops   {report['self_loops']}")
    print(f"duplicates   {report['duplicates']}")
    print(f"zero weight  {report['zero_weight']}")
    print(f"isolated     {report['isolated']}")
    print(f"components   {components}")
    print(f"degree       min {degree.min():.0f}, median {np.median(degree):.0f}, mean {degree.mean():.2f}, "
          f"max {degree.max():.0f}")
    print(f"weights      {'yes' if getattr(data, 'edge_weight', None) is not None else 'no'}")
    print(f"features     {tuple(x.shape) if x is not None else 'none'}")
    return 0


EMBED_EXAMPLES = """examples:
  damgraph embed edges.txt --out emb.npy                 # 'u v [weight]' per line, any ids
  damgraph embed cora --out cora.txt --dim 64            # word2vec text, Cora from --data-root
  damgraph embed graph.graphml --out emb.csv --features feats.csv --save-model model.pt
"""
PREDICT_EXAMPLES = """examples:
  damgraph predict model.pt --pairs pairs.txt --out scores.csv   # probability of each 'u v' pair
  damgraph predict model.pt --nodes alice bob --top 5            # 5 likely new neighbours of each
  damgraph predict model.pt --all --out links.csv                # 10 for every node
"""
INFO_EXAMPLES = """examples:
  damgraph info edges.txt
  damgraph info citeseer --data-root ../shared/data/graphs
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="damgraph", description="Compact node embeddings whose size DAM learns.",
        epilog="run 'damgraph embed --help', 'damgraph predict --help' or 'damgraph info --help' for examples")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        # the names of damgraph.datasets.DATASET_NAMES (a test keeps them equal), written out: --help loads no torch
        p.add_argument("input", help="graph file, or a dataset name: cora, citeseer, pubmed, photo, computers, "
                                     "cs, physics, ogbl-ddi, ogbl-collab, ogbl-ppa, ogbl-citation2")
        p.add_argument("--format", choices=INPUT_FORMATS, default="auto",
                       help="input format (default: from the suffix; edge list otherwise)")
        p.add_argument("--directed", action="store_true", help="keep edge directions (default: symmetrise)")
        p.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                       help="the edge list's first line names its columns (default: detected)")
        p.add_argument("--data-root", default=None, help="data root for dataset names (default: $DAMGRAPH_DATA, "
                       "else data/)")

    embed = sub.add_parser("embed", help="learn compact embeddings and write them to a file",
                           epilog=EMBED_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(embed)
    embed.add_argument("--out", required=True, help="embedding file: .npy, .txt/.w2v/.vec (word2vec) or .csv")
    embed.add_argument("--out-format", choices=("auto", "npy", "w2v", "csv"), default="auto",
                       help="embedding file format (default: from the suffix of --out)")
    embed.add_argument("--features", help="node features: CSV 'id,f1,..' or .npy (row i = node i)")
    add_config_arguments(embed, ESTIMATOR_SETTINGS, defaults=USER_DEFAULTS,
                         default_texts={"positives": f"{USER_POSITIVES} for gae and vgae; maskgae reconstructs "
                                                     "its masked edges"},
                         model="the autoencoder; maskgae: masked-edge pretext task with MaskGAE's settings "
                               "(undirected graphs)",
                         decoder="edge decoder: inner, so that the inner product of two written embeddings is "
                                 "the model's score; mlp (MaskGAE's), whose scores come from 'damgraph predict'")
    embed.add_argument("--val-fraction", type=float, default=0.05,
                       help="edges held out to pick the best epoch (default: 0.05; 0 disables)")
    embed.add_argument("--save-model", help="also save the compacted model (weights + JSON config)")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    embed.set_defaults(run=cmd_embed)

    predict = sub.add_parser(
        "predict", help="score node pairs, or list likely new neighbours, with a saved model",
        epilog=PREDICT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_argument("model", help="a model written by 'damgraph embed --save-model'")
    what = predict.add_mutually_exclusive_group()
    what.add_argument("--pairs", help="file of node pairs to score, one 'u v' per line")
    what.add_argument("--nodes", nargs="+", help="list the likely new neighbours of these node ids")
    what.add_argument("--all", action="store_true", help="list the likely new neighbours of every node")
    predict.add_argument("--top", type=_positive_int, default=10,
                         help="neighbours listed per node (default: 10)")
    predict.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                         help="the pairs file's first line names its columns (default: detected)")
    predict.add_argument("--out", help="CSV file to write (default: standard output)")
    predict.set_defaults(run=cmd_predict)

    info = sub.add_parser("info", help="describe a graph: nodes, edges, loops, duplicates, components, degrees",
                          epilog=INFO_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(info)
    info.set_defaults(run=cmd_info)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    import signal
    import warnings

    args = build_parser().parse_args(argv)  # --help ends here, before torch is loaded

    from damgraph.io import Terminated, raise_terminated

    args.written = []
    format_warning = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"  # one line, no source
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader went away (damgraph info g.txt | head -3): end quietly
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (UsageError, ValueError, TypeError, OSError,  # GraphInputError and DatasetNotFoundError among them
            FloatingPointError, MemoryError) as err:
        message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        what = "terminated" if isinstance(err, Terminated) else "interrupted"
        done = (f"after writing {', '.join(map(str, args.written))} (complete)" if args.written
                else "nothing was written")
        print(f"error: {what}; {done}", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        warnings.formatwarning = format_warning


if __name__ == "__main__":
    sys.exit(main())
