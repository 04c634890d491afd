"""``graphrec compare``: every model and baseline on the same splits, seeds and protocol.

Protocol (one for all): for each split kind in ``compare.splits`` and each seed in
``compare.seeds``, the graph is split (random: seeded 80/10/10; temporal: each user's
latest edges), every method is fit on the training edges and picks its epoch or
hyper-parameters on validation, and is then scored once on test. Test ranking is full
ranking over every item the user has no train or validation edge to; positives are test
edges with ``label >= evaluate.positive_threshold`` (all test edges without a label).
Metrics: Recall@10/20, NDCG@10/20, HitRate@10, catalog coverage@20 and, for methods that
predict ratings, RMSE and MAE.

Every method is fit on the training edges and sees only them when it scores validation
or test (GNNs pass messages over them, item-kNN and popularity count them); validation
edges are excluded from the test ranking but not used as input. This is the stricter of
the usual choices: the ``train`` protocol of :mod:`graphrec.recommend.evaluate` (the job's
own test evaluation uses ``train+val``).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from graphrec.compare import baselines as B
from graphrec.compare.baselines import NEEDS_ONE_TYPE, NEEDS_RATINGS
from graphrec.compare.report import write_report
from graphrec.compare.stats import summarize
from graphrec.config import JobConfig, Node2VecConfig, load_config, to_dict
from graphrec.environment import environment
from graphrec.errors import ConfigError, warn
from graphrec.graph.csr import to_csr
from graphrec.graph.hetero import Graph, message_graph
from graphrec.graph.node2vec import item_vectors
from graphrec.graph.split import EdgeSplit
from graphrec.models import check_model
from graphrec.models.closed_form import NotPositiveDefinite
from graphrec.models.ease import LAM_FACTOR, lam_start
from graphrec.outputs import finite_or_null, write_text_atomic
from graphrec.pipeline import StageClock, extract_and_build
from graphrec.ranking.metrics import per_user_ndcg, positives, ranking_report
from graphrec.ranking.topk import topk_by
from graphrec.recommend.evaluate import known_edges, seen_edges
from graphrec.train.batches import TrainInputs
from graphrec.train.blend import blend_partner
from graphrec.train.loop import train_loop_per_worker
from graphrec.train.search import ladder

KS = (10, 20)


@dataclass
class Protocol:
    """One split of one graph: histories, exclusions and positives for val and test."""

    graph: Graph
    split: EdgeSplit
    threshold: float
    batch_users: int = 2048

    def history(self) -> B.History:
        """The training edges: everything a method is fit on and may look at when scoring
        (validation and test alike)."""
        g, train = self.graph, self.split.train
        ei = g.target_index
        ratings = None if g.label is None else g.label[train]
        n_u, n_i = g.num_nodes[g.user_type], g.num_nodes[g.item_type]
        return B.History(ei[0, train], ei[1, train], n_u, n_i, ratings)

    def excluded(self, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """CSR of the items not ranked for ``stage``: train edges (val), train+val (test)."""
        split, g = self.split, self.graph
        known = split.train if stage == "val" else known_edges(split)
        ei = g.target_index
        n = g.num_nodes[g.user_type]
        return to_csr(ei[0, known], ei[1, known], n, torch.arange(n) if g.same_type else None)

    def held_out(self, stage: str) -> torch.Tensor:
        return self.split.val if stage == "val" else self.split.test

    def rank(self, ranker: B.Ranker, stage: str) -> dict:
        """Ranking metrics on ``stage``; on test also each user's NDCG@20 (``per_user``:
        users ascending, values), which the report pairs across methods."""
        g = self.graph
        n_u, n_i = g.num_nodes[g.user_type], g.num_nodes[g.item_type]
        top, _ = topk_by(ranker.scores, n_u, n_i, self.excluded(stage), max(KS), self.batch_users)
        pos = positives(g, self.held_out(stage), self.threshold)
        ei = g.target_index
        out = ranking_report(top, ei[0, pos], ei[1, pos], n_i, KS)
        if stage == "test":
            users, ndcg = per_user_ndcg(top, ei[0, pos], ei[1, pos], n_i, 20)
            out["per_user"] = {
                "users": users.tolist(),
                "ndcg@20": [round(v, 6) for v in ndcg.tolist()],
            }
        return out

    def ratings(self, predict, stage: str) -> dict:
        edges = self.held_out(stage)
        ei = self.graph.target_index
        pred = predict(ei[0, edges], ei[1, edges]).float().cpu()
        err = pred - self.graph.label[edges]
        return {"rmse": float(err.pow(2).mean().sqrt()), "mae": float(err.abs().mean())}


# --------------------------------------------------------------------------- baselines
def _select(proto: Protocol, grid: list[dict], fit, metric: str, lower: bool):
    """Fit every setting of ``grid`` on train, score on val; the best setting and model."""
    best = None
    for params in grid:
        model = fit(proto.history(), params)
        val = _score(proto, model, "val")[metric]
        if best is None or (val < best[0] if lower else val > best[0]):
            best = (val, params, model)
    return {"params": best[1], f"val_{metric}": best[0]}, best[2]


def _ladder(
    proto: Protocol, fit, base: dict, key: str, start: float, factor: float = 4.0, most: int = 8
) -> tuple[float, dict, object, list]:
    """:func:`graphrec.train.search.ladder` over ``base[key]`` on validation NDCG@20, keeping
    only the best model in memory. Returns (val, params, model, every (value, val))."""
    best: list = [None]

    def evaluate(x: float) -> float:
        params = {**base, key: x}
        try:
            model = fit(proto.history(), params)
        except NotPositiveDefinite:
            return float("-inf")
        v = _score(proto, model, "val")["ndcg@20"]
        v = v if math.isfinite(v) else float("-inf")  # as the ladder counts it
        if best[0] is None or v > best[0][0]:
            best[0] = (v, params, model)
        return v

    _, _, tried = ladder(evaluate, start, factor, most)
    if best[0] is None:
        raise ConfigError(f"{key}: no value tried gave a model ({tried})")
    v, params, model = best[0]
    return v, params, model, tried


def _select_ease(proto: Protocol, rated: bool) -> tuple[dict, B.EASE]:
    """lam by :func:`_ladder` from where the ``ease`` model's search starts
    (:func:`graphrec.models.ease.lam_start`); ``ease_rated`` also picks the weight of
    low-rated edges, its second weight starting from the first one's best lam."""
    h = proto.history()
    start = lam_start(len(h.users) / max(h.num_items, 1))
    fit = lambda h, p: B.EASE(h, threshold=proto.threshold, **p)  # noqa: E731
    if not rated:
        v, params, model, tried = _ladder(proto, fit, {}, "lam", start, LAM_FACTOR)
        return {"params": params, "val_ndcg@20": v, "tried": tried}, model
    best, tried_all = None, []
    for w in (0.3, 0.1):
        v, params, model, tried = _ladder(
            proto, fit, {"low_label_weight": w}, "lam", start, LAM_FACTOR
        )
        tried_all.append({"low_label_weight": w, "lam": tried})
        if best is None or v > best[0]:
            best = (v, params, model)
        start = params["lam"]
        del model
    return {"params": best[1], "val_ndcg@20": best[0], "tried": tried_all}, best[2]


