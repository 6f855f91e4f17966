"""damgraph: compact node embeddings whose size is learned by DiscriminAtive Masking."""
from damgraph.config import LinkPredConfig, NodeClfConfig, model_config
from damgraph.gates import DAMGate, SizeGate, dam_gates, dam_penalty, gate_penalty, gate_widths
from damgraph.encoders import GNNEncoder
from damgraph.models import (DAMVGAE, MaskGAE, build_autoencoder, build_classifier, count_parameters,
                             make_optimizer)
from damgraph.compact import compact
from damgraph.datasets import DatasetNotFoundError, load_dataset
from damgraph.splits import split_edges
from damgraph.linkpred import LinkPredTask, train_link_prediction
from damgraph.nodeclf import train_node_classifier
from damgraph.graphs import GraphInputError, prepare_graph
from damgraph.estimator import DAMEmbedding
from damgraph.io import load_embeddings, save_embeddings

__version__ = "0.1.0"

__all__ = [
    "DAMGate", "SizeGate", "GNNEncoder", "DAMVGAE", "MaskGAE", "build_autoencoder", "build_classifier",
    "compact", "count_parameters", "make_optimizer", "dam_gates", "dam_penalty", "gate_penalty", "gate_widths",
    "LinkPredConfig", "NodeClfConfig", "model_config", "load_dataset", "DatasetNotFoundError", "split_edges",
    "LinkPredTask", "train_link_prediction", "train_node_classifier", "DAMEmbedding", "prepare_graph",
    "GraphInputError", "save_embeddings", "load_embeddings", "__version__",
]
