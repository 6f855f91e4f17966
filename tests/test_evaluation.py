import pytest
import torch

from damgraph.evaluation import hits_at_k, mrr, ranking_metrics


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


def test_roc_auc_by_hand_and_against_scikit_learn():
    from sklearn.metrics import roc_auc_score

    from damgraph.evaluation import roc_auc

    # pairs: 0.9 beats all 3 negatives; 0.5 beats 0.1 and ties 0.5 (half) -> (3 + 1.5) / 6
    assert roc_auc(torch.tensor([0.9, 0.5]), torch.tensor([0.1, 0.5, 0.7])) == pytest.approx(4.5 / 6)
    gen = torch.Generator().manual_seed(0)
    for _ in range(25):  # many ties: integer scores
        pos = torch.randint(0, 4, (int(torch.randint(1, 40, (1,), generator=gen)),), generator=gen).float()
        neg = torch.randint(0, 4, (int(torch.randint(1, 40, (1,), generator=gen)),), generator=gen).float()
        y = [1] * len(pos) + [0] * len(neg)
        assert roc_auc(pos, neg) == pytest.approx(roc_auc_score(y, torch.cat([pos, neg]).numpy()), abs=1e-12)
    with pytest.raises(ValueError, match="at least one positive"):
        roc_auc(torch.tensor([]), torch.tensor([0.1]))
