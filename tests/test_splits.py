import pytest
import torch

from damgraph.splits import NegativeSampler


@pytest.mark.parametrize("num_nodes", [50, 5000])  # the bit-table and the sorted-key lookups
def test_negative_sampler_never_returns_an_edge_or_a_self_loop(num_nodes):
    gen = torch.Generator().manual_seed(0)
    edge_index = torch.randint(num_nodes, (2, 4 * num_nodes), generator=gen)
    torch.manual_seed(0)
    sampler = NegativeSampler(edge_index, num_nodes)
    assert (sampler.table is None) == (num_nodes > NegativeSampler.TABLE_NODES)
    pairs = sampler(20000)
    assert pairs.shape == (2, 20000)
    edges = set(map(tuple, edge_index.t().tolist())) | set(map(tuple, edge_index.flip(0).t().tolist()))
    assert not any(tuple(p) in edges for p in pairs.t().tolist())
    assert bool((pairs[0] != pairs[1]).all())
    assert 0.3 < pairs.float().mean().item() / (num_nodes - 1) < 0.7  # spread over all nodes


