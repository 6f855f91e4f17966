"""The results store: rows in CSV files written atomically, each run's
record of settings and environment, locks and run claims shared by
processes, and the checks a stored row must pass to be reused."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from damgraph.io import atomic_write_text, versions


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    """All :obj:`rows` as CSV, columns in first-seen order, written atomically."""
    columns: List[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def has_value(row: dict, column: str) -> bool:
    """Whether a result row holds a value in :obj:`column` (a CSV cell may be empty)."""
    return row.get(column) not in (None, "")


def environment() -> Dict[str, str]:
    """Library versions and machine, recorded beside every result."""
    import torch

    return {**versions(), "platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": str(os.cpu_count()), "torch_threads": str(torch.get_num_threads())}


def proc_status_mb(field: str) -> Optional[float]:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB;
    ``None`` where there is no such file (not Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class ResultFileError(ValueError):
    """A result file that cannot be read, with the fix in its message."""


def read_rows(path: Path) -> List[dict]:
    """The rows of a result CSV (empty when it does not exist yet); a row
    cut short (fewer or more fields than the header) has ``None`` values
    (see :func:`row_problem`)."""
    from damgraph.io import text_lines

    path = Path(path)
    if not path.is_file():
        return []
    try:
        lines = [line for _, line in text_lines(path)]
        rows = list(csv.DictReader(lines))
    except (ValueError, csv.Error) as err:
        raise ResultFileError(f"{path} is not a result CSV ({err}); move it away or choose another folder") from None
    if lines and not lines[-1].endswith("\n") and rows:  # the file was cut mid-row
        rows[-1][None] = ["(cut short)"]
    return rows


def row_problem(row: dict, key_columns: Sequence[str], numeric: Sequence[str]) -> Optional[str]:
    """Why a stored row cannot be reused, or ``None``: a missing or extra
    field, an empty key, or a value that should be a number and is not.
    (A row is reused only for a plan entry with the same key, whose
    ``config_id`` holds every setting of the sweep; the row's own setting
    columns record the run's actual settings, which some methods change.)"""
    if None in row or None in row.values():
        return "it is cut short or has extra fields"
    empty = [k for k in key_columns if not has_value(row, k)]
    if empty:
        return f"{empty[0]} is empty"
    for column in numeric:
        value = row.get(column)
        if has_value(row, column):
            try:
                float(value)
            except ValueError:
                return f"{column} {value!r} is not a number"
    return None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file :obj:`path` (created if needed)
    for the block: processes sharing one results folder take turns."""
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_out(out: Path) -> None:
    """Create the output folder, or raise :class:`OSError` with the fix."""
    check_out(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot write to --out {out}: {err.strerror}; choose a writable folder") from None


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that could not be created or written, creating nothing."""
    if out.exists() and not out.is_dir():
        raise OSError(f"--out {out} is a file; give a folder")
    existing = next(p for p in [out, *out.absolute().parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OSError(f"cannot write to --out {out}: {existing} is not a writable folder; choose another --out")


def run_key(row: dict, key_columns: Sequence[str]) -> str:
    """The identity of a run: the values of :obj:`key_columns`, joined."""
    return "|".join(str(row[k]) for k in key_columns)


def _lock_path(csv_path: Path) -> Path:
    return csv_path.with_name(f".{csv_path.name}.lock")


def _claims_path(csv_path: Path) -> Path:
    return csv_path.with_name(f".{csv_path.name}.claims")


def live_claims(csv_path: Path) -> Dict[str, int]:
    """The runs of :obj:`csv_path` that live processes have claimed (key: process id)."""
    try:
        claims = json.loads(_claims_path(csv_path).read_text())
    except (OSError, ValueError):
        return {}
    return {k: pid for k, pid in claims.items() if _alive(pid)}


def stored_runs(csv_path: Path, key_columns: Sequence[str], numeric: Sequence[str] = (),
                warn: bool = False) -> Dict[str, dict]:
    """The complete rows of :obj:`csv_path` by :func:`run_key` (the first of
    a key); with :obj:`warn`, each row :func:`row_problem` rejects is named."""
    good: Dict[str, dict] = {}
    for number, row in enumerate(read_rows(csv_path), start=2):
        problem = row_problem(row, key_columns, numeric)
        if problem is None:
            good.setdefault(run_key(row, key_columns), row)
        elif warn:
            print(f"{csv_path}, line {number}: {problem}; that run is done again", file=sys.stderr)
    return good


def merge_rows(csv_path: Path, folders: Sequence[Path], key_columns: Sequence[str], numeric: Sequence[str]) -> int:
    """Add to :obj:`csv_path` the complete rows of the same-named files in
    :obj:`folders` whose run it lacks (a run stored twice keeps its first
    row); return how many were added."""
    with locked(_lock_path(csv_path)):
        runs = stored_runs(csv_path, key_columns, numeric)
        before = len(runs)
        for folder in folders:
            for run, row in stored_runs(folder / csv_path.name, key_columns, numeric).items():
                runs.setdefault(run, row)
        if len(runs) > before:
            write_csv(csv_path, list(runs.values()))
    return len(runs) - before


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
