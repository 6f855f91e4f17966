"""``fixed``: a plain model trained at each size (one run per size)."""
from dataclasses import replace

from damgraph.linkpred import train_link_prediction


def run(job) -> dict:
    return train_link_prediction(job.split, replace(job.config, dam=False)).row()
