"""How the embedding size is chosen: one module per method behind one interface.

A method is a function ``run(job) -> dict`` that returns the result columns of
one point of the size curve (``width``, test and validation scores,
seconds, parameters) for ``job.config.dim``. Methods that train once for the
whole curve (``pca``) keep what they trained in ``job.cache``, shared by
the points of one process, and report the shared training time on every point
with ``shared_train = True`` so that a curve's cost counts it once. Adding a
method is one module with a ``run`` function, registered in :data:`METHODS`.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence, Tuple

from benchmarks.sizing import dam, dam_prefix, fixed, l0, l1, matryoshka, pca, spectral
from benchmarks.sizing.job import Job, Split, Trained, curve_model, embedding_columns, probe_columns, trained_row

__all__ = ["METHODS", "CURVE_METHODS", "GATELESS", "LAMBDA_GRIDS", "Job", "Split", "Trained", "curve_model",
           "embedding_columns", "model_unit", "probe_columns", "trained_row"]

METHODS: Dict[str, Callable[[Job], Dict]] = {
    "fixed": fixed.run,
    "dam": dam.run,
    "dam-prefix": dam_prefix.run,
    "dam-nested": dam_prefix.run_nested,
    "pca": pca.run,
    "l1": l1.run,
    "l0": l0.run,
    "matryoshka": matryoshka.run,
    "spectral": spectral.run,
}
#: Methods whose models have no size gate: the gate settings do not enter their runs' ids.
GATELESS = ("fixed", "pca", "matryoshka", "spectral")
#: Methods whose points of the size curve share one trained model (per dataset, seed and penalty).
CURVE_METHODS = ("pca", "matryoshka", "dam-prefix", "dam-nested")


def model_unit(entry: Dict) -> Tuple:
    """The runs of a sweep that share a trained model: a curve method's
    points of one dataset, seed and penalty weight; any other run alone.
    Parallel sweeps hand a unit to one process so that it trains once."""
    if entry["method"] in CURVE_METHODS:
        return tuple(entry[c] for c in ("dataset", "seed", "method", "lam"))
    return tuple(sorted(entry.items()))


# Methods trained over a grid of penalty weights, and the default grid of each. Chosen on
# Cora seed 0 from 128 dimensions by the learned widths and validation AUC (never test):
# dam 0.01/0.03/0.1/0.3 -> widths 57/29/15/7; l1 0.003/0.01/0.03 -> 84/33/93 (at 0.1 and up
# every scale shrinks alike and all 128 stay above the relative threshold); l0
# 0.003/0.01/0.03 -> 94/32/13 (0.1 collapses: val AUC 0.85).
LAMBDA_GRIDS: Dict[str, Sequence[float]] = {"dam": (0.01, 0.03, 0.1, 0.3), "l1": (0.003, 0.01, 0.03),
                                            "l0": (0.003, 0.01, 0.03)}
