"""Benchmark graphs from a configurable data root, one registry entry per
name (:class:`DatasetEntry`, :func:`register_dataset`): through PyG's loaders
the Planetoid citation graphs (Cora, CiteSeer, PubMed), Amazon co-purchase
graphs (Photo, Computers) and Coauthor graphs (CS, Physics); and OGB's
link-prediction sets with their official split (:mod:`damgraph.ogb_link`)."""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import torch

from damgraph.config import OGB_POSITIVE_BATCH
from damgraph.ogb_link import OGB_LINK_DATASETS, download_ogb_link, folder_name, read_ogb_link, required_files

DATA_ENV = "DAMGRAPH_DATA"
DEFAULT_ROOT = "data"
# Planetoid's spelling of each name (its folder name), keyed by lower case.
PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
#: Shchur et al.'s graphs ("Pitfalls of GNN evaluation", 2018): loader, folder name and raw file (PyG's
#: names), keyed by lower case.
SHCHUR_NAMES = {"photo": ("Amazon", "Photo", "amazon_electronics_photo.npz"),
                "computers": ("Amazon", "Computers", "amazon_electronics_computers.npz"),
                "cs": ("Coauthor", "CS", "ms_academic_cs.npz"), "physics": ("Coauthor", "Physics", "ms_academic_phy.npz")}
#: Every dataset name :func:`load_dataset` takes (:func:`register_dataset` adds to it).
DATASET_NAMES: List[str] = []


class DatasetNotFoundError(FileNotFoundError):
    """The raw files of a dataset are missing and could not be downloaded."""


def resolve_root(root: Union[str, Path, None] = None) -> Path:
    """The data root: :obj:`root` if given, else ``$DAMGRAPH_DATA``, else ``data/``."""
    return Path(root if root is not None else os.environ.get(DATA_ENV) or DEFAULT_ROOT).expanduser()


def raw_files(name: str) -> List[str]:
    """The raw file names of dataset :obj:`name` (8 for a Planetoid graph, one ``.npz`` for Amazon's and
    Coauthor's, OGB's edge and split files)."""
    return DATASETS[name.lower()].raw_files()


def _cache_root(root: Path) -> Path:
    """Where the files of data root :obj:`root` are processed: a folder of
    the user's cache keyed by the root's resolved path, so data roots are
    only ever read."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return Path(base) / "damgraph" / "planetoid" / key


def load_graph(name: str, root: Union[str, Path, None] = None, normalize_features: Optional[bool] = None):
    """The graph (a PyG ``Data``) behind a dataset name: a Planetoid name
    (:func:`load_dataset`), or ``synthetic-<nodes>`` for
    :func:`damgraph.synthetic.community_graph` with that many nodes, seed 0."""
    if name.startswith("synthetic-"):
        from damgraph.synthetic import community_graph, synthetic_size

        return community_graph(synthetic_size(name), seed=0)
    return load_dataset(name, root=root, normalize_features=normalize_features)[0]


#: Node features whose rows hold more than this mass (L1 norm) on average
#: are row-normalised unless told otherwise: one Adam step (about ``lr`` =
#: 0.01 on every weight) moves a first-layer unit by about ``lr`` times a
#: row's mass, so above 50 a single step can move it by more than 0.5 and
#: saturate the scores (dense bag-of-words rows: Amazon Photo's hold 259
#: ones on average, Coauthor CS's 60; Cora's 18, CiteSeer's 32).
FEATURE_MASS_LIMIT = 50.0


def mean_row_mass(x: Optional[torch.Tensor]) -> float:
    """The mean L1 norm of the rows of features :obj:`x` (0 without features)."""
    return float(x.abs().sum(1).mean()) if x is not None and x.numel() > 0 else 0.0


def needs_row_normalization(x: Optional[torch.Tensor]) -> bool:
    """Whether features :obj:`x` exceed :data:`FEATURE_MASS_LIMIT`."""
    return mean_row_mass(x) > FEATURE_MASS_LIMIT


def _decide_features(dataset, key: str, normalize_features: Optional[bool]):
    """:obj:`dataset`, its features row-normalised where ``None`` leaves it
    to the data (:func:`needs_row_normalization`): the transform gains
    PyG's :class:`NormalizeFeatures`, and ``feature_note`` says so."""
    if normalize_features is not None:
        return dataset
    mass = mean_row_mass(dataset[0].x)
    if mass > FEATURE_MASS_LIMIT:
        from torch_geometric.transforms import Compose, NormalizeFeatures

        dataset.transform = Compose([NormalizeFeatures()] + ([dataset.transform] if dataset.transform else []))
        dataset.feature_note = (f"{key}: node features row-normalised (mean row mass {mass:.1f} > "
                                f"{FEATURE_MASS_LIMIT:g})")
    return dataset


