"""Baselines against hand computations and planted structure."""

import warnings

import pytest
import torch

from graphrec.compare import baselines as B
from graphrec.errors import ConfigError


def history(pairs, n_users, n_items, ratings=None):
    u, i = zip(*pairs, strict=True)
    r = None if ratings is None else torch.tensor(ratings)
    return B.History(torch.tensor(u), torch.tensor(i), n_users, n_items, r)


def test_item_knn_scores_are_sums_of_cosines_by_hand():
    # user 0: items 0, 1; user 1: items 1, 2; user 2: item 2
    h = history([(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)], 3, 3)
    knn = B.ItemKNN(h, neighbours=None)
    # cos(0,1) = 1/sqrt(1*2); cos(1,2) = 1/sqrt(2*2); cos(0,2) = 0
    c01, c12 = 1 / 2**0.5, 1 / 2
    # a user's own items add nothing to themselves (the diagonal is zero)
    expected = torch.tensor([[c01, c01, c12], [c01, c12, c12], [0.0, c12, 0.0]])
    assert torch.allclose(knn.scores(0, 3), expected, atol=1e-6)
    # one neighbour per item keeps only the strongest column entry
    top1 = B.ItemKNN(h, neighbours=1)
    assert int((top1.sim > 0).sum(0).max()) == 1


def test_bias_model_recovers_planted_biases():
    pairs = [(u, i) for u in range(6) for i in range(5)]
    bu, bi = torch.linspace(-1, 1, 6), torch.linspace(-0.5, 0.5, 5)
    ratings = [3.0 + float(bu[u] + bi[i]) for u, i in pairs]
    m = B.BiasModel(history(pairs, 6, 5, ratings), reg=1e-6, sweeps=30)
    pred = m.predict(torch.tensor([u for u, _ in pairs]), torch.tensor([i for _, i in pairs]))
    assert torch.allclose(pred, torch.tensor(ratings), atol=1e-3)


def test_biased_mf_learns_a_low_rank_signal_the_bias_model_cannot():
    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(30, 2, generator=g), torch.randn(25, 2, generator=g)
    pairs = [(u, i) for u in range(30) for i in range(25) if (u * 7 + i) % 3]
    ratings = [3.0 + float(p[u] @ q[i]) for u, i in pairs]
    h = history(pairs, 30, 25, ratings)
    u, i = h.users, h.items
    mf = B.BiasedMF(h, factors=4, reg=0.0, epochs=150, seed=0, lr=0.02, batch=128)
    bias = B.BiasModel(h, reg=0.1)
    mse = lambda m: float(((m.predict(u, i) - h.ratings) ** 2).mean())  # noqa: E731
    assert mse(mf) < 0.25 * mse(bias)


def test_als_and_bpr_recommend_inside_the_users_block(monkeypatch):
    pytest.importorskip("implicit", reason="the ALS/BPR baselines need the implicit package")
    import implicit.utils

    pairs = [(u, i) for u in range(20) for i in range(10) if (u < 10) == (i < 5) and (u + i) % 3]
    h = history(pairs, 20, 10)
    # implicit checks the BLAS threads once per process: make it check here
    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its "OpenBLAS is configured to use N threads"
        models = (
            B.als(h, factors=4, regularization=0.01, iterations=20, seed=0),
            B.bpr(h, factors=4, learning_rate=0.05, iterations=200, seed=0),
        )
    for model in models:
        scores = model.scores(0, 20)
        scores[h.users, h.items] = float("-inf")
        best = scores.argmax(1)
        inside = [(u < 10) == (int(best[u]) < 5) for u in range(20)]
        assert sum(inside) >= 18, type(model)


def test_popularity_ranks_by_count_for_everyone():
    h = history([(0, 2), (1, 2), (2, 2), (0, 1), (1, 1), (2, 0)], 3, 4)
    s = B.popularity(h).scores(0, 3)
    assert s.argsort(1, descending=True)[:, :3].tolist() == [[2, 1, 0]] * 3


def test_als_rating_weights_need_ratings_and_change_the_fit():
    pytest.importorskip("implicit", reason="the ALS baseline needs the implicit package")
    pairs = [(u, i) for u in range(12) for i in range(8) if (u + i) % 3]
    ratings = [5.0 if (u * i) % 2 else 1.0 for u, i in pairs]
    with pytest.raises(ConfigError, match="needs rated edges"):
        B.als(history(pairs, 12, 8), 4, 0.1, 5, seed=0, low_label_weight=0.3)
    h = history(pairs, 12, 8, ratings)
    plain = B.als(h, 4, 0.1, 5, seed=0).scores(0, 12)
    rated = B.als(h, 4, 0.1, 5, seed=0, low_label_weight=0.1).scores(0, 12)
    same = B.als(h, 4, 0.1, 5, seed=0, low_label_weight=1.0).scores(0, 12)
    assert torch.allclose(plain, same, atol=1e-4)  # weight 1 below the threshold: binary ALS
    assert not torch.allclose(plain, rated, atol=1e-3)