def _score(proto: Protocol, model, stage: str) -> dict:
    if isinstance(model, B.RatingModel):
        return {**proto.rank(model.ranker(), stage), **proto.ratings(model.predict, stage)}
    return proto.rank(model, stage)


def run_baseline(
    name: str, proto: Protocol, seed: int, node2vec: Node2VecConfig | None = None
) -> dict:
    """Fit ``name`` on train for each of its settings, keep the one validation prefers,
    test it once. ``node2vec``: the Node2Vec settings of ``node2vec_knn`` (the config's
    ``build.node2vec``; None: the defaults, every node and edge type), not searched."""
    ratings = proto.graph.label is not None
    n2v = node2vec if node2vec is not None else Node2VecConfig(seed=seed)
    if name in NEEDS_RATINGS and not ratings:
        return {"skipped": "the graph has no rating label"}
    if name in NEEDS_ONE_TYPE and not proto.graph.same_type:
        return {"skipped": "a friend-of-friend rule needs users and items of one node type"}
    als_grid = [
        {"factors": f, "regularization": r, "alpha": a, "iterations": 15}
        for f in (32, 64, 128)
        for a in (1.0, 5.0, 20.0)
        for r in (1.0, 10.0, 30.0, 100.0)
    ]
    fits = {
        "popularity": ([{}], lambda h, p: B.popularity(h)),
        "common_neighbours": ([{}], lambda h, p: B.SharedNeighbours(h, adamic_adar=False)),
        "adamic_adar": ([{}], lambda h, p: B.SharedNeighbours(h, adamic_adar=True)),
        "itemknn": (
            [{"neighbours": k} for k in (20, 50, 100, 200, None)],
            lambda h, p: B.ItemKNN(h, p["neighbours"]),
        ),
        "als": (als_grid, lambda h, p: B.als(h, seed=seed, **p)),
        "als_rated": (
            [{**p, "low_label_weight": w} for w in (0.1, 0.3) for p in als_grid],
            lambda h, p: B.als(h, seed=seed, threshold=proto.threshold, **p),
        ),
        "bpr": (
            [
                {"factors": 64, "learning_rate": lr, "iterations": it}
                for lr in (0.01, 0.05)
                for it in (100, 300)
            ],
            lambda h, p: B.bpr(h, seed=seed, **p),
        ),
        "bias": ([{"reg": r} for r in (1.0, 5.0, 15.0, 30.0)], lambda h, p: B.BiasModel(h, **p)),
        "node2vec_knn": ([{}], lambda h, p: B.embedding_knn(h, _node2vec_items(proto, n2v))),
    }
    t0 = time.perf_counter()
    if name == "biased_mf":
        chosen, model = _select_biased_mf(proto, seed)
    elif name in ("ease", "ease_rated"):
        chosen, model = _select_ease(proto, rated=name == "ease_rated")
    elif name in fits:
        grid, fit = fits[name]
        metric, lower = ("rmse", True) if name == "bias" else ("ndcg@20", False)
        chosen, model = _select(proto, grid, fit, metric, lower)
    else:
        raise ConfigError(f"compare.baselines: unknown baseline {name!r}")
    out = _score(proto, model, "test")
    out.update(chosen=chosen, seconds=time.perf_counter() - t0)
    return out


