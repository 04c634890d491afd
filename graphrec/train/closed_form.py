"""Stage 3 for closed-form models (``ease``, ``gfcf``): no epochs, a fit per value of the
model's one setting, that value chosen on validation by :func:`graphrec.train.search.ladder`
(or fixed in the config). One history row per value tried, so ``metrics.json`` shows what
was tried and what was chosen; ``best_epoch`` is the row of the chosen value.
"""

from __future__ import annotations

import math
import time

from graphrec.config import JobConfig
from graphrec.errors import warn
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.closed_form import NotPositiveDefinite
from graphrec.train.context import TrainContext
from graphrec.train.evaluation import validate
from graphrec.train.search import ladder, nice


def fit_closed_form(model, graph: Graph, split: EdgeSplit, cfg: JobConfig, ctx: TrainContext,
                    data, result, progress: bool = False):  # fmt: skip
    """Fit ``model`` on ``data`` (the training message graph); fills and returns ``result``."""
    n_train = len(split.train)
    t0 = time.perf_counter()
    model.prepare(data)
    prepare_s = time.perf_counter() - t0
    fixed, start, factor = model.search()
    has_val = len(split.val) > 0
    fitted: list[float] = []

    def fit(value: float) -> dict:
        t = time.perf_counter()
        model.fit(data, value)
        fitted.append(value)
        s = time.perf_counter() - t + (prepare_s if len(fitted) == 1 else 0.0)
        row = {
            "epoch": len(result.history) + 1,
            model.setting: value,
            "seconds": s,
            "labelled_edges": n_train,
            "labelled_edges_per_s": n_train / max(s, 1e-9),
            "sample_seconds": 0.0,
            "compute_seconds": s,
            "batches": 0,
        }
        result.history.append(row)
        return row

    def evaluate(value: float) -> float:
        try:
            row = fit(value)
        except NotPositiveDefinite:
            if fixed is not None:
                raise
            return float("-inf")  # too little regularisation: the search moves away from it
        name, v = validate(model, graph, data, split, cfg, ctx)
        result.val_metric = name
        row[name] = v
        if progress:
            print(f"{model.setting}={value:g}: {name}={v:.4f}", flush=True)
        return v

    start = nice(start)
    if fixed is not None or not has_val:
        value = fixed if fixed is not None else start
        if fixed is None:  # mode=final (or no validation edges): nothing to choose on
            warn(
                f"model.{cfg.model.name}.{model.setting}=auto has no validation split to be "
                f"chosen on here; fit with {model.setting}={value:g} (choose it in an evaluate "
                "run, whose metrics.json names it, and set it)"
            )
        v = evaluate(value) if has_val else (fit(value), None)[1]
        result.best_val = v if v is not None and math.isfinite(v) else None
    else:
        first = evaluate(start)
        if not math.isfinite(first):  # no validation positive: every value scores alike
            warn(
                f"{result.val_metric} cannot be computed (no validation edge is a positive: "
                f"label >= evaluate.positive_threshold); {model.setting}={start:g} is kept"
            )
            value, result.best_val = start, None
        else:
            value, result.best_val, _ = ladder(evaluate, start, factor)
            if fitted[-1] != value:
                model.fit(data, value)  # the chosen value's fit (only the last one is kept)
    for row in result.history:  # a metric that could not be computed is null, never NaN
        if result.val_metric in row and not math.isfinite(row[result.val_metric]):
            row[result.val_metric] = None
    result.best_epoch = next(r["epoch"] for r in result.history if r[model.setting] == value)
    result.stats["chosen"] = {model.setting: value}
    return result
