"""Leak-free splits of the target edges into train / validation / test.

Only train edges enter the message-passing graph used in training; validation and test
edges are held out of it (see :func:`graphrec.graph.hetero.message_graph`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from graphrec.config import SplitConfig
from graphrec.errors import warn


@dataclass
class EdgeSplit:
    """Indices into the target edge list."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor


def random_split(num_edges: int, val: float, test: float, seed: int) -> EdgeSplit:
    """Seeded shuffle, then the first ``test`` share is test, the next ``val`` share val."""
    perm = torch.randperm(num_edges, generator=torch.Generator().manual_seed(seed))
    n_test, n_val = round(num_edges * test), round(num_edges * val)
    return EdgeSplit(
        train=perm[n_test + n_val :].sort().values,
        val=perm[n_test : n_test + n_val].sort().values,
        test=perm[:n_test].sort().values,
    )


def temporal_split(
    user: torch.Tensor, time: torch.Tensor, val: float, test: float, last: int | None = None
) -> EdgeSplit:
    """Per user: the latest ``test`` share of their edges is test, the ones before val;
    with ``last``, the latest ``last`` edges are test and the ``last`` before them val
    (leave-last-out).

    Every user keeps at least one training edge. Ties in time are broken by edge order.
    """
    u, t = user.numpy(), time.numpy()
    order = np.lexsort((np.arange(len(u)), t, u))  # by user, then time, then position
    us = u[order]
    starts = np.flatnonzero(np.r_[True, us[1:] != us[:-1]])
    counts = np.diff(np.r_[starts, len(us)])
    rank = np.arange(len(us)) - np.repeat(starts, counts)
    count = np.repeat(counts, counts)
    want_test = np.round(count * test) if last is None else np.full_like(count, last)
    want_val = np.round(count * val) if last is None else np.full_like(count, last)
    n_test = np.minimum(want_test, count - 1)
    n_val = np.minimum(want_val, count - 1 - n_test)
    if last is not None and (counts == 1).any():
        warn(
            f"build.split.kind=last: {int((counts == 1).sum()):,} of {len(counts):,} users have "
            "a single edge, which they keep for training: they have no test edge and are not "
            "evaluated"
        )
    from_end = count - rank  # 1 for the latest edge
    is_test = from_end <= n_test
    is_val = ~is_test & (from_end <= n_test + n_val)
    pick = lambda m: torch.from_numpy(np.sort(order[m]))  # noqa: E731
    return EdgeSplit(train=pick(~is_test & ~is_val), val=pick(is_val), test=pick(is_test))


def split_edges(
    cfg: SplitConfig, num_edges: int, user: torch.Tensor, time: torch.Tensor | None
) -> EdgeSplit:
    if cfg.kind in ("temporal", "last"):
        assert time is not None  # JobConfig checks build.timestamp
        last = cfg.last if cfg.kind == "last" else None
        return temporal_split(user, time, cfg.val, cfg.test, last)
    return random_split(num_edges, cfg.val, cfg.test, cfg.seed)


def split_target(cfg: SplitConfig, graph) -> EdgeSplit:
    """The split of ``graph``'s target edges (:class:`~graphrec.graph.hetero.Graph`): the
    pairs of an undirected target are split, and each part takes both directions of its
    pairs, so a held-out friendship is hidden both ways."""
    n = graph.num_pairs
    ei = graph.target_index[:, :n]
    time = None if graph.time is None else graph.time[:n]
    split = split_edges(cfg, n, ei[0], time)
    if not graph.undirected:
        return split
    both = lambda idx: torch.cat([idx, idx + n])  # noqa: E731
    return EdgeSplit(train=both(split.train), val=both(split.val), test=both(split.test))


def all_train(num_edges: int) -> EdgeSplit:
    """Final mode: every edge trains, nothing is held out."""
    empty = torch.empty(0, dtype=torch.long)
    return EdgeSplit(train=torch.arange(num_edges), val=empty, test=empty)
