import torch

from damgraph.masking import PathMasker, make_masker, mask_edges, split_masked


def test_masking_hides_undirected_edges_and_path_walks_follow_edges():
    torch.manual_seed(0)
    pos = torch.tensor([[0, 1, 2, 3, 0, 5], [1, 2, 3, 4, 4, 6]])  # a 5-cycle and a separate edge
    hidden_mask = mask_edges(pos, 0.5)
    assert hidden_mask.dtype == torch.bool and int(hidden_mask.sum()) == 3
    visible, hidden = split_masked(pos, hidden_mask)
    assert hidden.size(1) == 3 and visible.size(1) == 2 * 3
    vis = set(map(tuple, visible.t().tolist()))
    for a, b in hidden.t().tolist():  # hidden in both directions
        assert (a, b) not in vis and (b, a) not in vis
    masker = PathMasker(pos, num_nodes=8, ratio=0.25, walk_length=3)  # 2 roots; node 7 has no edges
    for _ in range(20):
        visible, hidden = split_masked(pos, masker())
        assert 1 <= hidden.size(1) <= 6 and visible.size(1) == 2 * (6 - hidden.size(1))
        vis = set(map(tuple, visible.t().tolist()))
        assert not any((a, b) in vis or (b, a) in vis for a, b in hidden.t().tolist())


def test_make_masker_picks_the_strategy_and_refuses_unknown_ones():
    import pytest

    pos = torch.tensor([[0, 1, 2, 3, 0, 5], [1, 2, 3, 4, 4, 6]])
    assert isinstance(make_masker(pos, 7, "path", 0.5), PathMasker)
    torch.manual_seed(0)
    hidden = make_masker(pos, 7, "edge", 0.5)()
    torch.manual_seed(0)
    assert torch.equal(hidden, mask_edges(pos, 0.5)) and int(hidden.sum()) == 3
    with pytest.raises(ValueError, match="unknown masking 'nodes': use one of edge, path"):
        make_masker(pos, 7, "nodes", 0.5)
