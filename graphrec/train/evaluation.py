"""Stage 3, train: validation after every epoch (RMSE or NDCG@k), computed on a share of
the users per worker and summed, so it is the same metric as in one process."""

from __future__ import annotations

import math

import torch
from torch_geometric.data import HeteroData

from graphrec.config import JobConfig
from graphrec.graph.csr import to_csr
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.recommender import Recommender
from graphrec.ranking.metrics import positives, ranking_metrics
from graphrec.ranking.topk import topk_unseen
from graphrec.train.context import TrainContext


def validate(
    model: Recommender,
    graph: Graph,
    data: HeteroData,
    split: EdgeSplit,
    cfg: JobConfig,
    ctx: TrainContext | None = None,
) -> tuple[str, float]:
    """The validation metric: RMSE (rating objective) or NDCG@k (link objective).

    Each worker scores its share (validation edges ``rank::W``, or users ``rank::W``) and
    the sums are reduced over workers: the result is the full validation metric.
    """
    ctx = ctx or TrainContext(cfg, model.device)
    ei = graph.target_index
    if cfg.train.objective == "rating":
        mine = split.val[ctx.rank :: ctx.world_size]
        model.eval()
        with torch.no_grad():
            z = model.encode(data)
            pred = model.score(data, z, ei[:, mine].to(model.device)).cpu()
        model.train()
        sse = ((pred.double() - graph.label[mine].double()) ** 2).sum()
        total = ctx.all_reduce(torch.stack([sse, torch.tensor(float(len(mine)))]).double())
        return "val_rmse", math.sqrt(float(total[0] / total[1].clamp(min=1)))
    k = cfg.evaluate.k
    uv, iv = model.vectors(data)
    n_users = graph.num_nodes[graph.user_type]
    users = torch.arange(ctx.rank, n_users, ctx.world_size)
    local = torch.full((n_users,), -1, dtype=torch.long)
    local[users] = torch.arange(len(users))
    tu, ti = ei[0, split.train], ei[1, split.train]
    keep = local[tu] >= 0
    own = users if graph.same_type else None
    exclude = to_csr(local[tu[keep]], ti[keep], len(users), own)
    pos = positives(graph, split.val, cfg.evaluate.positive_threshold)
    pu, pi = ei[0, pos], ei[1, pos]
    keep = local[pu] >= 0
    top, _ = topk_unseen(uv[users.to(uv.device)], iv, exclude, k, cfg.evaluate.batch_users)
    m = ranking_metrics(top, local[pu[keep]], pi[keep], len(iv), k)
    n = float(m["users"])
    part = torch.tensor([m[f"ndcg@{k}"] * n if n else 0.0, n], dtype=torch.float64)
    total = ctx.all_reduce(part)
    return f"val_ndcg@{k}", float(total[0] / total[1]) if total[1] > 0 else float("nan")
