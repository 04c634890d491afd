"""Approximate top-k unseen items: a FAISS inverted-file index over the item vectors
(``recommend.method: approximate``), for catalogues where scoring every item per user costs
too much.

The index is IVF-Flat under inner product: the items are clustered into ``lists`` cells
(k-means, default ``sqrt(items)``), a query scores the cell centroids and then only the
items of its ``probes`` best cells. Vectors are stored uncompressed, so a returned score is
the exact inner product; only the candidate set is approximate.

The number of probes chooses itself: on a seeded sample of users (``tune_users``) the exact
top-k is computed and the probes are doubled until recall@k against it reaches
``target_recall``. That recall is reported with the result (:class:`IndexReport`), so
the approximation is always measured, never assumed.

Seen items are excluded by asking the index for ``k`` plus the batch's largest history
(capped) and dropping a user's seen items; a user left with fewer than ``k`` unseen items
that exist (a long history, or cells too small) is scored exactly. Cost per user:
``lists * dim`` for the centroids plus ``probes * items / lists * dim`` for the cells,
against ``items * dim`` exactly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from graphrec.errors import RunError
from graphrec.ranking.topk import topk_unseen

MAX_EXTRA = 1024
"""At most this many candidates beyond ``k`` per user to make room for seen items."""
TRAIN_PER_CELL = 64
"""k-means training points per cell (FAISS wants 39 to 256): 1M items in 1,000 cells
build in seconds on 2 cores, where 256 per cell and 4,000 cells took 43 s."""


def _faiss():
    try:
        import faiss
    except ImportError:  # a slim install
        raise RunError(
            "recommend.method=approximate needs FAISS: pip install faiss-cpu "
            "(or use recommend.method=exact)"
        ) from None
    return faiss


@dataclasses.dataclass
class IndexReport:
    """What an approximate top-k did, for the run's metrics."""

    lists: int
    probes: int
    recall_at_k: float
    """Recall@k against exact top-k on ``sample_users`` seeded users."""
    sample_users: int
    exact_fallback_users: int = 0
    """Users scored exactly because the index gave fewer than k unseen items."""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class MIPSIndex:
    """An IVF-Flat inner-product index over ``item_vectors`` (rows are item ids)."""

    def __init__(self, item_vectors: Tensor, lists: int | None = None, seed: int = 0) -> None:
        faiss = _faiss()
        x = np.ascontiguousarray(item_vectors.detach().float().cpu().numpy())
        n, dim = x.shape
        if n == 0:
            raise RunError("recommend: no items to index")
        most = max(1, n // 39)  # FAISS wants >= 39 training points per cell
        self.lists = max(1, min(lists or round(math.sqrt(n)), most))
        self.num_items = n
        faiss.omp_set_num_threads(torch.get_num_threads())
        self.quantizer = faiss.IndexFlatIP(dim)
        self.index = faiss.IndexIVFFlat(self.quantizer, dim, self.lists, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = self.lists * TRAIN_PER_CELL
        sample = x if n <= train else x[rng.choice(n, train, replace=False)]
        self.index.cp.seed = seed
        self.index.train(sample)
        self.index.add(x)

    def search(self, queries: Tensor, k: int, probes: int) -> tuple[Tensor, Tensor]:
        """``(scores [Q, k], items [Q, k])`` best first; ``-1`` / ``-inf`` where the probed
        cells hold fewer than ``k`` items."""
        self.index.nprobe = max(1, min(probes, self.lists))
        q = np.ascontiguousarray(queries.detach().float().cpu().numpy())
        scores, items = self.index.search(q, min(k, self.num_items))
        scores, items = torch.from_numpy(scores), torch.from_numpy(items)
        scores[items < 0] = float("-inf")
        return scores, items

    def search_unseen(
        self, queries: Tensor, exclude: tuple[Tensor, Tensor], k: int, probes: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Top ``k`` per query that ``exclude`` (CSR over the queries) does not list:
        ``(items [Q, k], scores [Q, k], short [Q] bool)``; ``short`` marks queries that got
        fewer than ``min(k, unseen items)`` and need exact scoring."""
        indptr, indices = exclude
        q = len(queries)
        deg = indptr[1:] - indptr[:-1]
        extra = min(int(deg.max()) if q else 0, MAX_EXTRA)
        scores, found = self.search(queries, k + extra, probes)
        rows = torch.repeat_interleave(torch.arange(q), deg)
        n = self.num_items
        seen = torch.isin(torch.arange(q).unsqueeze(1) * n + found, rows * n + indices)
        ok = (found >= 0) & ~seen
        place = torch.cumsum(ok.long(), 1) - 1
        ok &= place < k
        items = torch.full((q, k), -1, dtype=torch.long)
        top = torch.full((q, k), float("-inf"))
        r = torch.arange(q).unsqueeze(1).expand_as(found)
        items[r[ok], place[ok]] = found[ok].long()
        top[r[ok], place[ok]] = scores[ok]
        distinct = torch.bincount(  # a list may repeat an item: count each once
            torch.unique(rows * n + indices) // n, minlength=q
        )
        needed = torch.clamp(n - distinct, max=k)
        return items, top, ok.sum(1) < needed


def _rows(exclude: tuple[Tensor, Tensor], rows: Tensor) -> tuple[Tensor, Tensor]:
    """The CSR lists of ``rows`` only, as a CSR over them."""
    indptr, indices = exclude
    lo, hi = indptr[rows], indptr[rows + 1]
    deg = hi - lo
    ptr = torch.zeros(len(rows) + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(deg, 0)
    starts = torch.repeat_interleave(lo - ptr[:-1], deg)
    return ptr, indices[torch.arange(int(ptr[-1])) + starts]


def recall(approx_scores: Tensor, exact_scores: Tensor) -> float:
    """Recall@k of an approximate top-k against the exact one, by score: an approximate
    item counts as found when its (true) score reaches the exact k-th score, so items tied
    with the k-th are interchangeable, as they are for exact top-k (whose order among ties
    is arbitrary). Users without exact results are left out."""
    valid = torch.isfinite(exact_scores)
    count = valid.sum(1)
    kth = torch.where(
        count > 0, exact_scores.gather(1, (count - 1).clamp(min=0).unsqueeze(1)).squeeze(1), 0.0
    )
    tol = 1e-5 * kth.abs() + 1e-6
    hits = (torch.isfinite(approx_scores) & (approx_scores >= (kth - tol).unsqueeze(1))).sum(1)
    total = int(count.sum())
    return float(torch.minimum(hits, count).sum()) / total if total else 1.0


def tune_probes(
    index: MIPSIndex,
    user_vectors: Tensor,
    item_vectors: Tensor,
    exclude: tuple[Tensor, Tensor],
    k: int,
    target_recall: float,
    tune_users: int = 1000,
    seed: int = 0,
) -> tuple[int, float, int]:
    """The fewest probes (doubling from 1) whose recall@k against exact top-k reaches
    ``target_recall`` on a seeded sample of users: ``(probes, recall, sample size)``."""
    g = torch.Generator().manual_seed(seed)
    sample = torch.randperm(len(user_vectors), generator=g)[:tune_users].sort().values
    ex = _rows(exclude, sample)
    _, exact = topk_unseen(user_vectors[sample], item_vectors, ex, k)
    probes, got = 1, 0.0
    while True:
        _, scores, short = index.search_unseen(user_vectors[sample], ex, k, probes)
        if short.any():  # as the real run does: those users are scored exactly
            scores[short] = exact[short]
        got = recall(scores, exact)
        if got >= target_recall or probes >= index.lists:
            return probes, got, len(sample)
        probes = min(probes * 2, index.lists)


def topk_unseen_approximate(
    user_vectors: Tensor,
    item_vectors: Tensor,
    exclude: tuple[Tensor, Tensor],
    k: int,
    batch_users: int = 2048,
    target_recall: float = 0.95,
    lists: int | None = None,
    seed: int = 0,
    progress: bool = False,
    desc: str = "top-k (approximate)",
    index: MIPSIndex | None = None,
) -> tuple[Tensor, Tensor, IndexReport]:
    """:func:`~graphrec.ranking.topk.topk_unseen` through a :class:`MIPSIndex` whose probes
    are tuned to ``target_recall``; also returns the :class:`IndexReport`."""
    user_vectors, item_vectors = (
        user_vectors.detach().float().cpu(),
        item_vectors.detach().float().cpu(),
    )
    exclude = (exclude[0].cpu(), exclude[1].cpu())
    index = index or MIPSIndex(item_vectors, lists, seed)
    probes, got, sampled = tune_probes(
        index, user_vectors, item_vectors, exclude, k, target_recall, seed=seed
    )
    num_users = len(user_vectors)
    items = torch.full((num_users, k), -1, dtype=torch.long)
    scores = torch.full((num_users, k), float("-inf"))
    fallback = 0
    for start in tqdm(range(0, num_users, batch_users), desc=desc, disable=not progress):
        rows = torch.arange(start, min(start + batch_users, num_users))
        ex = _rows(exclude, rows)
        top, val, short = index.search_unseen(user_vectors[rows], ex, k, probes)
        if short.any():
            redo = torch.nonzero(short).squeeze(1)
            t, v = topk_unseen(user_vectors[rows[redo]], item_vectors, _rows(ex, redo), k)
            top[redo], val[redo] = t, v
            fallback += len(redo)
        items[rows], scores[rows] = top, val
    return items, scores, IndexReport(index.lists, probes, got, sampled, fallback)
