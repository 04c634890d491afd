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
import math
import time
from dataclasses import dataclass, field

import torch
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from graphrec.config import JobConfig
from graphrec.errors import RunError, raise_if_interrupted, warn
from graphrec.graph.hetero import Graph, message_graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.registry import RecommenderModel, build, model_spec
from graphrec.train.batches import (
    disjoint_loader,
    finish_batches,
    make_loader,
    start_batches,
    user_loader,
    worker_edges,
)
from graphrec.train.checkpoint import ctx_states, save_train_state
from graphrec.train.closed_form import fit_closed_form
from graphrec.train.context import TrainContext, resolve_device, settings_digest
from graphrec.train.episodes import fit_episodes
from graphrec.train.evaluation import validate
from graphrec.train.losses import batch_loss, class_weights
from graphrec.train.optimizer import deterministic_algorithms, make_optimizer
from graphrec.train.stats import epoch_row, summarize


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    """Per epoch: loss, validation metric, seconds, labelled edges/s, sample vs compute s."""
    best_epoch: int = 0
    best_val: float | None = None
    val_metric: str = ""
    stats: dict = field(default_factory=dict)


def train_loop_per_worker(config: dict) -> tuple[RecommenderModel, TrainResult]:
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


def new_model(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> RecommenderModel:
    """The configured model for ``graph``, built by its registry entry."""
    return build(graph, split, cfg)


def train_loop(
    model: RecommenderModel,
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
    ctx = ctx or TrainContext(cfg, resolve_device(cfg.train.device))
    ctx.data_digest = graph.ids_digest()
    with deterministic_algorithms(cfg.train.deterministic), ctx.running():
        t = cfg.train
        device = ctx.device
        torch.manual_seed(t.seed + ctx.rank)
        model.to(device)
        if data is None:
            data = message_graph(graph, split.train, cfg.build.reverse_edges, cfg.sampler.temporal)
        # the loader samples from `data` on the CPU; validation runs the full graph on `device`
        eval_data = data.to(device) if device.type != "cpu" else data
        kind = model_spec(cfg.model.name).batches
        if kind in ("closed_form", "episodes"):
            fit = fit_closed_form if kind == "closed_form" else fit_episodes
            result = fit(model, graph, split, cfg, ctx, eval_data, TrainResult(), progress)
            result.stats.update(summarize(result.history, ctx.world_size))
            result.stats.update(device=str(device), run_id=t.run_id, best_epoch=result.best_epoch)
            return result
        net = ctx.prepare_model(model)
        mine = worker_edges(graph, split, cfg, ctx)
        batch_size = math.ceil(cfg.sampler.batch_size / ctx.world_size)
        gen = torch.Generator().manual_seed(t.seed + ctx.rank)
        if model_spec(cfg.model.name).batches == "user":
            loader = user_loader(model, graph, mine, cfg, eval_data, gen, batch_size)
        else:
            # one worker trains on all of split.train: the message graph's own target edges
            own = None if ctx.world_size == 1 else mine
            loader = make_loader(data, graph, own, cfg, batch_size=batch_size)
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
            it = start_batches(loader)
            bar = tqdm(total=steps, desc=f"epoch {epoch}", leave=False, disable=not progress)
            try:
                while n_batches < steps:
                    raise_if_interrupted()
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
            except BaseException:  # interrupted or failed: the workers stop here, not in a __del__
                finish_batches(it, quiet=True)
                raise
            finish_batches(it)
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
                        "data_digest": ctx.data_digest,
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
