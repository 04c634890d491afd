"""Stage 3, train: the loss of one batch, for every loss and batch kind."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphrec.config import JobConfig
from graphrec.models.recommender import Recommender
from graphrec.samplers.users import UserBatch


def class_weights(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse-frequency weight per distinct label value (the seed articles' weighted MSE)."""
    values, counts = torch.unique(labels, return_counts=True)
    weights = counts.sum() / (len(values) * counts.float())
    return values, weights


def batch_loss(model: nn.Module, batch: HeteroData, cfg: JobConfig, cw=None) -> tuple[Tensor, int]:
    """Loss of one mini-batch and its number of labelled (positive) edges.

    ``model`` may be DDP-wrapped: every score comes from one ``model(batch, pairs)`` call.
    """
    core: Recommender = getattr(model, "module", model)
    t = cfg.train
    if isinstance(batch, UserBatch):  # full-graph / random-walk models: per-user triplets
        b = len(batch.users)
        if t.loss == "multinomial":  # every item of every batch user, full softmax
            cand = torch.arange(core.num_items, device=batch.users.device)
            pairs = torch.stack([batch.users, torch.zeros_like(batch.users)])
            _, logits = model(batch.data, pairs, cand)
            logp = F.log_softmax(logits, 1)[batch.owner, batch.pos]
            if batch.weight is not None:  # train.low_label_weight
                logp = logp * batch.weight
            n_u = torch.bincount(batch.owner, minlength=b).clamp(min=1)
            per_user = torch.zeros(b, device=logp.device).index_add_(0, batch.owner, logp)
            loss = -(per_user / n_u).mean()
            if t.embedding_l2 > 0:
                loss = loss + t.embedding_l2 * core.l2(
                    torch.stack([batch.users[batch.owner], batch.pos])
                )
            return loss, len(batch.pos)
        if t.loss == "softmax":
            pairs = torch.stack([batch.users, batch.pos])
            if t.num_negatives >= core.num_items:  # the whole catalogue: full softmax
                cand = torch.arange(core.num_items, device=pairs.device)
            else:
                cand = torch.randint(core.num_items, (t.num_negatives,), device=pairs.device)
            pos, others = model(batch.data, pairs, cand)
            others = others.masked_fill(cand.unsqueeze(0) == batch.pos.unsqueeze(1), -1e9)
            logits = torch.cat([pos.unsqueeze(1), others], 1)
            loss = F.cross_entropy(logits, torch.zeros(b, dtype=torch.long, device=pos.device))
            if t.embedding_l2 > 0:
                loss = loss + t.embedding_l2 * core.l2(pairs)
            return loss, b
        pairs = batch.pairs()
        scores = model(batch.data, pairs)
        pos, neg = scores[:b].unsqueeze(1), scores[b:].view_as(batch.neg)
        if t.loss == "bpr":
            loss = -F.logsigmoid(pos - neg).mean()
        else:
            loss = F.softplus(-pos).mean() + F.softplus(neg).mean()
        if t.embedding_l2 > 0:
            loss = loss + t.embedding_l2 * core.l2(pairs)
        return loss, b
    store = batch[core.user, cfg.build.target, core.item]
    if t.loss == "bpr":
        src = batch[core.user].src_index
        neg_items = batch[core.item].dst_neg_index.view(len(src), -1)  # [B, negatives]
        src_rep = src.unsqueeze(1).expand_as(neg_items).reshape(-1)
        pairs = torch.cat(
            [
                torch.stack([src, batch[core.item].dst_pos_index]),
                torch.stack([src_rep, neg_items.reshape(-1)]),
            ],
            dim=1,
        )
        scores = model(batch, pairs)
        pos, neg = scores[: len(src)], scores[len(src) :]
        return -F.logsigmoid(pos.unsqueeze(1) - neg.view_as(neg_items)).mean(), len(src)
    pred = model(batch, store.edge_label_index)
    y = store.edge_label.float()
    if t.loss == "bce":
        return F.binary_cross_entropy_with_logits(pred, y), int(y.sum())
    err = (pred - y) ** 2
    if t.loss == "weighted_mse":
        values, weights = cw
        err = err * weights[torch.searchsorted(values, y)]
    return err.mean(), len(y)
