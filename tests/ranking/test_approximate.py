"""Approximate top-k through the FAISS index, against exact top-k on random vectors."""

import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.graph.csr import to_csr
from graphrec.ranking import topk_unseen
from graphrec.ranking.approximate import (
    MAX_EXTRA,
    MIPSIndex,
    _rows,
    recall,
    topk_unseen_approximate,
)


def vectors(n_users=300, n_items=4000, dim=16, seed=0):
    """Clustered vectors (as trained embeddings are), so that an index has structure."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(40, dim, generator=gen)
    iv = centres[torch.randint(0, 40, (n_items,), generator=gen)] + torch.randn(
        n_items, dim, generator=gen
    )
    uv = centres[torch.randint(0, 40, (n_users,), generator=gen)] + torch.randn(
        n_users, dim, generator=gen
    )
    seen_u = torch.randint(0, n_users, (6000,), generator=gen)
    seen_i = torch.randint(0, n_items, (6000,), generator=gen)
    return uv, iv, to_csr(seen_u, seen_i, n_users)


def never_seen(top, exclude):
    indptr, indices = exclude
    return all(
        not torch.isin(top[u], indices[indptr[u] : indptr[u + 1]]).any() for u in range(len(top))
    )


def test_full_recall_target_equals_exact():
    uv, iv, ex = vectors()
    exact, exact_scores = topk_unseen(uv, iv, ex, 10)
    top, scores, report = topk_unseen_approximate(uv, iv, ex, 10, batch_users=64, target_recall=1.0)
    assert report.recall_at_k == 1.0
    assert torch.equal(top, exact)
    assert torch.allclose(scores, exact_scores, atol=1e-4)


def test_reported_recall_is_the_measured_recall_and_fewer_probes_cost_recall():
    uv, iv, ex = vectors()
    exact, exact_scores = topk_unseen(uv, iv, ex, 10)
    top, scores, report = topk_unseen_approximate(uv, iv, ex, 10, target_recall=0.8, lists=64)
    # every user was in the tuning sample (300 < 1000): the report is the whole run's recall
    assert report.sample_users == 300 and report.lists == 64
    assert report.recall_at_k == pytest.approx(recall(scores, exact_scores))
    ids = torch.tensor(
        [len(set(a.tolist()) & set(e.tolist())) for a, e in zip(top, exact, strict=True)]
    )
    assert report.recall_at_k == pytest.approx(float(ids.sum()) / exact.numel())  # no ties
    assert report.recall_at_k >= 0.8
    assert never_seen(top, ex)
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    index = MIPSIndex(iv, 64)
    _, one, short = index.search_unseen(uv, ex, 10, 1)
    one[short] = exact_scores[short]
    full = index.search_unseen(uv, ex, 10, 64)[1]
    assert recall(one, exact_scores) < recall(full, exact_scores) == 1.0


def test_recall_counts_an_item_tied_with_the_kth_as_found():
    exact = torch.tensor([[3.0, 2.0, 1.0], [5.0, 1.0, float("-inf")]])
    assert recall(torch.tensor([[3.0, 2.0, 1.0], [5.0, 1.0, 0.5]]), exact) == 1.0
    assert recall(torch.tensor([[3.0, 1.0, 0.5], [5.0, 0.9, 0.5]]), exact) == pytest.approx(3 / 5)


def test_a_history_longer_than_the_candidates_is_scored_exactly():
    uv, iv, _ = vectors(n_users=5, n_items=3000)
    # user 0 has seen the 2,000 items it likes best: more than k + MAX_EXTRA candidates
    best = torch.topk(iv @ uv[0], 2000).indices
    assert len(best) > 10 + MAX_EXTRA
    ex = to_csr(torch.zeros(2000, dtype=torch.long), best, 5)
    exact, _ = topk_unseen(uv, iv, ex, 10)
    top, _, report = topk_unseen_approximate(uv, iv, ex, 10, target_recall=1.0, lists=8)
    assert torch.equal(top, exact) and never_seen(top, ex)
    assert report.exact_fallback_users >= 1


def test_a_user_with_fewer_unseen_items_than_k_gets_fewer():
    uv, iv, _ = vectors(n_users=3, n_items=200)
    ex = to_csr(torch.zeros(195, dtype=torch.long), torch.arange(195), 3)
    top, scores, _ = topk_unseen_approximate(uv, iv, ex, 10, target_recall=1.0)
    assert (top[0] >= 0).sum() == 5 and set(top[0][:5].tolist()) == set(range(195, 200))
    assert torch.isinf(scores[0, 5:]).all() and (top[1:] >= 0).all()


def test_rows_selects_csr_rows():
    ex = to_csr(torch.tensor([0, 0, 2, 3, 3, 3]), torch.tensor([5, 6, 7, 8, 9, 1]), 4)
    ptr, idx = _rows(ex, torch.tensor([3, 0]))
    assert ptr.tolist() == [0, 3, 5] and idx.tolist() == [8, 9, 1, 5, 6]


def test_config_refuses_an_unknown_method_and_a_recall_above_one():
    from graphrec.config import load_config

    with pytest.raises(ConfigError, match="recommend.method"):
        load_config(None, ["recommend.method=fast"])
    with pytest.raises(ConfigError, match="target_recall"):
        load_config(None, ["recommend.target_recall=1.5"])
