"""Stage 3, train: ``LinkNeighborLoader`` mini-batches through the model, one epoch at a time.

:func:`train_loop` is a plain function of (model, graph, split, config) and a
:class:`~graphrec.train.context.TrainContext`: a single process calls it with the default
context, each Ray Train worker calls the same function with a context that knows its rank
(:mod:`graphrec.distributed`). With ``W`` workers every worker samples from its own
``1/W`` shard of the training edges with batches of ``batch_size / W`` (the global batch
stays ``sampler.batch_size``), gradients are averaged by DDP, and validation is computed on
a shard per worker and summed across workers, so it is the same metric as in one process.
Validation after every epoch picks the best epoch (its weights are kept); the test split is
never looked at here. A checkpoint (model, optimizer, RNG, history) is reported every
``train.checkpoint_every`` epochs; a run restored from one continues at the next epoch.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.sampler import NegativeSampling
from tqdm.auto import tqdm

from graphrec.build.graph import Graph, label_weights, message_graph
from graphrec.build.split import EdgeSplit
from graphrec.config import JobConfig, to_dict
from graphrec.errors import RunError, warn
from graphrec.models.recommender import Recommender, build_model, make_optimizer
from graphrec.recommend.topk import to_csr, topk_unseen
from graphrec.samplers.neighbor import make_neighbor_sampler
from graphrec.samplers.triplets import Triplets, TripletSampler
from graphrec.train.context import TrainContext, resolve_device, settings_digest
from graphrec.train.metrics import ranking_metrics


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    """Per epoch: loss, validation metric, seconds, labelled edges/s, sample vs compute s."""
    best_epoch: int = 0
    best_val: float | None = None
    val_metric: str = ""
    stats: dict = field(default_factory=dict)


def make_loader(
    data: HeteroData,
    graph: Graph,
    edges: Tensor,
    cfg: JobConfig,
    shuffle: bool = True,
    batch_size: int | None = None,
) -> LinkNeighborLoader:
    """Mini-batches over target edges ``edges`` (indices into the target edge list).

    ``data`` must come from :func:`message_graph` (edges in CSC order).
    """
    t = cfg.train
    label = graph.label[edges] if t.objective == "rating" else None
    neg = None
    if t.objective == "link":
        mode = "triplet" if t.loss == "bpr" else "binary"
        neg = NegativeSampling(mode, amount=t.num_negatives)
    sampler = make_neighbor_sampler(
        data, cfg.sampler.num_neighbors, cfg.sampler.backend, is_sorted=True
    )
    return LinkNeighborLoader(
        data,
        num_neighbors=cfg.sampler.num_neighbors,
        edge_label_index=(graph.target, graph.target_index[:, edges]),
        edge_label=label,
        neg_sampling=neg,
        batch_size=batch_size or cfg.sampler.batch_size,
        shuffle=shuffle,
        num_workers=cfg.sampler.num_workers,
        neighbor_sampler=sampler,
    )


@dataclass
class TrainInputs:
    """What a training worker needs: the graph, the split and the training message graph."""

    graph: Graph
    split: EdgeSplit
    data: HeteroData
    """``message_graph(graph, split.train)``: the only edges a training batch can see."""

    @classmethod
    def of(cls, graph: Graph, split: EdgeSplit, cfg: JobConfig) -> TrainInputs:
        return cls(graph, split, message_graph(graph, split.train, cfg.build.reverse_edges))


def train_loop_per_worker(config: dict) -> tuple[Recommender, TrainResult]:
    """The whole training stage of one worker; a single process and Ray Train call it alike.

    ``config``: ``cfg`` (the :class:`JobConfig`), ``inputs`` (:class:`TrainInputs`, or a
    callable returning them, e.g. a view of the graph in Ray's object store), ``context``
    (a :class:`TrainContext` class, default: this process alone) and ``progress``.
    """
    cfg: JobConfig = config["cfg"]
    inputs = config["inputs"]
    inputs = inputs() if callable(inputs) else inputs
    ctx = config.get("context", TrainContext)(cfg)
    torch.manual_seed(cfg.train.seed)
    model = new_model(inputs.graph, inputs.split, cfg)
    progress = config.get("progress", True) and ctx.rank == 0
    result = train_loop(model, inputs.graph, inputs.split, cfg, progress, ctx, inputs.data)
    return model, result


def new_model(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> Recommender:
    """The configured model for ``graph``: one layer per sampler hop (or ``model.layers``);
    for ratings the decoder's global bias starts at the mean training rating."""
    layers = cfg.model.layers or len(cfg.sampler.num_neighbors)
    n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
    if cfg.model.name == "lightgcn":
        from graphrec.models.lightgcn import LightGCNRecommender

        x = graph.x.get(graph.item_type) if cfg.model.item_features else None
        return LightGCNRecommender(
            n_users, n_items, cfg.model.embedding_dim, layers, graph.target,
            item_features=0 if x is None else x.shape[1],
            low_label_weight=cfg.train.low_label_weight,
            threshold=cfg.evaluate.positive_threshold,
        )  # fmt: skip
    if cfg.model.name == "pinsage":
        from graphrec.models.pinsage import PinSageRecommender

        return PinSageRecommender.from_config(cfg, graph, layers)
    init_mean = float(graph.label[split.train].mean()) if cfg.train.objective == "rating" else 0.0
    edge_types = message_graph(graph, split.train[:0], cfg.build.reverse_edges).edge_types
    return build_model(
        cfg.model,
        graph.num_nodes,
        {t: x.shape[1] for t, x in graph.x.items()},
        edge_types,
        graph.target,
        layers,
        init_mean,
        nccl=cfg.distributed.workers > 0 and cfg.distributed.use_gpu,
    )


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
    if isinstance(batch, Triplets):  # full-graph / random-walk models: per-user triplets
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
    exclude = to_csr(local[tu[keep]], ti[keep], len(users))
    pos = positives(graph, split.val, cfg.evaluate.positive_threshold)
    pu, pi = ei[0, pos], ei[1, pos]
    keep = local[pu] >= 0
    top, _ = topk_unseen(uv[users.to(uv.device)], iv, exclude, k, cfg.evaluate.batch_users)
    m = ranking_metrics(top, local[pu[keep]], pi[keep], len(iv), k)
    n = float(m["users"])
    part = torch.tensor([m[f"ndcg@{k}"] * n if n else 0.0, n], dtype=torch.float64)
    total = ctx.all_reduce(part)
    return f"val_ndcg@{k}", float(total[0] / total[1]) if total[1] > 0 else float("nan")


def disjoint_loader(
    graph: Graph, train: Tensor, cfg: JobConfig, gen: torch.Generator, batch_size: int | None = None
) -> LinkNeighborLoader:
    """A loader whose supervision edges are not in its message-passing graph.

    A fresh random ``train.disjoint_ratio`` share of the training edges is supervised this
    epoch and the rest carry messages, so the model cannot score an edge by finding it in
    its own neighbourhood (PyG's ``RandomLinkSplit(disjoint_train_ratio=...)``, redrawn
    every epoch so every edge is supervised over the run).
    """
    perm = train[torch.randperm(len(train), generator=gen)]
    n_sup = max(1, round(len(train) * cfg.train.disjoint_ratio))
    sup, msg = perm[:n_sup].sort().values, perm[n_sup:].sort().values
    data = message_graph(graph, msg, cfg.build.reverse_edges)
    return make_loader(data, graph, sup, cfg, batch_size=batch_size)


def positives(graph: Graph, edges: Tensor, threshold: float) -> Tensor:
    """The held-out edges that count as positives (label >= threshold, or all)."""
    if graph.label is None:
        return edges
    return edges[graph.label[edges] >= threshold]


def shard(edges: Tensor, rank: int, world_size: int, seed: int) -> Tensor:
    """Worker ``rank``'s equal share of ``edges`` (a seeded permutation cut into
    ``world_size`` parts; the ``< world_size`` left over are dropped so that every worker
    runs the same number of batches, as DDP requires)."""
    if world_size == 1:
        return edges
    perm = edges[torch.randperm(len(edges), generator=torch.Generator().manual_seed(seed))]
    per = len(edges) // world_size
    return perm[rank * per : (rank + 1) * per].sort().values


@contextmanager
def deterministic_algorithms(on: bool):
    """``torch.use_deterministic_algorithms(on)`` (ops without a deterministic version
    warn instead of failing) for the block; the previous setting afterwards."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(on, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def train_loop(
    model: Recommender,
    graph: Graph,
    split: EdgeSplit,
    cfg: JobConfig,
    progress: bool = True,
    ctx: TrainContext | None = None,
    data: HeteroData | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``split.train``; keep the best validation epoch's weights.

    ``data``: the training message graph (``message_graph(graph, split.train)``), when the
    caller already holds it (shared memory in distributed runs).
    """
    with deterministic_algorithms(cfg.train.deterministic):
        t = cfg.train
        ctx = ctx or TrainContext(cfg, resolve_device(t.device))
        device = ctx.device
        torch.manual_seed(t.seed + ctx.rank)
        model.to(device)
        net = ctx.prepare_model(model)
        if data is None:
            data = message_graph(graph, split.train, cfg.build.reverse_edges)
        # the loader samples from `data` on the CPU; validation runs the full graph on `device`
        eval_data = data.to(device) if device.type != "cpu" else data
        if t.loss == "multinomial" and ctx.world_size > 1:  # user batches: shard by user
            mine = split.train[graph.target_index[0, split.train] % ctx.world_size == ctx.rank]
        else:
            mine = shard(split.train, ctx.rank, ctx.world_size, t.seed)
        batch_size = math.ceil(cfg.sampler.batch_size / ctx.world_size)
        gen = torch.Generator().manual_seed(t.seed + ctx.rank)
        if getattr(model, "full_graph", False):
            ei = graph.target_index[:, mine]
            n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
            # softmax draws its shared negatives per step, multinomial ranks the whole catalogue
            negatives = 0 if t.loss in ("softmax", "multinomial") else t.num_negatives
            hard = t.hard_negatives > 0  # PinSage: negatives near the positive item
            weights = None
            if t.low_label_weight != 1.0 and graph.label is not None:
                thr = cfg.evaluate.positive_threshold
                weights = label_weights(graph.label[mine], t.low_label_weight, thr)
            loader = TripletSampler(
                ei[0], ei[1], n_users, n_items, batch_size, negatives, eval_data, gen,
                users_only=t.loss == "multinomial",
                hard_table=model.neighbourhoods(eval_data)[0].cpu() if hard else None,
                hard_share=t.hard_negatives,
                weights=weights,
            )  # fmt: skip
        else:
            loader = make_loader(data, graph, mine, cfg, batch_size=batch_size)
        opt = make_optimizer(model, t.lr, t.weight_decay)
        cw = None
        if t.loss == "weighted_mse":
            cw = tuple(w.to(device) for w in class_weights(graph.label[split.train]))
        has_val = len(split.val) > 0
        lower_is_better = t.objective == "rating"
        result = TrainResult()
        best_state = None
        stale = 0
        start = 1
        restores: list[int] = []  # epochs this run was restored from (worker loss, --resume)
        with ctx.restored() as state:
            if state is not None:
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                torch.set_rng_state(state["rng"][ctx.rank % len(state["rng"])])
                gen.set_state(state["gen"][ctx.rank % len(state["gen"])])
                best_state, stale = state["best_model"], state["stale"]
                result.history, result.best_epoch = state["history"], state["best_epoch"]
                result.best_val, result.val_metric = state["best_val"], state["val_metric"]
                start = state["epoch"] + 1
                restores = [*state.get("restores", []), state["epoch"]]
        cap = t.max_batches_per_epoch
        for epoch in range(start, t.epochs + 1):
            if t.disjoint_ratio > 0:
                loader = disjoint_loader(graph, mine, cfg, gen, batch_size)
            # every worker must run the same number of steps (DDP collectives)
            steps = int(ctx.all_reduce(torch.tensor(len(loader)), "min"))
            steps = steps if cap is None else min(steps, cap)
            net.train()
            t0 = time.perf_counter()
            sample_s = compute_s = 0.0
            loss_sum, n_lab, n_batches = 0.0, 0, 0
            it = iter(loader)
            bar = tqdm(total=steps, desc=f"epoch {epoch}", leave=False, disable=not progress)
            while n_batches < steps:
                ts = time.perf_counter()
                batch = next(it)
                tc = time.perf_counter()
                sample_s += tc - ts
                batch = batch.to(device)
                opt.zero_grad()
                loss, n = batch_loss(net, batch, cfg, cw)
                value = loss.item()
                if not math.isfinite(value):  # stop before the step spreads it to the weights
                    raise RunError(
                        f"train: the loss is {value} at epoch {epoch}, step {n_batches + 1} "
                        f"(train.lr={t.lr:g}; a too high learning rate or extreme labels): "
                        "training stopped, nothing was written"
                    )
                loss.backward()
                opt.step()
                compute_s += time.perf_counter() - tc
                loss_sum += value * n
                n_lab += n
                n_batches += 1
                bar.update()
                bar.set_postfix(loss=f"{loss_sum / max(n_lab, 1):.4f}")
            bar.close()
            train_s = time.perf_counter() - t0
            row = epoch_row(
                ctx, epoch, model, loss_sum, n_lab, n_batches, train_s, sample_s, compute_s
            )
            if has_val:
                name, value = validate(model, graph, eval_data, split, cfg, ctx)
                result.val_metric = name
            if has_val and not math.isfinite(value):
                if lower_is_better:  # an RMSE over real edges: the predictions are not finite
                    raise RunError(
                        f"train: {name} is {value} after epoch {epoch}: the model's predictions "
                        "are not finite; training stopped, nothing was written"
                    )
                if epoch == start:
                    warn(
                        f"{name} cannot be computed: no validation edge is a positive "
                        f"(label >= evaluate.positive_threshold); the last epoch is kept"
                    )
                row[name] = None
                result.best_epoch, best_state = epoch, None
            elif has_val:
                row[name] = value
                better = result.best_val is None or (
                    value < result.best_val if lower_is_better else value > result.best_val
                )
                if better:
                    result.best_val, result.best_epoch, stale = value, epoch, 0
                    best_state = {
                        k: v.detach().cpu().clone() for k, v in model.state_dict().items()
                    }
                else:
                    stale += 1
            else:
                result.best_epoch = epoch
            result.history.append(row)
            if progress and ctx.rank == 0:
                shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
                tqdm.write(f"epoch {epoch}: {shown}")
            done = epoch == t.epochs or (has_val and t.patience and stale >= t.patience)
            write = None
            if done or epoch % t.checkpoint_every == 0:
                rngs = ctx_states(ctx, torch.get_rng_state())  # collectives: every worker
                gens = ctx_states(ctx, gen.get_state())
                if ctx.rank == 0:
                    state = {
                        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                        "optimizer": opt.state_dict(),
                        "rng": rngs,
                        "gen": gens,
                        "best_model": best_state,
                        "stale": stale,
                        "history": result.history,
                        "best_epoch": result.best_epoch,
                        "best_val": result.best_val,
                        "val_metric": result.val_metric,
                        "epoch": epoch,
                        "restores": restores,
                        "config_digest": settings_digest(cfg),
                    }
                    write = functools.partial(save_train_state, state=state, graph=graph, cfg=cfg)
            ctx.report({k: v for k, v in row.items() if k != "workers"}, epoch, write)
            if done:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        result.stats.update(summarize(result.history, ctx.world_size))
        sampler = getattr(loader, "link_sampler", loader)
        result.stats.update(
            sampler=type(sampler).__name__, device=str(device), run_id=cfg.train.run_id
        )
        result.stats["best_epoch"] = result.best_epoch
        result.stats["restored_from_epochs"] = restores
        return result


def summarize(history: list[dict], world_size: int) -> dict:
    """Totals over epochs: labelled edges/s (all workers and per worker), sampler and
    compute seconds."""
    total_lab = sum(r["labelled_edges"] for r in history)
    total_s = sum(r["seconds"] for r in history)
    rate = total_lab / max(total_s, 1e-9)
    return {
        "epochs_run": len(history),
        "workers": world_size,
        "labelled_edges_per_s": rate,
        "labelled_edges_per_s_per_worker": rate / world_size,
        "sample_seconds": sum(r["sample_seconds"] for r in history),
        "compute_seconds": sum(r["compute_seconds"] for r in history),
    }


def epoch_row(
    ctx: TrainContext,
    epoch: int,
    model: nn.Module,
    loss_sum: float,
    n_lab: int,
    n_batches: int,
    seconds: float,
    sample_s: float,
    compute_s: float,
) -> dict:
    """One epoch's figures, summed (edges) or maxed (seconds) over workers, plus each
    worker's own: its loss, labelled edges/s, sampler and compute seconds, and a digest of
    its parameters (equal on every worker when gradients are synchronized)."""
    digest = param_digest(model) if ctx.world_size > 1 else 0.0  # hashes every parameter
    mine = [loss_sum, n_lab, seconds, sample_s, compute_s, digest, os.getpid()]
    every = ctx.all_gather(mine)
    lab = sum(w[1] for w in every)
    secs = max(w[2] for w in every)
    row = {
        "epoch": epoch,
        "loss": sum(w[0] for w in every) / max(lab, 1),
        "seconds": secs,
        "labelled_edges": int(lab),
        "labelled_edges_per_s": lab / max(secs, 1e-9),
        "sample_seconds": max(w[3] for w in every),
        "compute_seconds": max(w[4] for w in every),
        "batches": n_batches,
    }
    if ctx.world_size > 1:
        row["workers"] = [
            {
                "rank": r,
                "loss": w[0] / max(w[1], 1),
                "labelled_edges_per_s": w[1] / max(w[2], 1e-9),
                "sample_seconds": w[3],
                "compute_seconds": w[4],
                "param_digest": int(w[5]),
                "pid": int(w[6]),
            }
            for r, w in enumerate(every)
        ]
    return row


def param_digest(model: nn.Module) -> float:
    """52 bits of a SHA-256 of every parameter's bytes (exact in a float64): equal on two
    workers only when their parameters are bitwise identical."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return float(int(h.hexdigest()[:13], 16))


def ctx_states(ctx: TrainContext, state: Tensor) -> list[Tensor]:
    """Every worker's RNG state (rank order), so a restored run continues each stream."""
    if ctx.world_size == 1:
        return [state]
    gathered = ctx.all_gather([float(b) for b in state.tolist()])
    return [torch.tensor([int(v) for v in g], dtype=torch.uint8) for g in gathered]


def save_train_state(folder, state: dict, graph: Graph, cfg: JobConfig) -> None:
    """A checkpoint folder: ``train_state.pt`` (model, best model, optimizer, RNG, epoch,
    history, config) and ``id_map/<type>.parquet`` (position -> original id)."""
    graph.write_id_maps(folder)
    torch.save({**state, "config": to_dict(cfg)}, folder / "train_state.pt")
