"""Embeddings and models on disk, every file written atomically.

Embeddings: ``.npy`` (with the node ids in ``<file>.ids.json``), word2vec
text (``n d`` header, then ``id v1 .. vd``) and ``.csv`` (``id,d0,..``).
Models: weights as a ``state_dict`` file read back with
``torch.load(weights_only=True)`` (pickled code is refused) plus a JSON config.
"""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

FORMATS = ("npy", "w2v", "csv")
SUFFIX_FORMAT = {".npy": "npy", ".txt": "w2v", ".w2v": "w2v", ".vec": "w2v", ".emb": "w2v", ".csv": "csv"}


class OutputError(OSError):
    """An output path that cannot be written, with the fix in its message."""


def _mode_for_new_files() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_outputs(outputs: Dict[str, Union[str, Path]], inputs: Dict[str, Union[str, Path, None]] = {}) -> None:
    """Refuse, before any work, outputs that could not be written or would
    destroy something: a missing or read-only folder, a path that is a
    folder, an output that is also an input, or two outputs on one file.
    :obj:`outputs` and :obj:`inputs` map a name for the message (``--out``)
    to a path; paths are compared resolved and, where both exist, by inode."""
    seen: Dict[Path, str] = {}
    given = {name: Path(p) for name, p in inputs.items() if p is not None and Path(p).exists()}
    for name, raw in outputs.items():
        path = Path(raw)
        parent = path.parent
        if path.is_dir():
            raise OutputError(f"{name} {path} is a folder; give a file name")
        if not parent.is_dir():
            raise OutputError(f"cannot write {name} {path}: folder {parent} does not exist; create it or "
                              f"choose another {name.split()[0]}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {name} {path}: folder {parent} is not writable; "
                              f"choose another {name.split()[0]}")
        resolved = path.resolve()
        if resolved in seen:
            raise OutputError(f"{name} {path} is the same file as {seen[resolved]}; give each output its own name")
        seen[resolved] = f"{name}"
        for other, source in given.items():
            if resolved == source.resolve() or (path.exists() and os.path.samefile(path, source)):
                raise OutputError(f"{name} {path} is the {other}; writing it would destroy the input; "
                                  f"choose another {name.split()[0]}")


class OutputSet:
    """The files of one command, committed together.

    Each file is written to a temporary file beside its target; :meth:`commit`
    renames them all into place (SIGINT and SIGTERM held back meanwhile, and
    the files already renamed put back if one rename fails). Leaving the
    ``with`` block by an exception, Ctrl-C or SIGTERM removes the temporary
    files, so a failed command leaves nothing new behind."""

    def __init__(self) -> None:
        self._staged: List[Tuple[Path, str]] = []
        self.committed: List[Path] = []
        self._previous_handler: Any = None

    def __enter__(self) -> "OutputSet":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGTERM, raise_terminated)
        return self

    def __exit__(self, kind, error, trace) -> None:
        import signal

        self.discard()
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None

    def write(self, path: Union[str, Path], write: Callable[[Any], None], binary: bool = False) -> Path:
        """Stage ``write(file)`` for :obj:`path` (renamed into place at :meth:`commit`)."""
        path = Path(path)
        if any(target == path for target, _ in self._staged):
            raise OutputError(f"{path} is written twice by one command; give each output its own name")
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as err:
            raise OutputError(f"cannot write {path}: {err.strerror}; choose another location") from None
        self._staged.append((path, tmp))
        try:
            with os.fdopen(fd, "wb" if binary else "w",
                           **({} if binary else {"newline": "", "encoding": "utf-8"})) as f:
                write(f)
            os.chmod(tmp, _mode_for_new_files())  # mkstemp makes 0600; give the usual mode
        except OSError as err:
            raise OutputError(f"cannot write {path}: {err.strerror or err}; "
                              f"{'free some space or ' if err.errno == errno.ENOSPC else ''}"
                              "choose another location") from None
        return path

    def write_text(self, path: Union[str, Path], text: str) -> Path:
        return self.write(path, lambda f: f.write(text))

    def commit(self) -> List[Path]:
        """Rename every staged file into place, all or none; returns them."""
        import signal

        blocked = {signal.SIGINT, signal.SIGTERM}
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        done: List[Tuple[Path, Optional[str]]] = []
        try:
            for path, tmp in self._staged:
                backup = None
                if path.exists():  # kept until every rename succeeded
                    backup = tmp + ".old"
                    try:
                        os.link(path, backup)
                    except OSError:
                        backup = None
                try:
                    os.replace(tmp, path)
                except OSError as err:
                    if backup:
                        os.unlink(backup)
                    for placed, old in reversed(done):
                        if old:
                            os.replace(old, placed)
                        else:
                            os.unlink(placed)
                    raise OutputError(f"cannot write {path}: {err.strerror}; nothing was written") from None
                done.append((path, backup))
            for _, old in done:
                if old:
                    os.unlink(old)
            self.committed = [p for p, _ in done]
            self._staged = []
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return list(self.committed)

    def discard(self) -> None:
        """Remove the temporary files not yet committed."""
        for _, tmp in self._staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._staged = []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs."""


def raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def atomic_write(path: Union[str, Path], write: Callable[[Any], None], binary: bool = False) -> None:
    """Call ``write(file)`` on a temporary file beside :obj:`path`, then
    rename it into place: readers never see a half-written file, and a
    failure leaves nothing behind."""
    with OutputSet() as outputs:
        outputs.write(path, write, binary)
        outputs.commit()


def atomic_write_text(path: Union[str, Path], text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def is_number(text: str) -> bool:
    """Whether :obj:`text` parses as a float (a weight, a feature value)."""
    try:
        float(text)
        return True
    except ValueError:
        return False


# Leading bytes of files that are not text, and what they are.
BINARY_SIGNATURES = {b"BZh": "bzip2 archive", b"\xfd7zXZ\x00": "xz archive", b"PK\x03\x04": "zip archive",
                     b"7z\xbc\xaf": "7-zip archive", b"\x93NUMPY": ".npy array", b"\x89HDF": "HDF5 file",
                     b"\x80": "Python pickle"}


def text_lines(path: Union[str, Path]) -> Iterator[Tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, read through gzip when
    it is gzipped (by content, whatever its suffix); archives, binary files
    and other encodings raise :class:`ValueError` naming the file."""
    import gzip

    path = Path(path)
    with open(path, "rb") as raw:
        head = raw.read(4096)
    gzipped = head.startswith(b"\x1f\x8b")
    if not gzipped:
        for signature, kind in BINARY_SIGNATURES.items():
            if head.startswith(signature):
                raise ValueError(f"{path} is a {kind}, not a text file; unpack it or give it as text or .gz")
        if b"\x00" in head:
            raise ValueError(f"{path} is binary (it holds NUL bytes), not a text file; give UTF-8 text or .gz")
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as f:
            for number, line in enumerate(f, start=1):
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ValueError(f"{path}, line {number}: byte 0x{line[err.start]:02x} is not UTF-8; "
                                     "save the file as UTF-8 (or ASCII) text") from None
                yield number, text.lstrip("\ufeff") if number == 1 else text
    except (OSError, EOFError) as err:  # a damaged gzip stream
        if gzipped:
            raise ValueError(f"{path} is a damaged gzip file ({err}); compress it again") from None
        raise


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