def _node2vec_items(proto: Protocol, cfg: Node2VecConfig) -> torch.Tensor:
    """Node2Vec vectors of the items, from the training edges (on ``cfg``'s projection)."""
    return item_vectors(proto.graph, proto.split.train, cfg, "compare.baselines: node2vec_knn")


def _select_biased_mf(proto: Protocol, seed: int) -> dict:
    """Factors 32; L2 and epochs chosen on validation RMSE."""
    val_edges = proto.split.val
    ei, label = proto.graph.target_index, proto.graph.label
    val = (ei[0, val_edges], ei[1, val_edges], label[val_edges])
    best = None
    for reg in (0.01, 0.05, 0.1):
        m = B.BiasedMF(proto.history(), 32, reg, 60, seed, val=val)
        err = proto.ratings(m.predict, "val")["rmse"]
        if best is None or err < best[0]:
            best = (err, {"factors": 32, "reg": reg, "epochs": m.best_epoch}, m)
    return {"params": best[1], "val_rmse": best[0]}, best[2]


# --------------------------------------------------------------------------- models
def run_model(cfg: JobConfig, graph: Graph, split: EdgeSplit, progress: bool) -> dict:
    """Train graphrec's model ``cfg`` (validation picks the epoch), test it once."""
    t0 = time.perf_counter()
    inputs = TrainInputs.of(graph, split, cfg)
    model, result = train_loop_per_worker({"cfg": cfg, "inputs": inputs, "progress": progress})
    model = blend_partner(model, graph, split, cfg, result, progress)
    train_s = time.perf_counter() - t0
    proto = Protocol(graph, split, cfg.evaluate.positive_threshold, cfg.evaluate.batch_users)
    data = message_graph(graph, seen_edges(split, "train"), cfg.build.reverse_edges)
    data = data.to(model.device)
    uv, iv = model.vectors(data)
    out = proto.rank(B.VectorRanker(uv.cpu(), iv.cpu()), "test")
    if cfg.train.objective == "rating":
        model.eval()
        with torch.no_grad():
            z = model.encode(data)

        def predict(u, i):
            with torch.no_grad():
                return model.score(data, z, torch.stack([u, i]).to(model.device))

        out.update(proto.ratings(predict, "test"))
    blend = result.stats.get("blend")
    if blend:  # what validation chose, per seed (the weight is numeric: it gets a mean)
        out.update(blend_partner=blend["partner"], blend_weight=blend["weight"])
    out.update(
        best_epoch=result.best_epoch,
        epochs_run=len(result.history),
        **{result.val_metric: result.best_val},
        seconds=train_s,
    )
    rate = result.stats.get("labelled_edges_per_s")
    if rate is not None:  # training throughput (e.g. temporal vs plain sampling)
        out["train_edges_per_s"] = rate
    return out


