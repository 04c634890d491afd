"""Stage 3, after training: blend the trained ranker with a closed-form partner
(``model.blend``, :mod:`graphrec.models.blend`), everything chosen on validation.

The partner (EASE where its ``items x items`` inverse fits in memory, else GF-CF: ``auto``)
is fit on the same training edges with its own setting chosen on validation
(:func:`graphrec.train.closed_form.fit_closed_form`); then the blend weight is the best of
``WEIGHTS`` on validation, 0 (the trained model alone) and 1 (the partner alone) included,
so a blend is never worse on validation than either model. Runs in the driver process
after the (possibly distributed) training; ``metrics.json`` reports the partner, its
setting, both models' and the blend's validation metric and every weight tried.
"""

from __future__ import annotations

import dataclasses
import math
import time

import psutil
import torch

from graphrec.config import JobConfig
from graphrec.errors import ConfigError, warn
from graphrec.graph.csr import to_csr
from graphrec.graph.hetero import Graph, message_graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.blend import BlendedModel
from graphrec.models.closed_form import dense_items_fit, dense_users_fit
from graphrec.models.registry import MODELS, model_spec
from graphrec.ranking.metrics import positives, ranking_metrics
from graphrec.ranking.topk import topk_by
from graphrec.train.closed_form import fit_closed_form
from graphrec.train.context import TrainContext

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Partner weights tried on validation."""

DEFAULT_WEIGHT = 0.5
"""The weight used when there is no validation split to choose on and none is set."""


def partner_name(cfg: JobConfig, num_users: int, num_items: int) -> str | None:
    """The closed-form partner of ``model.blend`` (None: no blend). ``auto``: EASE where
    its four ``items x items`` matrices fit in half of this machine's memory and three
    dense ``users x items`` history copies in a quarter, else GF-CF
    (whose linear filter it drops by itself where that does not fit)."""
    b = cfg.model.blend
    if b == "none" or model_spec(cfg.model.name).batches == "closed_form":
        return None  # a closed-form model is not blended with another one
    if b == "auto":
        fits = dense_items_fit(num_items, copies=4, share=0.5)[0]
        return "ease" if fits and dense_users_fit(num_users, num_items, 3, 0.25) else "gfcf"
    return b


def _val_scores(blended: BlendedModel, data, graph: Graph, split: EdgeSplit, cfg: JobConfig):
    """Both models' standardized scores ``[n, I]`` for the users with a validation
    positive (at most as many as fit in an eighth of this machine's memory, a seeded
    sample beyond that), their excluded training items and their positives."""
    ei = graph.target_index
    n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
    pos = positives(graph, split.val, cfg.evaluate.positive_threshold)
    users = torch.unique(ei[0, pos])
    rows = max(1, int(psutil.virtual_memory().total / 8 / (8 * max(n_items, 1))))
    if len(users) > rows:
        gen = torch.Generator().manual_seed(0)
        users = users[torch.randperm(len(users), generator=gen)[:rows]].sort().values
    local = torch.full((n_users,), -1, dtype=torch.long)
    local[users] = torch.arange(len(users))
    out = []
    for m in (blended.base, blended.partner):
        uv, iv = m.vectors(data)
        s = uv[users.to(uv.device)].float() @ iv.float().t()
        spread = s.std(dim=1, keepdim=True)
        out.append(torch.where(spread > 0, s / spread.clamp(min=1e-30), torch.zeros_like(s)))
        del uv, iv
    tu, ti = ei[0, split.train], ei[1, split.train]
    keep = local[tu] >= 0
    own = users if graph.same_type else None
    exclude = to_csr(local[tu[keep]], ti[keep], len(users), own)
    pu, pi = ei[0, pos], ei[1, pos]
    keep = local[pu] >= 0
    return out, exclude, (local[pu[keep]], pi[keep]), len(users)


def _search_weight(blended, data, graph, split, cfg, name, progress) -> tuple[float, float, list]:
    """The best partner weight of ``WEIGHTS`` on validation NDCG@k (ties: the smaller)."""
    (sb, sp), exclude, (pu, pi), n = _val_scores(blended, data, graph, split, cfg)
    k, n_items = cfg.evaluate.k, graph.num_nodes[graph.item_type]
    metric = f"val_ndcg@{k}"
    best, weight, tried = -math.inf, 0.0, []
    for w in WEIGHTS:
        top, _ = topk_by(
            lambda a, b, w=w: (1 - w) * sb[a:b] + w * sp[a:b], n, n_items, exclude, k,
            cfg.evaluate.batch_users, device=sb.device,
        )  # fmt: skip
        v = ranking_metrics(top, pu, pi, n_items, k)[f"ndcg@{k}"]
        tried.append({"weight": w, metric: v})
        if progress:
            print(f"blend with {name}, weight {w:g}: {metric}={v:.4f}", flush=True)
        if v > best:  # ties keep the smaller weight: the trained model alone first
            best, weight = v, w
    return weight, best, tried


def fit_partner(name: str, device, graph: Graph, split: EdgeSplit, cfg: JobConfig, result,
                progress: bool = False):  # fmt: skip
    """The closed-form model ``name`` fit on ``split.train`` (its setting chosen on
    validation, or fixed in its own config section), and its ``result`` filled."""
    pcfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=name))
    try:
        partner = MODELS[name].build(graph, split, pcfg).to(device)
    except ConfigError as exc:  # e.g. EASE on a catalogue too large for it
        raise ConfigError(f"model.blend={name}: {exc}") from None
    data = message_graph(graph, split.train, cfg.build.reverse_edges).to(device)
    ctx = TrainContext(cfg, device)
    return partner, fit_closed_form(partner, graph, split, pcfg, ctx, data, result, progress)


def blend_partner(model, graph: Graph, split: EdgeSplit, cfg: JobConfig, result,
                  progress: bool = False):  # fmt: skip
    """``model`` blended with its partner (or ``model`` itself: no blend configured, or
    validation chose weight 0); fills ``result.stats["blend"]`` and sets ``result.best_val``
    to the blend's validation metric."""
    name = partner_name(cfg, graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type])
    if name is None:
        return model
    t0 = time.perf_counter()
    partner, presult = fit_partner(name, model.device, graph, split, cfg, type(result)(), progress)
    data = message_graph(graph, split.train, cfg.build.reverse_edges).to(model.device)
    blended = BlendedModel(model, partner, 0.0, cfg.evaluate.batch_users)
    stats = {
        "partner": name,
        "partner_setting": presult.stats["chosen"],
        "partner_history": presult.history,
        f"base_{presult.val_metric or 'val'}": result.best_val,
        f"partner_{presult.val_metric or 'val'}": presult.best_val,
    }
    fixed = cfg.model.blend_weight
    tried: list[dict] = []
    if fixed != "auto":
        weight = float(fixed)
    elif len(split.val) == 0 or presult.best_val is None:
        weight = DEFAULT_WEIGHT
        warn(
            f"model.blend_weight=auto has nothing to be chosen on here (no validation "
            f"split, or no validation positive); blended with weight {weight:g} (choose it "
            "in an evaluate run, whose metrics.json names it, and set it)"
        )
    else:
        weight, result.best_val, tried = _search_weight(
            blended, data, graph, split, cfg, name, progress
        )
    blended.weight = weight
    stats.update(weight=weight, weights_tried=tried, seconds=time.perf_counter() - t0)
    result.stats["blend"] = stats
    return model if weight == 0.0 else blended
