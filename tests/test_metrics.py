import pytest
import torch

from damgraph.metrics import hits_at_k, mrr, ranking_metrics


def test_hits_at_k_by_hand():
    pos = torch.tensor([0.9, 0.5, 0.3, 0.75])
    neg = torch.tensor([0.8, 0.1, 0.7, 0.2, 0.6])
    # 1st highest negative 0.8: only 0.9 beats it; 2nd 0.7: 0.9 and 0.75; 3rd 0.6: also 0.75; 5th 0.1: all
    assert hits_at_k(pos, neg, 1) == 0.25
    assert hits_at_k(pos, neg, 2) == 0.5
    assert hits_at_k(pos, neg, 3) == 0.5
    assert hits_at_k(pos, neg, 5) == 1.0
    assert hits_at_k(pos, neg, 6) == 1.0  # fewer negatives than K
    assert hits_at_k(torch.tensor([0.7]), neg, 2) == 0.0  # a tie is not a hit


def test_mrr_by_hand_with_ties_counted_half():
    pos = torch.tensor([0.9, 0.5, 0.4])
    neg = torch.tensor([[0.1, 0.2, 0.3],    # rank 1
                        [0.6, 0.7, 0.1],    # rank 3
                        [0.4, 0.9, 0.0]])   # one above, one tie: rank 0.5 * (1 + 2) + 1 = 2.5
    assert mrr(pos, neg) == pytest.approx((1 + 1 / 3 + 1 / 2.5) / 3)
    with pytest.raises(ValueError, match="must be \\[P, N\\]"):
        mrr(pos, neg[:2])


def test_ranking_metrics_keys():
    out = ranking_metrics(torch.tensor([1.0]), torch.zeros(200), torch.zeros(1, 5))
    assert out == {"hits@10": 1.0, "hits@20": 1.0, "hits@50": 1.0, "hits@100": 1.0, "mrr": 1.0}
