"""The fast sorts of node ids give torch's results in every size and range they choose by."""

import pytest
import torch

from graphrec.graph.csr import TORCH_RADIX_FROM, argsort_ids, sort_ids

BOUNDS = (1, 300, 1 << 15, (1 << 15) + 1, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 1 << 24, 1 << 31)
SIZES = (0, 1, 2, 1000, TORCH_RADIX_FROM - 1, TORCH_RADIX_FROM, 50_000)


@pytest.mark.parametrize("bound", BOUNDS)
def test_argsort_ids_is_torchs_stable_argsort(bound):
    g = torch.Generator().manual_seed(bound % 1000)
    for n in SIZES:
        ids = torch.randint(0, bound, (n,), generator=g)
        if n > 2:  # both ends of the key range, and repeats to keep in order
            ids[:3] = torch.tensor([bound - 1, 0, bound - 1])
        got = argsort_ids(ids, bound)
        assert got.dtype == torch.long
        assert torch.equal(got, torch.argsort(ids, stable=True)), (bound, n)


@pytest.mark.parametrize("bound", BOUNDS)
def test_sort_ids_is_torchs_sort(bound):
    g = torch.Generator().manual_seed(bound % 997)
    for n in SIZES:
        ids = torch.randint(0, bound, (n,), generator=g)
        got = sort_ids(ids, bound)
        assert got.dtype == torch.long
        assert torch.equal(got, torch.sort(ids).values), (bound, n)