# --------------------------------------------------------------------------- driver
def run_compare(
    config_path: str, overrides: list[str] | None = None, progress: bool = True
) -> tuple[dict, Path]:
    """Every baseline and model of ``compare`` over its splits and seeds; writes
    ``<compare.out>/quality-<name>.json`` and ``.md``; returns the results and the .md."""
    overrides = list(overrides or [])
    base = load_config(config_path, overrides)
    cc = base.compare
    same = sorted(set(cc.models) & set(cc.baselines))
    if same:
        raise ConfigError(
            f"compare.models: {', '.join(same)} is also a baseline's name; name the model "
            "differently (e.g. graphrec-" + same[0] + ")"
        )
    for name, extra in cc.models.items():
        for item in extra:
            key = item.partition("=")[0]
            if key.split(".")[0] in ("extract", "build", "name", "mode", "compare"):
                raise ConfigError(
                    f"compare.models.{name}: {key!r} changes the data or the split; models "
                    "are compared on the same graph (use the top-level config for that)"
                )
        try:  # every model's own checks before any work
            check_model(load_config(config_path, overrides + extra))
        except ConfigError as exc:
            raise ConfigError(f"compare.models.{name}: {exc}") from None
    results: dict = {}
    t_all = time.perf_counter()
    for kind in cc.splits:
        per: dict[str, list[dict]] = {}
        for seed in cc.seeds:
            seeded = [f"build.split.kind={kind}", f"build.split.seed={seed}", f"train.seed={seed}"]
            cfg = load_config(config_path, overrides + seeded)
            cfg.train.checkpoint_path = None  # comparisons keep no training checkpoints
            graph, split = extract_and_build(cfg, StageClock(), progress=False)
            proto = Protocol(graph, split, cfg.evaluate.positive_threshold)
            jobs = [("baseline", b) for b in cc.baselines] + [("model", m) for m in cc.models]
            bar = tqdm(jobs, desc=f"{kind} split, seed {seed}", disable=not progress)
            for what, name in bar:
                bar.set_postfix_str(name)
                if what == "baseline":
                    row = run_baseline(name, proto, seed, cfg.build.node2vec)
                else:
                    mcfg = load_config(config_path, overrides + seeded + cc.models[name])
                    mcfg.train.checkpoint_path = None
                    row = run_model(mcfg, graph, split, progress=False)
                row["seed"] = seed
                per.setdefault(name, []).append(row)
                if progress:
                    shown = {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
                    tqdm.write(f"{kind} seed {seed} {name}: {shown}")
        results[kind] = {name: summarize(rows) for name, rows in per.items()}
    out = {
        "dataset": base.name,
        "config": config_path,
        "overrides": overrides,
        "seeds": cc.seeds,
        "splits": cc.splits,
        "models": {name: cc.models[name] for name in cc.models},
        "seconds": time.perf_counter() - t_all,
        "environment": environment(),
        "base_config": to_dict(base),
        "results": results,
    }
    folder = Path(cc.out)
    folder.mkdir(parents=True, exist_ok=True)
    out, nulls = finite_or_null(out)
    if nulls:
        warn(f"not computable on these splits, written as null: {', '.join(nulls[:6])}")
    write_text_atomic(folder / f"quality-{base.name}.json", dump_results(out))
    md = folder / f"quality-{base.name}.md"
    write_report(out, md, model_names=list(cc.models))
    return out, md


def dump_results(out: dict) -> str:
    """Indented JSON, except that lists of numbers (the per-user values) stay on one line.
    Only arrays the indenter broke over lines are joined (a string never holds a raw line
    break in JSON), so text such as an override ``compare.seeds=[0,1]`` is left as it is."""
    text = json.dumps(out, indent=2, default=str, allow_nan=False)
    number = r"-?[\d.eE+-]+"
    return re.sub(
        rf"\[\n\s*({number}(?:,\n\s*{number})*)\n\s*\]",
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
        text,
    )
