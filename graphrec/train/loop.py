"""Stage 3, train: ``LinkNeighborLoader`` mini-batches through the model, one epoch at a time.

:func:`train_loop` is a plain function of (model, graph, split, config): a single process
calls it, and the Ray Train worker of the distributed issue will call the same function.
Validation after every epoch picks the best epoch (its weights are kept); the test split is
never looked at here.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.sampler import NegativeSampling
from tqdm.auto import tqdm

from graphrec.build.graph import Graph, message_graph
from graphrec.build.split import EdgeSplit
from graphrec.config import JobConfig
from graphrec.errors import ConfigError
from graphrec.models.recommender import Recommender, build_model
from graphrec.recommend.topk import to_csr
from graphrec.samplers.neighbor import make_neighbor_sampler
from graphrec.train.metrics import evaluate_ranking, rmse


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    """Per epoch: loss, validation metric, seconds, labelled edges/s, sample vs compute s."""
    best_epoch: int = 0
    best_val: float | None = None
    val_metric: str = ""
    stats: dict = field(default_factory=dict)


def make_loader(
    data: HeteroData, graph: Graph, edges: Tensor, cfg: JobConfig, shuffle: bool = True
) -> LinkNeighborLoader:
    """Mini-batches over target edges ``edges`` (indices into the target edge list)."""
    t = cfg.train
    label = graph.label[edges] if t.objective == "rating" else None
    neg = None
    if t.objective == "link":
        mode = "triplet" if t.loss == "bpr" else "binary"
        neg = NegativeSampling(mode, amount=t.num_negatives)
    sampler = make_neighbor_sampler(data, cfg.sampler.num_neighbors, cfg.sampler.backend)
    return LinkNeighborLoader(
        data,
        num_neighbors=cfg.sampler.num_neighbors,
        edge_label_index=(graph.target, graph.target_index[:, edges]),
        edge_label=label,
        neg_sampling=neg,
        batch_size=cfg.sampler.batch_size,
        shuffle=shuffle,
        num_workers=cfg.sampler.num_workers,
        neighbor_sampler=sampler,
    )


def new_model(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> Recommender:
    """The configured model for ``graph``: one layer per sampler hop; for ratings the
    decoder's global bias starts at the mean training rating."""
    init_mean = float(graph.label[split.train].mean()) if cfg.train.objective == "rating" else 0.0
    edge_types = message_graph(graph, split.train[:0], cfg.build.reverse_edges).edge_types
    return build_model(
        cfg.model,
        graph.num_nodes,
        {t: x.shape[1] for t, x in graph.x.items()},
        edge_types,
        graph.target,
        len(cfg.sampler.num_neighbors),
        init_mean,
    )


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when one is visible, else the CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no GPU is visible: use train.device=cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def class_weights(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse-frequency weight per distinct label value (the seed articles' weighted MSE)."""
    values, counts = torch.unique(labels, return_counts=True)
    weights = counts.sum() / (len(values) * counts.float())
    return values, weights


def batch_loss(
    model: Recommender, batch: HeteroData, cfg: JobConfig, cw=None
) -> tuple[Tensor, int]:
    """Loss of one mini-batch and its number of labelled (positive) edges."""
    z = model.encode(batch)
    t = cfg.train
    store = batch[model.user, cfg.build.target, model.item]
    if t.loss == "bpr":
        src = batch[model.user].src_index
        pos = model.score(batch, z, torch.stack([src, batch[model.item].dst_pos_index]))
        neg_items = batch[model.item].dst_neg_index.view(len(src), -1)  # [B, negatives]
        src_rep = src.unsqueeze(1).expand_as(neg_items)
        neg = model.score(batch, z, torch.stack([src_rep.reshape(-1), neg_items.reshape(-1)]))
        return -F.logsigmoid(pos.unsqueeze(1) - neg.view_as(neg_items)).mean(), len(src)
    pred = model.score(batch, z, store.edge_label_index)
    y = store.edge_label.float()
    if t.loss == "bce":
        return F.binary_cross_entropy_with_logits(pred, y), int(y.sum())
    err = (pred - y) ** 2
    if t.loss == "weighted_mse":
        values, weights = cw
        err = err * weights[torch.searchsorted(values, y)]
    return err.mean(), len(y)


def validate(
    model: Recommender, graph: Graph, data: HeteroData, split: EdgeSplit, cfg: JobConfig
) -> tuple[str, float]:
    """The validation metric: RMSE (rating objective) or NDCG@k (link objective)."""
    ei = graph.target_index
    if cfg.train.objective == "rating":
        model.eval()
        with torch.no_grad():
            z = model.encode(data)
            pred = model.score(data, z, ei[:, split.val].to(model.device))
        model.train()
        return "val_rmse", rmse(pred.cpu(), graph.label[split.val])
    uv, iv = model.vectors(data)
    n_users = graph.num_nodes[graph.user_type]
    exclude = to_csr(ei[0, split.train], ei[1, split.train], n_users)
    pos = positives(graph, split.val, cfg.evaluate.positive_threshold)
    m = evaluate_ranking(
        uv, iv, exclude, ei[0, pos], ei[1, pos], cfg.evaluate.k, cfg.evaluate.batch_users
    )
    return f"val_ndcg@{cfg.evaluate.k}", m[f"ndcg@{cfg.evaluate.k}"]


def disjoint_loader(
    graph: Graph, train: Tensor, cfg: JobConfig, gen: torch.Generator
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
    return make_loader(message_graph(graph, msg, cfg.build.reverse_edges), graph, sup, cfg)


def positives(graph: Graph, edges: Tensor, threshold: float) -> Tensor:
    """The held-out edges that count as positives (label >= threshold, or all)."""
    if graph.label is None:
        return edges
    return edges[graph.label[edges] >= threshold]


def train_loop(
    model: Recommender, graph: Graph, split: EdgeSplit, cfg: JobConfig, progress: bool = True
) -> TrainResult:
    """Train ``model`` in place on ``split.train``; keep the best validation epoch's weights."""
    t = cfg.train
    torch.manual_seed(t.seed)
    device = resolve_device(t.device)
    model.to(device)
    data = message_graph(graph, split.train, cfg.build.reverse_edges)
    # the loader samples from `data` on the CPU; validation runs the full graph on `device`
    eval_data = message_graph(graph, split.train, cfg.build.reverse_edges).to(device)
    loader = make_loader(data, graph, split.train, cfg)
    gen = torch.Generator().manual_seed(t.seed)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    cw = None
    if t.loss == "weighted_mse":
        cw = tuple(w.to(device) for w in class_weights(graph.label[split.train]))
    has_val = len(split.val) > 0
    lower_is_better = t.objective == "rating"
    result = TrainResult()
    best_state = None
    stale = 0
    for epoch in range(1, t.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        sample_s = compute_s = 0.0
        loss_sum, n_lab, n_batches = 0.0, 0, 0
        if t.disjoint_ratio > 0:
            loader = disjoint_loader(graph, split.train, cfg, gen)
        it = iter(loader)
        bar = tqdm(
            total=len(loader)
            if t.max_batches_per_epoch is None
            else min(len(loader), t.max_batches_per_epoch),
            desc=f"epoch {epoch}",
            leave=False,
            disable=not progress,
        )
        while t.max_batches_per_epoch is None or n_batches < t.max_batches_per_epoch:
            ts = time.perf_counter()
            batch = next(it, None)
            if batch is None:
                break
            tc = time.perf_counter()
            sample_s += tc - ts
            batch = batch.to(device)
            opt.zero_grad()
            loss, n = batch_loss(model, batch, cfg, cw)
            loss.backward()
            opt.step()
            compute_s += time.perf_counter() - tc
            loss_sum += loss.item() * n
            n_lab += n
            n_batches += 1
            bar.update()
            bar.set_postfix(loss=f"{loss_sum / max(n_lab, 1):.4f}")
        bar.close()
        train_s = time.perf_counter() - t0
        row = {
            "epoch": epoch,
            "loss": loss_sum / max(n_lab, 1),
            "seconds": train_s,
            "labelled_edges_per_s": n_lab / train_s,
            "sample_seconds": sample_s,
            "compute_seconds": compute_s,
            "batches": n_batches,
        }
        if has_val:
            name, value = validate(model, graph, eval_data, split, cfg)
            result.val_metric = name
            row[name] = value
            better = result.best_val is None or (
                value < result.best_val if lower_is_better else value > result.best_val
            )
            if better:
                result.best_val, result.best_epoch, stale = value, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
        else:
            result.best_epoch = epoch
        result.history.append(row)
        if progress:
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            tqdm.write(f"epoch {epoch}: {shown}")
        if has_val and t.patience and stale >= t.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    total_lab = sum(r["labelled_edges_per_s"] * r["seconds"] for r in result.history)
    total_s = sum(r["seconds"] for r in result.history)
    result.stats = {
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "labelled_edges_per_s": total_lab / max(total_s, 1e-9),
        "sample_seconds": sum(r["sample_seconds"] for r in result.history),
        "compute_seconds": sum(r["compute_seconds"] for r in result.history),
        "sampler": type(loader.link_sampler).__name__,
        "device": str(device),
    }
    return result
