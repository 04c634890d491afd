"""Stage 4, recommend: top-k unseen items for every user, scored on the full graph."""

from __future__ import annotations

import pyarrow as pa
import torch
from torch_geometric.data import HeteroData

from graphrec.config import JobConfig
from graphrec.errors import RunError
from graphrec.graph.csr import pointer, to_csr
from graphrec.graph.hetero import Graph, message_graph
from graphrec.models.registry import RecommenderModel
from graphrec.ranking.approximate import IndexReport, topk_unseen_approximate
from graphrec.ranking.topk import topk_unseen


def recommend_all(
    model: RecommenderModel,
    graph: Graph,
    cfg: JobConfig,
    progress: bool = False,
    users: torch.Tensor | None = None,
    items: torch.Tensor | None = None,
    report: dict | None = None,
) -> pa.Table:
    """``recommend.k`` items per user that the user has no edge to, best first, as an Arrow
    table ``(user_id, item_id, rank, score)`` with the original ids. A user with fewer than
    k unseen items gets fewer rows; a non-finite score is an error and nothing is returned.
    ``users``, ``items``: only these users get recommendations, only these items are ranked
    (ascending ids; default all). ``recommend.method: approximate`` ranks through a FAISS
    index; its :class:`~graphrec.ranking.approximate.IndexReport` (measured recall@k
    against exact) goes into ``report["index"]`` when ``report`` is given.
    """
    n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
    data = message_graph(graph, None, cfg.build.reverse_edges).to(model.device)
    subset = users is not None and len(users) < n_users
    if subset and hasattr(model, "vectors_for"):  # only these users' rows are computed
        uv, iv = model.vectors_for(data, users)
    else:
        uv, iv = model.vectors(data)
        if subset:
            uv = uv[users.to(uv.device)]
    users = torch.arange(n_users) if users is None else users
    items = torch.arange(n_items) if items is None else items
    exclude = seen(graph, data, users, items)
    del data  # what `exclude` reads of it (a view) stays
    if len(items) < n_items:
        iv = iv[items.to(iv.device)]
    k, rc = cfg.recommend.k, cfg.recommend
    if rc.method == "approximate":
        top, scores, index = topk_unseen_approximate(
            uv,
            iv,
            exclude,
            k,
            rc.batch_users,
            rc.target_recall,
            rc.index_lists,
            cfg.train.seed,
            progress,
        )
        if progress:
            _log_index(index)
        if report is not None:
            report["index"] = index.as_dict()
    else:
        top, scores = topk_unseen(
            uv, iv, exclude, k, rc.batch_users, progress, "recommend", rc.scan
        )
    who = users.repeat_interleave(k)
    ranks = torch.arange(1, k + 1).repeat(len(users))
    top, scores = top.flatten(), scores.flatten()
    keep = top >= 0
    who, ranks, top, scores = who[keep], ranks[keep], top[keep], scores[keep]
    found = items[top]
    bad = ~torch.isfinite(scores)
    if bad.any():
        first = graph.node_ids[graph.user_type][int(who[bad][0])].as_py()
        raise RunError(
            f"recommend: {int(bad.sum())} of {len(scores)} scores are not finite (first for "
            f"user {first!r}): the model diverged; nothing was written"
        )
    return pa.table(
        {
            "user_id": graph.node_ids[graph.user_type].take(pa.array(who.numpy())),
            "item_id": graph.node_ids[graph.item_type].take(pa.array(found.numpy())),
            "rank": pa.array(ranks.numpy().astype("int32")),
            "score": pa.array(scores.numpy().astype("float32")),
        }
    )


def seen(
    graph: Graph, data: HeteroData, users: torch.Tensor, items: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indptr, indices)``: per position in ``users``, the positions in ``items`` of the
    items it already has an edge to (and for friends, itself). For every user and item
    (the batch job), the message graph's reverse target edges are that CSR already
    (sorted by user, then item): no copy of the edge list, where mapping and sorting it
    would hold about five (3.3 GB at 1e8 edges)."""
    ei = graph.target_index
    n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
    if len(users) == n_users and len(items) == n_items and not graph.same_type:
        user, name, item = graph.target
        rev = (item, f"rev_{name}", user)
        if rev in data.edge_types:
            by_user = data[rev].edge_index.cpu()
            return pointer(by_user[1], n_users), by_user[0]
        return to_csr(ei[0], ei[1], n_users)
    u, i = ei[0], ei[1]  # every item the user already has an edge to
    if graph.same_type:  # friends: not oneself
        u, i = torch.cat([u, torch.arange(n_users)]), torch.cat([i, torch.arange(n_users)])
    row = torch.full((n_users,), -1, dtype=torch.long)
    row[users] = torch.arange(len(users))
    col = torch.full((n_items,), -1, dtype=torch.long)
    col[items] = torch.arange(len(items))
    keep = (row[u] >= 0) & (col[i] >= 0)
    return to_csr(row[u[keep]], col[i[keep]], len(users))


def _log_index(index: IndexReport) -> None:
    print(
        f"recommend: approximate top-k, {index.lists} cells, {index.probes} probed: "
        f"recall@k {index.recall_at_k:.3f} against exact on {index.sample_users} users"
        + (
            f", {index.exact_fallback_users} users scored exactly"
            if index.exact_fallback_users
            else ""
        )
    )
