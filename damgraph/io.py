"""Embeddings and models on disk, every file written atomically.

Embeddings: ``.npy`` (with the node ids in ``<file>.ids.json``), word2vec
text (``n d`` header, then ``id v1 .. vd``) and ``.csv`` (``id,d0,..``).
Models: weights as a ``state_dict`` file read back with
``torch.load(weights_only=True)`` (pickled code is refused) plus a JSON config.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, List, Sequence, Tuple, Union

import numpy as np
import torch

FORMATS = ("npy", "w2v", "csv")
SUFFIX_FORMAT = {".npy": "npy", ".txt": "w2v", ".w2v": "w2v", ".vec": "w2v", ".emb": "w2v", ".csv": "csv"}


def atomic_write(path: Union[str, Path], write: Callable[[Any], None], binary: bool = False) -> None:
    """Call ``write(file)`` on a temporary file beside :obj:`path`, then
    rename it into place: readers never see a half-written file, and a
    failure leaves nothing behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": "", "encoding": "utf-8"})) as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Union[str, Path], text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def embedding_format(path: Union[str, Path], fmt: str = "auto") -> str:
    """The format named by :obj:`fmt`, or picked from the file suffix."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise ValueError(f"unknown embedding format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMAT:
        raise ValueError(f"cannot tell the format from the suffix of {path}; use .npy, .txt/.w2v/.vec or .csv, "
                         "or give the format")
    return SUFFIX_FORMAT[suffix]


def _id_text(node: Hashable) -> str:
    text = str(node)
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"node id {node!r} is empty or holds whitespace, which word2vec text cannot store; "
                         "save as .npy or .csv")
    return text


def save_embeddings(path: Union[str, Path], embedding: np.ndarray, node_ids: Sequence[Hashable],
                    fmt: str = "auto") -> List[Path]:
    """Write :obj:`embedding` (row i is node ``node_ids[i]``); returns the files written."""
    path = Path(path)
    embedding = np.asarray(embedding, dtype=np.float32)
    if embedding.ndim != 2 or embedding.shape[0] != len(node_ids):
        raise ValueError(f"embedding has shape {embedding.shape} but there are {len(node_ids)} node ids")
    fmt = embedding_format(path, fmt)
    if fmt == "npy":
        ids_path = path.with_name(path.name + ".ids.json")
        atomic_write(path, lambda f: np.save(f, embedding), binary=True)
        atomic_write_text(ids_path, json.dumps([jsonable(i) for i in node_ids]) + "\n")
        return [path, ids_path]
    if fmt == "w2v":
        lines = [f"{embedding.shape[0]} {embedding.shape[1]}"]
        lines += [" ".join([_id_text(i)] + [repr(float(v)) for v in row]) for i, row in zip(node_ids, embedding)]
        atomic_write_text(path, "\n".join(lines) + "\n")
        return [path]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id"] + [f"d{j}" for j in range(embedding.shape[1])])
    writer.writerows([str(i)] + [repr(float(v)) for v in row] for i, row in zip(node_ids, embedding))
    atomic_write_text(path, buf.getvalue())
    return [path]


def load_embeddings(path: Union[str, Path], fmt: str = "auto") -> Tuple[np.ndarray, List[Hashable]]:
    """Read back what :func:`save_embeddings` wrote: ``(embedding, node_ids)``
    (ids come back as strings from the text formats)."""
    path = Path(path)
    fmt = embedding_format(path, fmt)
    if fmt == "npy":
        ids = json.loads(path.with_name(path.name + ".ids.json").read_text(encoding="utf-8"))
        return np.load(path, allow_pickle=False), ids
    if fmt == "w2v":
        with open(path, encoding="utf-8") as f:
            n, d = (int(v) for v in f.readline().split())
            rows = [line.split() for line in f if line.strip()]
        if len(rows) != n or any(len(r) != d + 1 for r in rows):
            raise ValueError(f"{path}: header says {n} x {d} but the rows disagree")
        return np.array([[float(v) for v in r[1:]] for r in rows], dtype=np.float32).reshape(n, d), \
            [r[0] for r in rows]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[float(v) for v in r[1:]] for r in rows], dtype=np.float32), [r[0] for r in rows]


def jsonable(node: Hashable) -> Any:
    if isinstance(node, (str, int, float, bool)) or node is None:
        return node
    if isinstance(node, np.generic):
        return node.item()
    if isinstance(node, tuple):
        return [jsonable(v) for v in node]
    return str(node)


def save_checkpoint(path: Union[str, Path], state_dict: Dict[str, torch.Tensor], config: Dict[str, Any]) -> List[Path]:
    """Weights to :obj:`path` (a plain ``state_dict``) and :obj:`config` to
    ``<path>.json``, both atomically."""
    path = Path(path)
    config_path = path.with_name(path.name + ".json")
    tensors = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    atomic_write(path, lambda f: torch.save(tensors, f), binary=True)
    atomic_write_text(config_path, json.dumps(config, indent=2, default=str) + "\n")
    return [path, config_path]


def load_checkpoint(path: Union[str, Path]) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """``(state_dict, config)`` from :func:`save_checkpoint`; a file that
    carries pickled code rather than tensors is refused."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError and friends
        raise ValueError(f"{path} is not a plain weights file ({err.__class__.__name__}); "
                         "only checkpoints written by damgraph.save_checkpoint can be loaded") from err
    config = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
    return state, config


def versions() -> Dict[str, str]:
    """Versions of damgraph and the libraries behind a result, for sidecars."""
    import platform

    import scipy
    import sklearn
    import torch_geometric

    from damgraph import __version__

    return {"damgraph": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}