@dataclass(frozen=True)
class DatasetEntry:
    """What the library and the harness ask of a dataset name.

    * :obj:`load` ``(root, normalize_features, download)``: the dataset (a
      sequence whose first item is the graph, a PyG ``Data``; ``root`` the
      resolved data root, only read);
    * :obj:`raw_files`: the files its loader reads, for error messages;
    * :obj:`labels`: whether its nodes carry class labels and a node split
      (the linear probe runs on them);
    * :obj:`split`: ``"edges"``, a random edge split per seed, or
      ``"official"``, its own fixed split (``train_pos`` and the evaluation
      pairs on the graph, :func:`~damgraph.splits.official_split`);
    * :obj:`metric`: the score its leaderboard reports first;
    * :obj:`protocol`: the training settings its benchmark's protocol fixes
      (OGB's link sets: selection on their metric, mini-batches of 65,536
      training edges, as OGB's example code trains); the harness applies
      them where the model takes them and no flag sets them
      (:func:`benchmarks.plan.dataset_config`).
    """

    name: str
    load: Callable[[Path, Optional[bool], bool], Sequence]
    raw_files: Callable[[], List[str]]
    labels: bool = True
    split: str = "edges"
    metric: str = "auc"
    protocol: Mapping[str, Any] = field(default_factory=dict)


