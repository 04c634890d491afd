"""Batched top-k against a per-user reference, on random vectors."""

import pytest
import torch

from graphrec.graph.csr import to_csr
from graphrec.ranking import topk_unseen


def per_user(uv, iv, indptr, indices, k):
    out = []
    for u in range(len(uv)):
        s = (iv.double() @ uv[u].double()).clone()
        s[indices[indptr[u] : indptr[u + 1]]] = float("-inf")
        out.append(torch.topk(s, k).indices)
    return torch.stack(out)


@pytest.mark.parametrize("batch_users", [1, 7, 64, 1000])
@pytest.mark.parametrize("dtypes", [(torch.float32, torch.float32), (torch.float64, torch.float32)])
def test_batched_top_k_equals_one_user_at_a_time(batch_users, dtypes):
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
