"""Exact top-k unseen items for every user, in batches of users: the kernel behind
validation (train), recommendation and ``graphrec compare``.

Scores are one matrix product per batch (``user_vectors @ item_vectors.T``); items the user
already has an edge to are masked with ``-inf`` from a CSR list. No Python loop runs per
user. Two kernels:

- the score block (GPU; CPU with wide vectors or small catalogues): the batch's
  ``users x items`` scores in one buffer allocated once and reused (a fresh 400 MB block
  per batch spent more time in page faults than in the product), ranked by
  :func:`topk_rows`;
- :func:`topk_tiled` (CPU, vectors up to ``TILED_MAX_WIDTH`` wide, catalogues of at least
  ``TILED_MIN * k`` items): tiles of items that stay in cache, only their chunk maxima
  kept, the best chunks rescored.

An approximate index (:mod:`graphrec.ranking.approximate`) replaces the product for huge
catalogues; the vectors are already in inner-product form.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm


def topk_unseen(
    user_vectors: Tensor,
    item_vectors: Tensor,
    exclude: tuple[Tensor, Tensor],
    k: int,
    batch_users: int = 2048,
    progress: bool = False,
    desc: str = "top-k",
    scan: str = "float32",
) -> tuple[Tensor, Tensor]:
    """Top-``k`` items per user by inner product, skipping ``exclude`` (CSR per user).

    Returns ``(items [U, k], scores [U, k])``, best first. Where a user has fewer than ``k``
    unseen items the tail is ``-1`` with score ``-inf``. ``scan="bfloat16"``: the CPU
    kernel's first pass in bfloat16 (see :func:`topk_tiled`); the scores returned are
    always computed in the vectors' own precision.
    """
    if scan not in SCANS:
        raise ValueError(f"scan={scan!r}: one of {', '.join(SCANS)}")
    device = user_vectors.device  # scores are computed where the vectors live (CPU or GPU)
    user_vectors, item_vectors = user_vectors.detach(), item_vectors.detach()
    num_users, num_items = len(user_vectors), len(item_vectors)
    dtype = torch.promote_types(user_vectors.dtype, item_vectors.dtype)
    narrow = item_vectors.shape[1] <= TILED_MAX_WIDTH  # EASE-like vectors are one per item
    if device.type == "cpu" and narrow and num_items >= max(1, TILED_MIN * min(k, num_items)):
        return topk_tiled(
            user_vectors.to(dtype), item_vectors.to(dtype), exclude, k, batch_users, progress,
            desc, scan,
        )  # fmt: skip
    item_t = item_vectors.to(device, dtype).t().contiguous()
    block = torch.empty(min(batch_users, num_users), num_items, dtype=dtype, device=device)

    def scores(start: int, stop: int) -> Tensor:
        s = block[: stop - start]
        torch.matmul(user_vectors[start:stop].to(dtype), item_t, out=s)
        return s

    return topk_by(scores, num_users, num_items, exclude, k, batch_users, progress, desc, device)


CHUNK = 16
"""Items per chunk in :func:`topk_rows`'s and :func:`topk_tiled`'s first pass."""
TILE = 4096
"""Items per score tile in :func:`topk_tiled` (a multiple of ``CHUNK``): 2,048 users x
4,096 items was the fastest of the shapes tried on 2 cores (256 to 2,048 users x 1,024 to
16,384 items)."""
TILED_MIN = 32 * CHUNK
"""Catalogues of at least this many items per k use :func:`topk_tiled` on a CPU."""
TILED_MAX_WIDTH = 256
"""Widest vectors :func:`topk_tiled` takes: it rescores ``k * CHUNK`` candidates per user
by gathering their item vectors, which for an item-item model (one column per item) is
gigabytes; the score block costs no more than the product there."""
CANDIDATE_USERS = 256
"""Users whose candidates are rescored at once (their item vectors gathered)."""
SCANS = {"float32": None, "bfloat16": torch.bfloat16}
"""``topk_tiled``'s first-pass precisions (``None``: the vectors' own)."""
BF16_WIDEN = 4
"""A bfloat16 first pass keeps this many times ``k`` chunks for the rescoring."""
BF16_WIDTH = 32
"""bfloat16 scan vectors are zero-padded to a multiple of this width (AMX tiles)."""


def topk_tiled(
    user_vectors: Tensor,
    item_vectors: Tensor,
    exclude: tuple[Tensor, Tensor],
    k: int,
    batch_users: int = 2048,
    progress: bool = False,
    desc: str = "top-k",
    scan: str = "float32",
) -> tuple[Tensor, Tensor]:
    """:func:`topk_unseen` on a CPU without the ``users x items`` score block.

    Per batch of users, scores are computed one tile of ``TILE`` items at a time into a
    buffer that stays in cache; seen items are masked in the tile; each tile keeps only the
    maximum of every ``CHUNK`` items. The ``k`` best chunks per user (see
    :func:`topk_rows` for why they hold the top k) are then rescored item by item and
    ranked. The block of 2,048 x 50,000 scores used to be written, masked and read back
    by ``torch.topk`` (400 MB per batch): 23% of the measured matmul peak, where the tiled
    product and its maxima ran at 59% (2 cores, width 64). Rescoring computes the
    candidates' inner products again, so the result is exact up to float rounding between
    the two products.

    ``scan="bfloat16"`` computes the tiles' scores in bfloat16 (on CPUs with AMX or
    AVX512-BF16 the product runs several times faster) and keeps ``BF16_WIDEN * k`` chunks
    instead of ``k``; the candidates are rescored in the vectors' precision, so the scores
    returned are the same; an item can only be missed when bfloat16 rounding (relative
    ~0.4%) lowers its chunk's maximum below those of ``BF16_WIDEN * k`` other chunks
    (measured against float32 in ``graphrec bench``).
    """
    if scan not in SCANS:
        raise ValueError(f"scan={scan!r}: one of {', '.join(SCANS)}")
    num_users, n = len(user_vectors), len(item_vectors)
    indptr, indices = exclude[0].cpu(), exclude[1].cpu()
    k_eff = min(k, n)
    layout = _chunks(n)
    base, step, size = layout
    dtype = item_vectors.dtype
    low = SCANS[scan] if SCANS[scan] not in (None, dtype) else None
    kk = min(k_eff * (BF16_WIDEN if low else 1), len(base))
    item_vectors = item_vectors.contiguous()
    scan_items = item_vectors if low is None else _padded(item_vectors, low)
    width = min(batch_users, num_users)
    tile = torch.empty(width, min(TILE, n), dtype=low or dtype)
    offsets = torch.arange(CHUNK)
    items = torch.full((num_users, k), -1, dtype=torch.long)
    top_scores = torch.full((num_users, k), float("-inf"))
    starts = torch.arange(0, n, TILE)
    for start in tqdm(range(0, num_users, batch_users), desc=desc, disable=not progress):
        stop = min(start + batch_users, num_users)
        b = stop - start
        ub = user_vectors[start:stop]
        scan_ub = ub if low is None else _padded(ub, low)
        rows = torch.repeat_interleave(
            torch.arange(b), indptr[start + 1 : stop + 1] - indptr[start:stop]
        )
        cols = indices[indptr[start] : indptr[stop]]
        order = torch.argsort(cols)
        s_rows, s_cols = rows[order], cols[order]
        bounds = torch.searchsorted(s_cols, torch.cat([starts, torch.tensor([n])])).tolist()
        maxima = []
        for t, c0 in enumerate(starts.tolist()):
            w = min(TILE, n - c0)
            s = tile[:b, :w]
            torch.matmul(scan_ub, scan_items[c0 : c0 + w].t(), out=s)
            lo, hi = bounds[t], bounds[t + 1]
            if hi > lo:
                s[s_rows[lo:hi], s_cols[lo:hi] - c0] = float("-inf")
            maxima += _tile_maxima(s)
        best = torch.topk(torch.cat(maxima, 1), kk, dim=1).indices
        idx = base[best].unsqueeze(2) + step[best].unsqueeze(2) * offsets
        outside = (offsets >= size[best].unsqueeze(2)).flatten(1)
        idx = idx.flatten(1).clamp_(max=n - 1)
        cand = torch.empty(idx.shape, dtype=dtype)
        for a in range(0, b, CANDIDATE_USERS):
            z = slice(a, a + CANDIDATE_USERS)
            cand[z] = torch.bmm(item_vectors[idx[z]], ub[z].unsqueeze(2)).squeeze(2)
        seen = _member(torch.arange(b).unsqueeze(1) * n + idx, rows * n + cols)
        cand[seen | outside] = float("-inf")
        val, pos = torch.topk(cand, k_eff, dim=1)
        found = idx.gather(1, pos)
        found[val == float("-inf")] = -1
        items[start:stop, :k_eff] = found
        top_scores[start:stop, :k_eff] = val.float()
    return items, top_scores


def _padded(vectors: Tensor, dtype: torch.dtype) -> Tensor:
    """``vectors`` in ``dtype``, zero-padded to a multiple of ``BF16_WIDTH`` columns (the
    inner products are unchanged)."""
    d = vectors.shape[1]
    out = torch.zeros(len(vectors), -(-d // BF16_WIDTH) * BF16_WIDTH, dtype=dtype)
    out[:, :d] = vectors
    return out


def _chunks(n: int) -> tuple[Tensor, Tensor, Tensor]:
    """How :func:`topk_tiled` groups ``n`` items into chunks, as ``(first item, stride,
    size)`` per chunk, in the order :func:`_tile_maxima` writes their maxima. In a tile of
    ``w`` items the first ``w // CHUNK * CHUNK`` form chunks of ``CHUNK`` items strided by
    ``w // CHUNK`` (item ``j``, ``j + w // CHUNK``, ...), so that a chunk's maximum is an
    elementwise maximum over ``CHUNK`` contiguous rows of the tile (vectorised; a maximum
    over ``CHUNK`` contiguous items is a short reduction per chunk, 3x slower); the
    remaining ``w % CHUNK`` items are one contiguous chunk."""
    base, step, size = [], [], []
    for c0 in range(0, n, TILE):
        w = min(TILE, n - c0)
        stride = w // CHUNK
        if stride:
            base.append(torch.arange(c0, c0 + stride))
            step.append(torch.full((stride,), stride))
            size.append(torch.full((stride,), CHUNK))
        if w % CHUNK:
            base.append(torch.tensor([c0 + stride * CHUNK]))
            step.append(torch.tensor([1]))
            size.append(torch.tensor([w % CHUNK]))
    return torch.cat(base), torch.cat(step), torch.cat(size)


def _tile_maxima(s: Tensor) -> list[Tensor]:
    """The chunk maxima of score tile ``s`` (users x items) in the layout of
    :func:`_chunks`, as fresh blocks joined once per batch (writing each into a column
    slice of one users x chunks buffer cost as much as the maxima themselves)."""
    b, w = s.shape
    stride = w // CHUNK
    out = []
    if stride:
        out.append(s[:, : stride * CHUNK].view(b, CHUNK, stride).amax(1))
    if w % CHUNK:
        out.append(s[:, stride * CHUNK :].amax(1, keepdim=True))
    return out


def topk_rows(s: Tensor, k: int, chunk: int = CHUNK) -> tuple[Tensor, Tensor]:
    """``torch.topk(s, k, dim=1)`` by two passes: the maximum of every ``chunk`` items, the
    top ``k`` chunks by that maximum, then the top ``k`` of those chunks' items.

    Exact (up to the order among equal scores): an item outside the ``k`` best chunks has
    ``k`` chunk maxima at least as high as itself. The first pass is one vectorised read of
    the score block, where ``torch.topk`` on a CPU copies every row into (value, index)
    pairs and partially sorts them; on 2 cores over 2,048 x 50,000 scores that copy cost
    as much as the matrix product. Rows shorter than ``32 * k * chunk`` use ``torch.topk``.
    """
    n = s.size(1)
    if n < 32 * k * chunk:
        return torch.topk(s, k, dim=1)
    full = n // chunk * chunk
    maxima = s[:, :full].view(len(s), -1, chunk).amax(2)
    if full < n:
        maxima = torch.cat([maxima, s[:, full:].amax(1, keepdim=True)], 1)
    best = torch.topk(maxima, k, dim=1).indices
    idx = (best.unsqueeze(2) * chunk + torch.arange(chunk, device=s.device)).flatten(1)
    outside = idx >= n  # the tail chunk is shorter
    cand = s.gather(1, idx.clamp(max=n - 1))
    cand[outside] = float("-inf")
    val, pos = torch.topk(cand, k, dim=1)
    return val, idx.gather(1, pos)


def _member(keys: Tensor, members: Tensor) -> Tensor:
    """``torch.isin(keys, members)`` by binary search in the sorted members (``isin``
    sorted the candidates too: 0.1 s of a 0.5 s batch)."""
    if len(members) == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    members = torch.sort(members).values
    pos = torch.searchsorted(members, keys).clamp_(max=len(members) - 1)
    return members[pos] == keys


def topk_by(
    scores: Callable[[int, int], Tensor],
    num_users: int,
    num_items: int,
    exclude: tuple[Tensor, Tensor],
    k: int,
    batch_users: int = 2048,
    progress: bool = False,
    desc: str = "top-k",
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Top-``k`` unseen items per user from any scorer: ``scores(start, stop)`` gives the
    ``[stop - start, num_items]`` scores of users ``start..stop-1`` (it may return a reused
    buffer: it is masked in place). Same output as :func:`topk_unseen`."""
    indptr, indices = exclude[0].to(device), exclude[1].to(device)
    k_eff = min(k, num_items)
    items = torch.full((num_users, k), -1, dtype=torch.long)
    top_scores = torch.full((num_users, k), float("-inf"))
    for start in tqdm(range(0, num_users, batch_users), desc=desc, disable=not progress):
        stop = min(start + batch_users, num_users)
        s = scores(start, stop)
        lo, hi = indptr[start], indptr[stop]
        rows = torch.repeat_interleave(
            torch.arange(stop - start, device=device),
            indptr[start + 1 : stop + 1] - indptr[start:stop],
        )
        s[rows, indices[lo:hi]] = float("-inf")
        val, idx = topk_rows(s, k_eff)
        idx[val == float("-inf")] = -1
        items[start:stop, :k_eff] = idx.cpu()
        top_scores[start:stop, :k_eff] = val.float().cpu()
    return items, top_scores