def test_bpr_is_reproducible_from_its_seed():
    pytest.importorskip("implicit", reason="the BPR baseline needs the implicit package")
    gen = torch.Generator().manual_seed(0)
    users, items = (
        torch.randint(0, 300, (20_000,), generator=gen),
        torch.randint(0, 2000, (20_000,), generator=gen),
    )
    h = B.History(users, items, 300, 2000, None)
    a, b = (B.bpr(h, factors=16, learning_rate=0.05, iterations=20, seed=3) for _ in range(2))
    assert torch.equal(a.scores(0, 300), b.scores(0, 300))


def test_ease_matches_its_closed_form_by_hand():
    # 4 users, 3 items; B = I - P diag(1/diag(P)), P = (X^T X + lam I)^-1, diag(B) = 0
    pairs = [(0, 0), (0, 1), (1, 1), (1, 2), (2, 0), (2, 2), (3, 1)]
    h = history(pairs, 4, 3)
    lam = 2.0
    x = h.matrix().double()
    p = torch.linalg.inv(x.t() @ x + lam * torch.eye(3, dtype=torch.float64))
    b = torch.eye(3, dtype=torch.float64) - p / p.diagonal().unsqueeze(0)
    b.fill_diagonal_(0.0)
    ease = B.EASE(h, lam=lam)
    assert torch.allclose(ease.b.double(), b, atol=1e-5)
    assert torch.allclose(ease.scores(0, 4).double(), x @ b, atol=1e-5)
    assert torch.allclose(ease.scores(1, 3).double(), (x @ b)[1:3], atol=1e-5)


def test_ease_with_rating_weights_down_weights_low_rated_edges():
    pairs = [(0, 0), (0, 1), (1, 1), (1, 2), (2, 0), (2, 2)]
    ratings = [5.0, 2.0, 4.0, 1.0, 4.5, 5.0]
    h = history(pairs, 3, 3, ratings)
    ease = B.EASE(h, lam=1.0, low_label_weight=0.3, threshold=4.0)
    x = torch.tensor([[1.0, 0.3, 0], [0, 1.0, 0.3], [1.0, 0, 1.0]])
    assert torch.allclose(torch.from_numpy(ease.x.toarray()), x)
    with pytest.raises(ConfigError, match="needs rated edges"):
        B.EASE(history(pairs, 3, 3), lam=1.0, low_label_weight=0.3)


def test_ease_learns_co_occurrence_inside_blocks():
    pairs = [(u, i) for u in range(20) for i in range(10) if (u < 10) == (i < 5) and (u + i) % 3]
    scores = B.EASE(history(pairs, 20, 10), lam=1.0).scores(0, 20)
    inside = torch.tensor([[(u < 10) == (i < 5) for i in range(10)] for u in range(20)])
    assert scores[inside].mean() > 0.2 and scores[~inside].abs().max() < 1e-4


def test_ease_refuses_a_catalogue_too_large_for_memory_naming_the_size():
    h = history([(0, 0)], 1, 50_000)
    with pytest.raises(ConfigError, match=r"ease: 50,000 items need 3 dense 50,000 x 50,000"):
        B.EASE(h, lam=1.0, memory_bytes=16 * 2**30)  # 27.9 GiB > half of 16 GiB


def test_common_neighbours_and_adamic_adar_against_brute_force():
    import math

    from graphrec.compare.baselines import History, SharedNeighbours

    pairs = [(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (1, 3)]
    both = pairs + [(b, a) for a, b in pairs]
    h = History(torch.tensor([a for a, _ in both]), torch.tensor([b for _, b in both]), 5, 5)
    nbrs = {v: {b for a, b in both if a == v} for v in range(5)}
    cn, aa = SharedNeighbours(h, False).scores(0, 5), SharedNeighbours(h, True).scores(1, 3)
    for u in range(5):
        for v in range(5):
            shared = nbrs[u] & nbrs[v]
            assert cn[u, v] == len(shared)
            if 1 <= u < 3:
                want = sum(1 / math.log(len(nbrs[z])) for z in shared if len(nbrs[z]) > 1)
                assert abs(float(aa[u - 1, v]) - want) < 1e-5


def test_embedding_knn_scores_cosines_to_the_mean_of_the_users_items():
    # unit-length item vectors after normalising: the raw lengths must not matter
    iv = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [-5.0, 0.0]])
    h = history([(0, 0), (0, 1), (1, 3)], 3, 4)
    s = B.embedding_knn(h, iv).scores(0, 3)
    unit = torch.nn.functional.normalize(iv, dim=1)
    mean0 = (unit[0] + unit[1]) / 2
    assert torch.allclose(s[0], unit @ mean0, atol=1e-6)
    assert s[0].argmax() == 2  # (1, 1) is nearest to the mean of (1, 0) and (0, 1)
    assert torch.allclose(s[1], unit @ unit[3], atol=1e-6) and s[1].argmax() == 3
    assert torch.equal(s[2], torch.zeros(4))  # no history: no preference
