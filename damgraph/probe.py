"""Linear probe of frozen node embeddings (scikit-learn logistic regression)."""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def linear_probe(z: torch.Tensor, data: Data, c_grid: Sequence[float] = C_GRID, seed: int = 0) -> Dict[str, float]:
    """Accuracy of a logistic regression on frozen embeddings :obj:`z`: fitted
    on ``data.train_mask`` (standardised with the training nodes' statistics),
    its inverse regularisation ``C`` chosen on ``data.val_mask``, scored once
    on ``data.test_mask`` (Planetoid's public split, or Shchur et al.'s
    20/30 nodes per class on the graphs without one)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = z.detach().cpu().numpy().astype(np.float64)
    y = data.y.cpu().numpy()
    train, val, test = (m.cpu().numpy() for m in (data.train_mask, data.val_mask, data.test_mask))
    best = None
    for c in c_grid:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=seed))
        clf.fit(x[train], y[train])
        val_acc = float((clf.predict(x[val]) == y[val]).mean())
        if best is None or val_acc > best[0]:
            best = (val_acc, c, clf)
    val_acc, c, clf = best
    return {"probe_acc": float((clf.predict(x[test]) == y[test]).mean()), "probe_val_acc": val_acc, "probe_C": c}
