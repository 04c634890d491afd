"""Batched top-k against a per-user reference, on random vectors."""

import pytest
import torch

from graphrec.graph.csr import to_csr
from graphrec.ranking import topk_unseen


@pytest.fixture(params=["block", "tiled"])
def kernel(request, monkeypatch):
    """Both CPU kernels: the score block, and the tiled one shrunk to tiny tiles and chunks
    (tiles of 24 items in chunks of 8, so every test crosses tile and chunk edges)."""
    from graphrec.ranking import topk

    if request.param == "tiled":
        monkeypatch.setattr(topk, "CHUNK", 8)
        monkeypatch.setattr(topk, "TILE", 24)
        monkeypatch.setattr(topk, "TILED_MIN", 2)
        monkeypatch.setattr(topk, "CANDIDATE_USERS", 7)
    else:
        monkeypatch.setattr(topk, "TILED_MIN", 10**12)
    return request.param


def per_user(uv, iv, indptr, indices, k):
    out = []
    for u in range(len(uv)):
        s = (iv.double() @ uv[u].double()).clone()
        s[indices[indptr[u] : indptr[u + 1]]] = float("-inf")
        out.append(torch.topk(s, k).indices)
    return torch.stack(out)


@pytest.mark.parametrize("batch_users", [1, 7, 64, 1000])
@pytest.mark.parametrize("dtypes", [(torch.float32, torch.float32), (torch.float64, torch.float32)])
def test_batched_top_k_equals_one_user_at_a_time(batch_users, dtypes, kernel):
    gen = torch.Generator().manual_seed(3)
    n_users, n_items, k = 50, 300, 10
    uv = torch.randn(n_users, 9, generator=gen).to(dtypes[0])
    iv = torch.randn(n_items, 9, generator=gen).to(dtypes[1])
    seen_u = torch.randint(0, n_users, (600,), generator=gen)
    seen_i = torch.randint(0, n_items, (600,), generator=gen)
    indptr, indices = to_csr(seen_u, seen_i, n_users)
    top, scores = topk_unseen(uv, iv, (indptr, indices), k, batch_users)
    assert torch.equal(top, per_user(uv, iv, indptr, indices, k))
    # no recommended item is one the user has already seen
    for u in range(n_users):
        assert not torch.isin(top[u], indices[indptr[u] : indptr[u + 1]]).any()
    assert (scores[:, :-1] >= scores[:, 1:]).all()


@pytest.mark.parametrize("n", [1_000, 50_000, 50_003])
def test_two_pass_top_k_equals_torch_topk(n):
    """The chunk-maxima pass finds torch.topk's scores exactly (the items too, where no
    two scores tie), with rows of -inf, a short tail chunk and one outstanding score."""
    from graphrec.ranking.topk import topk_rows

    gen = torch.Generator().manual_seed(n)
    s = torch.randn(64, n, generator=gen)
    s[3] = float("-inf")
    s[4, 10:] = float("-inf")
    s[5, n - 1] = 9.0  # in the tail chunk when n is not a multiple of the chunk
    want = torch.topk(s, 10, dim=1)
    val, idx = topk_rows(s, 10)
    assert torch.equal(val, want.values)
    finite = torch.isfinite(want.values)
    assert torch.equal(idx[finite], want.indices[finite])
    assert idx[5, 0] == n - 1


def test_users_with_few_or_no_unseen_items(kernel):
    """A user who has seen all but 3 items gets those 3 then -1 / -inf; one who has seen
    everything gets none; k above the catalogue lists every unseen item."""
    gen = torch.Generator().manual_seed(5)
    n_items = 61  # not a multiple of the tiny tiles or chunks
    uv, iv = torch.randn(4, 6, generator=gen), torch.randn(n_items, 6, generator=gen)
    left = torch.tensor([5, 33, 60])
    seen0 = torch.tensor([i for i in range(n_items) if i not in left.tolist()])
    u = torch.cat(
        [torch.zeros(len(seen0), dtype=torch.long), torch.ones(n_items, dtype=torch.long)]
    )
    i = torch.cat([seen0, torch.arange(n_items)])
    indptr, indices = to_csr(u, i, 4)
    top, scores = topk_unseen(uv, iv, (indptr, indices), 10, batch_users=3)
    assert sorted(top[0, :3].tolist()) == left.tolist() and (top[0, 3:] == -1).all()
    assert torch.isinf(scores[0, 3:]).all() and (top[1] == -1).all()
    assert torch.equal(top[2:], per_user(uv[2:], iv, torch.tensor([0, 0, 0]), indices[:0], 10))
    every, _ = topk_unseen(uv, iv, (indptr, indices), 100, batch_users=2)
    assert (every[2] >= 0).sum() == n_items and (every[0] >= 0).sum() == 3


def test_empty_catalogue_and_wide_vectors(monkeypatch, kernel):
    """No items: every user gets -1 rows. Vectors wider than TILED_MAX_WIDTH (an item-item
    model's) never take the tiled kernel, whose rescoring would gather them per user."""
    from graphrec.ranking import topk

    ex = (torch.zeros(4, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    top, scores = topk_unseen(torch.randn(3, 5), torch.randn(0, 5), ex, 4)
    assert (top == -1).all() and torch.isinf(scores).all()

    def refuse(*a, **kw):
        raise AssertionError("tiled kernel used for wide vectors")

    monkeypatch.setattr(topk, "topk_tiled", refuse)
    wide = topk.TILED_MAX_WIDTH + 1
    top, _ = topk_unseen(torch.randn(3, wide), torch.randn(40, wide), ex, 4)
    assert (top >= 0).all()


def test_a_bfloat16_first_pass_ranks_as_float32_with_float32_scores():
    """Real-size tiles and chunks: the bfloat16 scan finds float32's items, and the scores
    (rescored) are float32's to the bit."""
    gen = torch.Generator().manual_seed(5)
    n_users, n_items, k = 300, 20_000, 10
    uv, iv = torch.randn(n_users, 33, generator=gen), torch.randn(n_items, 33, generator=gen)
    seen = to_csr(
        torch.randint(0, n_users, (6000,), generator=gen),
        torch.randint(0, n_items, (6000,), generator=gen),
        n_users,
    )
    top32, s32 = topk_unseen(uv, iv, seen, k, 128)
    top16, s16 = topk_unseen(uv, iv, seen, k, 128, scan="bfloat16")
    assert torch.equal(top16, top32) and torch.equal(s16, s32)
    assert torch.equal(top32, per_user(uv, iv, *seen, k))
    with pytest.raises(ValueError, match="scan='float16'"):
        topk_unseen(uv, iv, seen, k, 128, scan="float16")
