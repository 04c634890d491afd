"""Stage 4, recommend: top-k unseen items for every user, scored on the full graph."""

from __future__ import annotations

import pyarrow as pa
import torch

from graphrec.config import JobConfig
from graphrec.errors import RunError
from graphrec.graph.csr import to_csr
from graphrec.graph.hetero import Graph, message_graph
from graphrec.models.registry import RecommenderModel
from graphrec.ranking.topk import topk_unseen


def recommend_all(
    model: RecommenderModel, graph: Graph, cfg: JobConfig, progress: bool = False
) -> pa.Table:
    """``recommend.k`` items per user that the user has no edge to, best first, as an Arrow
    table ``(user_id, item_id, rank, score)`` with the original ids. A user with fewer than
    k unseen items gets fewer rows; a non-finite score is an error and nothing is returned.
    """
    ei = graph.target_index
    n_users = graph.num_nodes[graph.user_type]
    data = message_graph(graph, None, cfg.build.reverse_edges).to(model.device)
    uv, iv = model.vectors(data)
    own = torch.arange(n_users) if graph.same_type else None  # friends: not oneself
    exclude = to_csr(ei[0], ei[1], n_users, own)  # every item the user already has an edge to
    k = cfg.recommend.k
    items, scores = topk_unseen(
        uv, iv, exclude, k, cfg.recommend.batch_users, progress, "recommend"
    )
    users = torch.arange(n_users).repeat_interleave(k)
    ranks = torch.arange(1, k + 1).repeat(n_users)
    items, scores = items.flatten(), scores.flatten()
    keep = items >= 0
    users, ranks, items, scores = users[keep], ranks[keep], items[keep], scores[keep]
    bad = ~torch.isfinite(scores)
    if bad.any():
        first = graph.node_ids[graph.user_type][int(users[bad][0])].as_py()
        raise RunError(
            f"recommend: {int(bad.sum())} of {len(scores)} scores are not finite (first for "
            f"user {first!r}): the model diverged; nothing was written"
        )
    return pa.table(
        {
            "user_id": graph.node_ids[graph.user_type].take(pa.array(users.numpy())),
            "item_id": graph.node_ids[graph.item_type].take(pa.array(items.numpy())),
            "rank": pa.array(ranks.numpy().astype("int32")),
            "score": pa.array(scores.numpy().astype("float32")),
        }
    )
