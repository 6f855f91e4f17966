"""How the embedding size is chosen: one module per method behind one interface.

A method is a :class:`~benchmarks.sizing.method.SizingMethod`: a function
``run(job) -> dict`` that returns the result columns of one point of the size
curve (``width``, test and validation scores, seconds, parameters) for
``job.config.dim``, and what the harness asks of it (a gate, a shared curve
model, its penalty flag). Methods that train once for the whole curve
(``pca``) keep what they trained in ``job.cache``, shared by the points of
one process, and report the shared training time on every point with
``shared_train = True`` so that a curve's cost counts it once. Adding a method
is one module that calls :func:`~benchmarks.sizing.method.register`; the
harness's ``--methods`` choices, penalty flags and plan follow from the
registry (docs/extending.md).
"""
from __future__ import annotations

from typing import Dict, Tuple

from benchmarks.sizing import dam, dam_prefix, fixed, l0, l1, matryoshka, pca, spectral  # noqa: F401 (register)
from benchmarks.sizing.job import Job, Split, Trained, curve_model, embedding_columns, probe_columns, trained_row
from benchmarks.sizing.method import METHODS, Penalty, SizingMethod, penalised, penalties, register

__all__ = ["METHODS", "Job", "Penalty", "SizingMethod", "Split", "Trained", "curve_model", "embedding_columns",
           "model_unit", "penalised", "penalties", "probe_columns", "register", "trained_row"]


def model_unit(entry: Dict) -> Tuple:
    """The runs of a sweep that share a trained model: a curve method's
    points of one dataset, seed and penalty weight; any other run alone.
    Parallel sweeps hand a unit to one process so that it trains once."""
    method = METHODS.get(entry["method"])  # node classification's supervised runs are no sizing method
    if method is not None and method.curve:
        return tuple(entry[c] for c in ("dataset", "seed", "method", "lam"))
    return tuple(sorted(entry.items()))