def embedding_files(path: Union[str, Path], fmt: str = "auto") -> List[Path]:
    """The files :func:`save_embeddings` writes for :obj:`path`."""
    path = Path(path)
    if embedding_format(path, fmt) == "npy":
        return [path, path.with_name(path.name + ".ids.json")]
    return [path]


def save_embeddings(path: Union[str, Path], embedding: np.ndarray, node_ids: Sequence[Hashable],
                    fmt: str = "auto", outputs: Optional[OutputSet] = None) -> List[Path]:
    """Write :obj:`embedding` (row i is node ``node_ids[i]``); returns the
    files. With :obj:`outputs` they are only staged there (renamed into
    place by its :meth:`OutputSet.commit`, with the command's other files)."""
    path = Path(path)
    embedding = np.asarray(embedding, dtype=np.float32)
    if embedding.ndim != 2 or embedding.shape[0] != len(node_ids):
        raise ValueError(f"embedding has shape {embedding.shape} but there are {len(node_ids)} node ids")
    fmt = embedding_format(path, fmt)
    if outputs is None:
        with OutputSet() as own:
            save_embeddings(path, embedding, node_ids, fmt, own)
            return own.commit()
    if fmt == "npy":
        outputs.write(path, lambda f: np.save(f, embedding), binary=True)
        outputs.write_text(embedding_files(path, fmt)[1], json.dumps([jsonable(i) for i in node_ids]) + "\n")
    elif fmt == "w2v":
        lines = [f"{embedding.shape[0]} {embedding.shape[1]}"]
        lines += [" ".join([_id_text(i)] + [repr(float(v)) for v in row]) for i, row in zip(node_ids, embedding)]
        outputs.write_text(path, "\n".join(lines) + "\n")
    else:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["id"] + [f"d{j}" for j in range(embedding.shape[1])])
        writer.writerows([str(i)] + [repr(float(v)) for v in row] for i, row in zip(node_ids, embedding))
        outputs.write_text(path, buf.getvalue())
    return embedding_files(path, fmt)


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


def checkpoint_files(path: Union[str, Path]) -> List[Path]:
    """The files :func:`save_checkpoint` writes for :obj:`path`: weights and JSON config."""
    path = Path(path)
    return [path, path.with_name(path.name + ".json")]


def save_checkpoint(path: Union[str, Path], state_dict: Dict[str, torch.Tensor], config: Dict[str, Any],
                    outputs: Optional[OutputSet] = None) -> List[Path]:
    """Weights to :obj:`path` (a plain ``state_dict``) and :obj:`config` to
    ``<path>.json``, both atomically (or staged in :obj:`outputs`)."""
    if outputs is None:
        with OutputSet() as own:
            save_checkpoint(path, state_dict, config, own)
            return own.commit()
    weights, config_path = checkpoint_files(path)
    tensors = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    outputs.write(weights, lambda f: torch.save(tensors, f), binary=True)
    outputs.write_text(config_path, json.dumps(config, indent=2, default=str) + "\n")
    return [weights, config_path]


def load_checkpoint(path: Union[str, Path]) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """``(state_dict, config)`` from :func:`save_checkpoint`; a file that
    carries pickled code rather than tensors is refused, and a missing or
    damaged config raises :class:`ValueError` naming it."""
    path, config_path = checkpoint_files(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file; give the path --save-model wrote")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError and friends
        raise ValueError(f"{path} is not a plain weights file ({err.__class__.__name__}); "
                         "only checkpoints written by damgraph.save_checkpoint can be loaded") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no weights dictionary; only checkpoints written by "
                         "damgraph.save_checkpoint can be loaded")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{config_path}: missing; a model is its weights file plus this JSON file "
                                "beside it, keep them together") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{config_path} is not valid JSON ({err}); save the model again") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path} does not hold a model config; save the model again")
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
