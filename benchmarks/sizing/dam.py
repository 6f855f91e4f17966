"""``dam``: DAM from a starting width; each run learns its width (one point)."""
from dataclasses import replace

from damgraph.linkpred import train_link_prediction


def run(job) -> dict:
    return train_link_prediction(job.split, replace(job.config, dam=True)).row()