#: Every dataset by lower-case name (:func:`register_dataset` adds one).
DATASETS: Dict[str, DatasetEntry] = {}


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Add :obj:`entry`; :func:`load_dataset`, the benchmarks' ``--datasets``
    and ``damgraph embed`` then take its name."""
    key = entry.name.lower()
    if key in DATASETS:
        raise ValueError(f"a dataset named {key!r} is registered already")
    DATASETS[key] = entry
    if key not in DATASET_NAMES:
        DATASET_NAMES.append(key)
    return entry


def load_dataset(
    name: str,
    root: Union[str, Path, None] = None,
    normalize_features: Optional[bool] = None,
    download: bool = True,
):
    """Load a registered dataset (:data:`DATASETS`): Cora, CiteSeer or
    PubMed through PyG's :class:`Planetoid` (public split masks included),
    Photo, Computers (:class:`Amazon`), CS or Physics (:class:`Coauthor`),
    which have no public split (their masks: 20 training and 30 validation
    nodes per class, the rest test, drawn once with seed 0,
    :class:`~damgraph.splits.PerClassSplit`), or an OGB link-prediction set
    (``ogbl-ddi``, ``ogbl-collab``, ``ogbl-ppa``, ``ogbl-citation2``) with
    its official split, read from ``<root>/ogbl_<name>/``
    (:func:`~damgraph.ogb_link.read_ogb_link`; a one-graph list).

    The root comes from :obj:`root`, then the ``DAMGRAPH_DATA`` environment
    variable, then ``data/``; files are read from ``<root>/<Name>/raw/``.
    Data roots are only read: PyG processes a copy of the raw files in
    ``~/.cache/damgraph`` (``$XDG_CACHE_HOME``), one folder per root. Files
    missing from the root are downloaded by PyG into that cache folder where
    a network allows (a failed download leaves no folder behind); otherwise a
    :class:`DatasetNotFoundError` names the files and the folder they belong
    in.

    Args:
        name (str): A name of :data:`DATASET_NAMES` (any case).
        root (str or Path, optional): Data root.
        normalize_features (bool, optional): Row-normalise the features
            (as the GCN classifier of Kipf and Welling does), or keep them as
            they are (as the GAE paper does with Cora's and CiteSeer's);
            :obj:`None` decides from the data
            (:func:`needs_row_normalization`). (default: :obj:`None`)
        download (bool, optional): Let PyG fetch missing files; with
            :obj:`False` missing files raise at once. (default: :obj:`True`)
    """
    key = str(name).lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}")
    return DATASETS[key].load(resolve_root(root), normalize_features, download)


def _pyg_loader(key: str, loader_name: str, pyg_name: str) -> Callable[[Path, Optional[bool], bool], Sequence]:
    """The loader of a graph PyG's :obj:`loader_name` class reads from
    ``<root>/<pyg_name>/raw/``, processed in the cache."""
    def load(root: Path, normalize_features: Optional[bool], download: bool):
        import torch_geometric.datasets
        from torch_geometric.transforms import Compose, NormalizeFeatures

        from damgraph.splits import PerClassSplit

        loader = getattr(torch_geometric.datasets, loader_name)
        raw_dir = root / pyg_name / "raw"
        files = raw_files(key)
        cache = _cache_root(root)
        cache_raw = cache / pyg_name / "raw"
        present = all((raw_dir / f).is_file() for f in files)
        if present:  # the root is only read: PyG processes a copy of the raw files in the cache
            cache_raw.mkdir(parents=True, exist_ok=True)
            for f in files:
                source, copy = raw_dir / f, cache_raw / f
                if not copy.is_file() or copy.stat().st_size != source.stat().st_size:
                    shutil.copy2(source, copy)
        steps = [NormalizeFeatures()] if normalize_features else []
        if loader_name != "Planetoid":  # no public split: Shchur et al.'s 20/30 per class, drawn once (seed 0)
            steps.append(PerClassSplit(20, 30, seed=0))
        transform = Compose(steps) if steps else None
        if present or all((cache_raw / f).is_file() for f in files):  # copied, or downloaded before
            return _decide_features(loader(str(cache), pyg_name, transform=transform), key, normalize_features)
        why = "downloading is switched off"
        if download:  # PyG downloads the missing files, into the cache, where a network allows
            created = [p for p in [cache / pyg_name, *(cache / pyg_name).parents] if not p.exists()]
            try:
                return _decide_features(loader(str(cache), pyg_name, transform=transform), key, normalize_features)
            except Exception as err:
                why = f"the download failed: {err.__class__.__name__}"
                if created:  # leave no empty or half-filled folder behind
                    shutil.rmtree(created[-1], ignore_errors=True)
        kind = "8 Planetoid files" if loader_name == "Planetoid" else "file"
        raise DatasetNotFoundError(
            f"dataset {pyg_name} not found in {raw_dir} ({why}); put its {kind} ({', '.join(files)}) in {raw_dir}, "
            f"or point --data-root / ${DATA_ENV} at a folder holding {pyg_name}/raw/")
    return load


def load_ogb_link(name: str, root: Path, download: bool):
    """An OGB link-prediction set from ``root/ogbl_<name>/`` as it is (read
    only), else from the cache, downloaded there where allowed."""
    folder, cached = root / folder_name(name), _cache_root(root) / folder_name(name)
    for candidate in (folder, cached):
        if all(f.is_file() for f in required_files(candidate)):
            return read_ogb_link(candidate, name)
    why = "downloading is switched off"
    if download:
        try:
            return read_ogb_link(download_ogb_link(name, cached.parent), name)
        except Exception as err:
            why = f"the download failed: {err.__class__.__name__}"
    missing = [str(f.relative_to(folder)) for f in required_files(folder) if not f.is_file()]
    raise DatasetNotFoundError(
        f"dataset {name} not found in {folder} ({why}); put OGB's files ({', '.join(missing)}) in {folder}, "
        f"or point --data-root / ${DATA_ENV} at a folder holding {folder.name}/")


for _key, _name in PLANETOID_NAMES.items():
    register_dataset(DatasetEntry(_key, _pyg_loader(_key, "Planetoid", _name),
                                  lambda k=_key: [f"ind.{k}.{suffix}" for suffix in RAW_SUFFIXES]))
for _key, (_loader, _name, _file) in SHCHUR_NAMES.items():
    register_dataset(DatasetEntry(_key, _pyg_loader(_key, _loader, _name), lambda f=_file: [f]))
for _key, (_, _, _metric) in OGB_LINK_DATASETS.items():
    register_dataset(DatasetEntry(
        _key, lambda root, normalize, download, k=_key: [load_ogb_link(k, root, download)],
        lambda k=_key: [str(f.relative_to(folder_name(k))) for f in required_files(Path(folder_name(k)))],
        labels=False, split="official", metric=_metric,
        protocol={"val_metric": _metric, "pos_batch_size": OGB_POSITIVE_BATCH}))
