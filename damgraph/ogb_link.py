"""OGB's link-prediction datasets (Hu et al., "Open Graph Benchmark",
NeurIPS 2020) with their official split, read from OGB's own file layout
without the ``ogb`` package and without unpickling code.

A dataset folder ``<root>/ogbl_<name>/`` holds ``raw/edge.csv.gz`` (the
training graph; ``node-feat.csv.gz`` where nodes have features) and
``split/<kind>/{train,valid,test}.pt``: dicts of NumPy arrays saved with
``torch.save``. They are read with ``torch.load(weights_only=True)``,
allowing only NumPy's array reconstruction, so a tampered file cannot run
code. Missing folders are downloaded from OGB's server into the user's
cache (the data root is only read) where a network allows.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

#: OGB link-prediction datasets: the name OGB's server zips the folder
#: under, whether edges are directed, and the leaderboard metric.
OGB_LINK_DATASETS: Dict[str, Tuple[str, bool, str]] = {
    "ogbl-ddi": ("ddi", False, "hits@20"),
    "ogbl-collab": ("collab", False, "hits@50"),
    "ogbl-ppa": ("ppassoc", False, "hits@100"),
    "ogbl-citation2": ("citation-v2", True, "mrr"),
}
OGB_URL = "http://snap.stanford.edu/ogb/data/linkproppred/{}.zip"
#: The split files read: the training edges are the graph of ``raw/edge.csv.gz`` (OGB's own loader
#: gives the same graph), so the split's ``train.pt`` is not needed.
SPLIT_FILES = ("valid.pt", "test.pt")


def folder_name(name: str) -> str:
    """OGB's folder of a dataset: ``ogbl-ddi`` -> ``ogbl_ddi``."""
    return name.replace("-", "_")


def required_files(folder: Path) -> list[Path]:
    """The files a dataset folder must hold (the split folder's name varies)."""
    splits = sorted((folder / "split").glob("*/")) if (folder / "split").is_dir() else []
    split_dir = splits[0] if splits else folder / "split" / "<kind>"
    return [folder / "raw" / "edge.csv.gz", *(split_dir / f for f in SPLIT_FILES)]


def _numpy_globals() -> list:
    """What ``torch.load`` may build from OGB's split files: NumPy arrays
    of numeric dtypes (NumPy 1's and 2's module names alike)."""
    try:  # NumPy 2's module, which NumPy 1.26 also provides (as an alias of numpy.core's)
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # older NumPy 1
        from numpy.core.multiarray import _reconstruct
    allowed = [(_reconstruct, "numpy.core.multiarray._reconstruct"),
               (_reconstruct, "numpy._core.multiarray._reconstruct"),
               np.ndarray, (np.dtype, "numpy.dtype")]
    allowed += [type(np.dtype(t)) for t in ("int64", "int32", "float32", "float64", "bool")]
    return allowed


def read_split_file(path: Path) -> Dict[str, np.ndarray]:
    """One ``split/<kind>/*.pt`` file: a dict of NumPy arrays, loaded
    with ``weights_only=True`` (anything but numeric arrays is refused)."""
    with torch.serialization.safe_globals(_numpy_globals()):
        try:
            split = torch.load(path, weights_only=True)
        except Exception as err:
            raise ValueError(f"{path} is not an OGB split file of NumPy arrays ({err.__class__.__name__}); "
                             "download the dataset again") from None
    if not isinstance(split, dict):
        raise ValueError(f"{path} holds a {type(split).__name__}, not OGB's dict of arrays; download it again")
    return split


def _read_csv(path: Path, dtype) -> np.ndarray:
    """A headerless numeric CSV of OGB's (gzipped) as a 2-d array."""
    try:
        return np.loadtxt(path, delimiter=",", dtype=dtype, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path} is not OGB's numeric CSV ({err}); download the dataset again") from None


def _edges(array: np.ndarray) -> Tensor:
    """OGB's ``[E, 2]`` pair array as a ``[2, E]`` edge index."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=np.int64).T))


def _pairs(split: Dict[str, np.ndarray]) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """``(positives [2, P], shared negatives [2, N] or None, per-positive
    negative tails [P, K] or None)`` of one split part, in either of OGB's
    formats (``edge``/``edge_neg``, or citation2's ``source_node``/``target_node``/``target_node_neg``)."""
    if "edge" in split:
        neg = split.get("edge_neg")
        return _edges(split["edge"]), (_edges(neg) if neg is not None else None), None
    pos = torch.stack([torch.as_tensor(split["source_node"]), torch.as_tensor(split["target_node"])]).long()
    neg_dst = split.get("target_node_neg")
    return pos, None, (torch.as_tensor(neg_dst).long() if neg_dst is not None else None)


def read_ogb_link(folder: Path, name: str) -> Data:
    """The dataset in :obj:`folder` as one ``Data``: ``edge_index``, the
    training graph (both directions unless directed), ``x`` where nodes
    have features, and the official split's evaluation pairs as
    ``val_pos``/``val_neg``/``test_pos``/``test_neg`` (``[2, P]``;
    citation2's per-positive negative tails as ``val_neg_dst``/``test_neg_dst``)."""
    _, directed, metric = OGB_LINK_DATASETS[name]
    files = required_files(folder)
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(map(str, missing))} missing")
    raw = folder / "raw"
    num_nodes = int(_read_csv(raw / "num-node-list.csv.gz", np.int64).sum()) \
        if (raw / "num-node-list.csv.gz").is_file() else None
    train_edges = _edges(_read_csv(raw / "edge.csv.gz", np.int64))
    num_nodes = num_nodes or int(train_edges.max()) + 1
    edge_index = train_edges if directed else torch.cat([train_edges, train_edges.flip(0)], dim=1)
    data = Data(edge_index=edge_index, num_nodes=num_nodes)
    if (raw / "node-feat.csv.gz").is_file():
        data.x = torch.from_numpy(_read_csv(raw / "node-feat.csv.gz", np.float32))
    for part, file in zip(("val", "test"), files[1:]):
        pos, neg, neg_dst = _pairs(read_split_file(file))
        setattr(data, f"{part}_pos", pos)
        if neg is not None:
            setattr(data, f"{part}_neg", neg)
        if neg_dst is not None:
            setattr(data, f"{part}_neg_dst", neg_dst)
    data.train_pos = train_edges
    data.name, data.directed, data.metric = name, directed, metric
    return data


def download_ogb_link(name: str, cache: Path) -> Path:
    """Fetch OGB's zip of :obj:`name` into :obj:`cache` (PyG's downloader)
    and return the dataset folder; a failed download leaves nothing behind."""
    from torch_geometric.data import download_url, extract_zip

    zip_name = OGB_LINK_DATASETS[name][0]
    folder = cache / folder_name(name)
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".{folder_name(name)}.download"
    try:
        path = download_url(OGB_URL.format(zip_name), str(work), log=False)
        extract_zip(path, str(work), log=False)
        (work / zip_name).rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder
