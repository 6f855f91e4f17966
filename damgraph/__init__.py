"""damgraph: compact node embeddings whose size is learned by DiscriminAtive Masking."""
from damgraph.mask import DAMMask, SizeGate, active_widths, dam_masks, dam_penalty, gate_penalty
from damgraph.encoders import GCNEncoder, GNNEncoder
from damgraph.models import (DAMVGAE, MaskGAE, build_autoencoder, build_classifier, count_parameters,
                             make_optimizer)
from damgraph.compact import compact
from damgraph.datasets import DatasetNotFoundError, load_dataset
from damgraph.linkpred import LinkPredConfig, split_edges, train_link_prediction
from damgraph.nodeclf import NodeClfConfig, train_node_classifier
from damgraph.graphs import GraphInputError, prepare_graph
from damgraph.estimator import DAMEmbedding
from damgraph.io import load_embeddings, save_embeddings

__version__ = "0.1.0"

__all__ = [
    "DAMMask", "GCNEncoder", "GNNEncoder", "DAMVGAE", "MaskGAE", "build_autoencoder", "build_classifier", "compact",
    "count_parameters", "make_optimizer", "dam_masks", "dam_penalty", "active_widths", "SizeGate",
    "gate_penalty",
    "load_dataset", "DatasetNotFoundError", "LinkPredConfig", "split_edges", "train_link_prediction",
    "NodeClfConfig", "train_node_classifier", "DAMEmbedding", "prepare_graph", "GraphInputError",
    "save_embeddings", "load_embeddings", "__version__",
]
