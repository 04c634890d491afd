"""Hyperparameter search on Ray Tune over the same training function.

Each trial is :func:`graphrec.train.loop.train_loop_per_worker` with a
:class:`~graphrec.distributed.context.TuneContext` and one point of the search space
(``tune`` in the config): learning rate (log-uniform), hidden size, first-hop fan-out and
number of layers (= sampler hops; later hops halve the fan-out). Trials report the
validation metric every epoch and ASHA stops the weak ones early; the test split is never
looked at. The graph goes into the object store once and every trial maps it zero-copy.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pyarrow.fs as pafs
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from graphrec.config import JobConfig, to_dict
from graphrec.distributed.context import TuneContext
from graphrec.distributed.shared import SharedInputs, put_inputs
from graphrec.distributed.trainer import init_ray
from graphrec.errors import ConfigError, warn
from graphrec.models import check_model
from graphrec.pipeline import StageClock, extract_and_build
from graphrec.train.batches import TrainInputs
from graphrec.train.context import absolute_uri
from graphrec.train.loop import train_loop_per_worker


def fanouts(first: int, layers: int) -> list[int]:
    """``[first, first/2, ...]`` for ``layers`` hops, each at least 2."""
    return [max(2, first >> i) for i in range(layers)]


def apply_params(cfg: JobConfig, params: dict) -> JobConfig:
    """A copy of ``cfg`` with one point of the search space."""
    out = copy.deepcopy(cfg)
    out.train.lr = float(params["lr"])
    out.model.hidden = out.model.embedding_dim = int(params["hidden"])
    out.sampler.num_neighbors = fanouts(int(params["fanout"]), int(params["layers"]))
    out.train.checkpoint_path = None  # trials are stopped, not resumed
    out.distributed.workers = 0
    return out


def _trial(params: dict, cfg: JobConfig, inputs: SharedInputs) -> None:
    train_loop_per_worker(
        {"cfg": apply_params(cfg, params), "inputs": inputs, "context": TuneContext}
    )


def metric_of(cfg: JobConfig) -> tuple[str, str]:
    """The validation metric trials are ranked by, and whether lower or higher is better."""
    if cfg.train.objective == "rating":
        return "val_rmse", "min"
    return f"val_ndcg@{cfg.evaluate.k}", "max"


def run_tune(cfg: JobConfig, progress: bool = True) -> dict:
    """Search, then write every trial's config and metrics as JSON; returns the best."""
    if cfg.mode != "evaluate":
        raise ConfigError("graphrec tune needs mode=evaluate (trials are ranked on validation)")
    if check_model(cfg).batches == "closed_form":
        raise ConfigError(
            f"graphrec tune searches training settings; model.name={cfg.model.name} is fit in "
            "closed form and chooses its one setting on validation itself (graphrec run)"
        )
    if cfg.model.blend != "none":
        warn(
            f"model.blend={cfg.model.blend} is applied after training by graphrec run and "
            "compare, not in tune's trials: trials rank the trained model alone, and the "
            "blend's partner and weight are chosen in the run that uses the tuned settings"
        )
    t = cfg.tune
    graph, split = extract_and_build(cfg, StageClock(), progress)
    init_ray(cfg.distributed.address, quiet=not progress)
    shared = put_inputs(TrainInputs.of(graph, split, cfg))
    metric, mode = metric_of(cfg)
    space = {
        "lr": tune.loguniform(t.lr[0], t.lr[1]),
        "hidden": tune.choice(t.hidden),
        "fanout": tune.choice(t.fanout),
        "layers": tune.choice(t.layers),
    }
    name = f"{cfg.name}-tune-{time.strftime('%Y%m%d-%H%M%S')}"
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(_trial, cfg=cfg, inputs=shared), {"cpu": t.cpus_per_trial}
        ),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            num_samples=t.num_samples,
            max_concurrent_trials=t.max_concurrent,
            scheduler=ASHAScheduler(
                max_t=cfg.train.epochs,
                grace_period=min(t.grace_period, cfg.train.epochs),
                reduction_factor=t.reduction_factor,
            ),
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=absolute_uri(t.storage_path), verbose=1 if progress else 0
        ),
    )
    grid = tuner.fit()
    trials = []
    for r in grid:
        if r.metrics is None:
            continue
        trials.append(
            {
                "config": r.config,
                "epochs": r.metrics.get("training_iteration"),
                metric: r.metrics.get(metric),
                "best_" + metric: _best(r.metrics_dataframe, metric, mode),
                "error": None if r.error is None else str(r.error).splitlines()[0],
            }
        )
    best = grid.get_best_result(metric=metric, mode=mode, scope="all")
    out = {
        "metric": metric,
        "mode": mode,
        "best_config": best.config,
        "best_value": _best(best.metrics_dataframe, metric, mode),
        "trials": trials,
        "config": to_dict(cfg),
    }
    uri = f"{absolute_uri(t.storage_path).rstrip('/')}/{name}/graphrec-tune.json"
    fs, path = pafs.FileSystem.from_uri(uri)
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(out, indent=1, default=str).encode())
    out["results_file"] = uri if "://" in uri else str(Path(path))
    return out


def _best(df, metric: str, mode: str) -> float | None:
    if df is None or metric not in df:
        return None
    col = df[metric].dropna()
    if col.empty:
        return None
    return float(col.min() if mode == "min" else col.max())
