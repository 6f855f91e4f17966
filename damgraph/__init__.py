"""damgraph: compact node embeddings whose size is learned by DiscriminAtive Masking.

The names below are imported on first use (PEP 562), so that the command
line's ``--help`` answers without loading torch.
"""
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: Each public name and the module that defines it.
_WHERE = {
    "LinkPredConfig": "config", "NodeClfConfig": "config", "model_config": "config",
    "DAMGate": "gates", "SizeGate": "gates", "dam_gates": "gates", "dam_penalty": "gates",
    "gate_penalty": "gates", "gate_widths": "gates",
    "GNNEncoder": "encoders",
    "DAMVGAE": "models", "MaskGAE": "models", "build_autoencoder": "models", "build_classifier": "models",
    "count_parameters": "models", "make_optimizer": "models",
    "compact": "compaction",
    "DatasetNotFoundError": "datasets", "load_dataset": "datasets",
    "split_edges": "splits", "link_split": "splits",
    "LinkPredTask": "linkpred", "train_link_prediction": "linkpred",
    "train_node_classifier": "nodeclf",
    "GraphInputError": "graphs", "prepare_graph": "graphs",
    "DAMEmbedding": "estimator",
    "load_embeddings": "io", "save_embeddings": "io",
}

__all__ = [*_WHERE, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'damgraph' has no attribute {name!r}")
    value = getattr(import_module(f"damgraph.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(__all__)
