"""Edge masking for MaskGAE's pretext task (Li et al., KDD 2023): hide part
of the training edges from the encoder and ask the decoder to reconstruct
them. Both strategies hide undirected edges (both directions at once), so a
hidden edge never reaches the encoder through its reverse."""
from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import Tensor

from damgraph.config import MASKINGS


def split_masked(pos: Tensor, hidden: Tensor) -> Tuple[Tensor, Tensor]:
    """The visible edges of :obj:`pos` (``[2, E]``, one direction each) in
    both directions, and the hidden ones (:obj:`hidden`, a boolean per edge)."""
    visible = pos[:, ~hidden]
    return torch.cat([visible, visible.flip(0)], dim=1), pos[:, hidden]


def mask_edges(pos: Tensor, ratio: float) -> Tensor:
    """Random edge masking: hide ``round(ratio * E)`` of the :obj:`pos`
    undirected edges (``[2, E]``, one direction each). Returns which edges
    are hidden (a boolean per edge; :func:`split_masked` splits them)."""
    hidden = torch.zeros(pos.size(1), dtype=torch.bool, device=pos.device)
    hidden[torch.randperm(pos.size(1), device=pos.device)[:max(1, int(round(ratio * pos.size(1))))]] = True
    return hidden


class PathMasker:
    """Path masking: random walks of :obj:`walk_length` steps from
    ``round(ratio * N)`` random root nodes hide every edge they cross, so
    the hidden edges form connected paths rather than scattered edges (MaskGAE's
    default, which makes the pretext task harder to solve from local
    overlap alone). The walk adjacency (CSR over both directions) is built
    once per graph.

    Args:
        pos (Tensor): The undirected training edges, ``[2, E]``, one direction each.
        num_nodes (int): Number of nodes.
        ratio (float): Fraction of nodes that start a walk.
        walk_length (int, optional): Steps per walk. (default: :obj:`3`)
    """

    def __init__(self, pos: Tensor, num_nodes: int, ratio: float, walk_length: int = 3):
        if walk_length < 1:
            raise ValueError(f"walk_length must be >= 1, got {walk_length}")
        self.pos, self.num_nodes, self.ratio, self.walk_length = pos, int(num_nodes), ratio, walk_length
        edge_id = torch.arange(pos.size(1), device=pos.device)
        src, dst = torch.cat([pos[0], pos[1]]), torch.cat([pos[1], pos[0]])
        order = src.argsort(stable=True)
        self.dst, self.edge_id = dst[order], torch.cat([edge_id, edge_id])[order]
        self.degree = torch.bincount(src, minlength=self.num_nodes)
        self.rowptr = torch.zeros(self.num_nodes + 1, dtype=torch.long, device=pos.device)
        torch.cumsum(self.degree, 0, out=self.rowptr[1:])

    def __call__(self) -> Tensor:
        """Which edges one draw hides (a boolean per edge)."""
        device = self.pos.device
        hidden = torch.zeros(self.pos.size(1), dtype=torch.bool, device=device)
        node = torch.randperm(self.num_nodes, device=device)[:max(1, int(round(self.ratio * self.num_nodes)))]
        for _ in range(self.walk_length):
            node = node[self.degree[node] > 0]  # a walk stops at a node without edges
            if node.numel() == 0:
                break
            slot = self.rowptr[node] + (torch.rand(node.numel(), device=device) * self.degree[node]).long()
            hidden[self.edge_id[slot]] = True
            node = self.dst[slot]
        if not hidden.any():  # nothing to reconstruct: hide one edge
            hidden[torch.randint(self.pos.size(1), (1,), device=device)] = True
        return hidden


def make_masker(pos: Tensor, num_nodes: int, masking: str, ratio: float,
                walk_length: int = 3) -> Callable[[], Tensor]:
    """A function drawing which edges of :obj:`pos` to hide (a boolean per
    edge) per call: :class:`PathMasker` for ``masking="path"``, :func:`mask_edges` for
    ``"edge"``."""
    if masking == "path":
        return PathMasker(pos, num_nodes, ratio, walk_length)
    if masking == "edge":
        return lambda: mask_edges(pos, ratio)
    raise ValueError(f"unknown masking {masking!r}: use one of {', '.join(MASKINGS)}")
