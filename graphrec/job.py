"""The whole job, stage by stage: extract -> build -> train -> recommend -> write back.

Each stage is timed and its peak memory recorded. Everything the run produces goes to a
temporary folder that is renamed to the run folder only when the job has succeeded, so a
failed run never leaves a half-written result behind.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from graphrec.config import JobConfig, to_dict
from graphrec.environment import environment
from graphrec.errors import ConfigError, GraphRecError, Interrupted, warn
from graphrec.graph import Graph
from graphrec.models import check_model
from graphrec.models.blend import BlendedModel
from graphrec.models.registry import RecommenderModel
from graphrec.outputs import finite_or_null
from graphrec.pipeline import RssSampler, StageClock, extract_and_build
from graphrec.plots import plot_episodes, plot_training_curve
from graphrec.recommend import evaluate_test, recommend_all
from graphrec.sinks import make_sink, sink_names
from graphrec.staging import leftover_staging, staged_dir, write_manifest
from graphrec.train.batches import TrainInputs
from graphrec.train.blend import blend_partner
from graphrec.train.context import join_uri, newest_checkpoint, resolve_device
from graphrec.train.final import apply_choices, choice_config, validation_split
from graphrec.train.loop import train_loop_per_worker


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict


def run_job(cfg: JobConfig, progress: bool = True, train_only: bool = False) -> RunResult:
    """Run all five stages for ``cfg`` (``train_only``: extract, build, train and evaluate);
    returns the run folder and its metrics.

    The run folder is new: ``write.run_dir`` must not exist (checked before any work, and
    again when the folder is renamed into place), and the default name carries a random
    suffix, so runs started at the same instant get folders of their own.
    """
    check_model(cfg)  # the model's own checks, before any work
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    final = new_run_folder(cfg)
    note_leftovers(final.parent)
    # each stage's own peak RSS in metrics.json (a 20 ms poll: ru_maxrss only ever grows)
    with staged_dir(final) as work, RssSampler(0.02) as rss:
        metrics = _run(cfg, work, progress, train_only, StageClock(rss))
    return RunResult(final, metrics)


def new_run_folder(cfg: JobConfig, kind: str = "") -> Path:
    """``write.run_dir`` (refused when it exists), or
    ``runs/<name>[-kind]-<timestamp>-<suffix>``."""
    if cfg.write.run_dir:
        final = Path(cfg.write.run_dir)
        if final.exists() or final.is_symlink():
            raise ConfigError(
                f"write.run_dir={cfg.write.run_dir!r} already exists: graphrec never writes "
                "into a folder it did not create; name a new folder or leave write.run_dir "
                "unset (runs/<name>-<timestamp>-<suffix>)"
            )
        return final
    return Path(_default_run_dir(f"{cfg.name}-{kind}" if kind else cfg.name))


def _train(cfg: JobConfig, graph: Graph, split, progress: bool):
    """Stage 3 on ``split``: one process or Ray Train workers, then the blend."""
    inputs = TrainInputs.of(graph, split, cfg)
    if cfg.distributed.workers > 0:
        from graphrec.distributed import fit  # Ray only when asked for

        model, result = fit(inputs, cfg, progress)
        model.to(resolve_device(cfg.train.device))
    else:
        model, result = train_loop_per_worker({"cfg": cfg, "inputs": inputs, "progress": progress})
    del inputs
    return blend_partner(model, graph, split, cfg, result, progress), result


def note_leftovers(folder: Path) -> None:
    """Name the staging folders that killed runs left beside the new run folder."""
    left = leftover_staging(folder)
    if left:
        names = ", ".join(p.name for p, _ in left[:3]) + (" ..." if len(left) > 3 else "")
        warn(
            f"{len(left)} unfinished run folder(s) of interrupted runs in {folder}: {names} "
            f"(graphrec clean {folder} removes them)"
        )


def _run(
    cfg: JobConfig, run_dir: Path, progress: bool, train_only: bool, clock: StageClock
) -> dict:
    sinks = [] if train_only else sink_names(cfg)  # an unknown sink fails now, not later

    read_parts = None
    if cfg.distributed.workers > 0:  # the cluster's nodes read the partitions too
        from graphrec.distributed.extract import ray_read_parts

        read_parts = ray_read_parts(cfg, progress)
    graph, split = extract_and_build(cfg, clock, progress, read_parts)

    chosen = None
    if cfg.mode == "final" and cfg.final_validation and cfg.build.split.val > 0:
        with clock.stage("choose") as st:
            inner = validation_split(cfg, graph)
            _, inner_result = _train(choice_config(cfg), graph, inner, progress)
            cfg, chosen = apply_choices(cfg, inner_result)
            st.update(train_edges=len(inner.train), val_edges=len(inner.val), **chosen)
        if progress:
            print(f"chosen on {len(inner.val):,} validation edges: {chosen}", flush=True)

    with clock.stage("train") as st, checkpoint_hint(cfg):
        model, result = _train(cfg, graph, split, progress)
        st.update(result.stats)

    metrics: dict = {"name": cfg.name, "mode": cfg.mode, "objective": cfg.train.objective}
    if chosen is not None:
        metrics["chosen_on_validation"] = chosen
    if cfg.mode == "evaluate":
        with clock.stage("evaluate"):
            metrics.update(evaluate_test(model, graph, split, cfg))
        metrics["best_epoch"] = result.best_epoch
        metrics[result.val_metric] = result.best_val
        metrics["chosen_on_validation"] = apply_choices(cfg, result)[1]

    if not train_only:
        with clock.stage("recommend") as st:
            recs = recommend_all(model, graph, cfg, progress, report=st)
            st["users"] = graph.num_nodes[graph.user_type]
        st["users_per_s"] = st["users"] / st["seconds"]

    with clock.stage("write") as st:
        for name in sinks:
            st[name] = make_sink(name, cfg, run_dir).write(recs)
        if sinks:
            st["rows_per_s"] = st[sinks[-1]]["rows_per_s"]
            metrics["recommendations"] = {"rows": recs.num_rows, "k": cfg.recommend.k}
        save_checkpoint(run_dir, model, graph, cfg, result.best_epoch, blend_of(model, result))
        plot_training_curve(result.history, result.val_metric, run_dir / "training_curve.png")
        if "episodes" in result.stats:  # a reinforcement-learning model
            plot_episodes(result.stats["episodes"], run_dir / "dqn_episodes.png")

    metrics["stages"] = clock.stages
    metrics["seconds"] = clock.seconds
    metrics["history"] = result.history
    metrics["environment"] = environment()
    metrics["config"] = to_dict(cfg)
    metrics, nulls = finite_or_null(metrics)
    if nulls:
        warn(
            "no held-out edges to compute these on, written as null in metrics.json: "
            + ", ".join(nulls[:8])
            + (f" and {len(nulls) - 8} more" if len(nulls) > 8 else "")
        )
    text = json.dumps(metrics, indent=2, default=str, allow_nan=False)
    (run_dir / "metrics.json").write_text(text)
    folder = run_dir.name.split(".partial-")[0].lstrip(".")
    write_manifest(run_dir, {"name": cfg.name, "run_folder": folder, "created": time.time()})
    return metrics


@contextlib.contextmanager
def checkpoint_hint(cfg: JobConfig):
    """A training stage that fails or is interrupted says where its checkpoints are kept
    and how to continue from them."""
    try:
        yield
    except (GraphRecError, Interrupted) as exc:
        hint = _checkpoint_hint(cfg)
        if hint is None or "--resume" in str(getattr(exc, "outcome", exc)):
            raise
        if isinstance(exc, Interrupted):
            exc.outcome = f"{exc.outcome}; {hint}"
            raise
        raise type(exc)(f"{exc}; {hint}") from None


def _checkpoint_hint(cfg: JobConfig) -> str | None:
    t = cfg.train
    if t.checkpoint_path is None or not t.run_id:
        return None
    try:
        newest = newest_checkpoint(join_uri(t.checkpoint_path, t.run_id))
    except OSError:
        return None
    if newest is None:
        return None
    return (
        f"its checkpoints are kept in {newest[1].rsplit('/', 1)[0]} "
        f"(continue: graphrec train --resume train.run_id={t.run_id})"
    )


def save_checkpoint(
    run_dir: Path,
    model: RecommenderModel,
    graph: Graph,
    cfg: JobConfig,
    best_epoch: int | None,
    blend: dict | None = None,
) -> None:
    """``checkpoint.pt`` (weights, config, epoch, the blend's partner and weight),
    ``id_map/<type>.parquet`` (original ids) and ``encoders.json`` (the fitted feature
    encoders, to encode a later graph alike): what ``graphrec transform`` starts from."""
    graph.write_id_maps(run_dir)
    (run_dir / "encoders.json").write_text(json.dumps(graph.encoders, indent=1))
    torch.save(
        {
            "model": {k: v.cpu() for k, v in model.state_dict().items()},
            "config": to_dict(cfg),
            "best_epoch": best_epoch,
            "blend": blend,
            "target": list(graph.target),
            "undirected": graph.undirected,
            "feature_dims": {t: x.shape[1] for t, x in graph.x.items()},
            "num_nodes": graph.num_nodes,
        },
        run_dir / "checkpoint.pt",
    )


def blend_of(model: RecommenderModel, result) -> dict | None:
    """``{"partner", "weight"}`` of a blended model (None: the model alone)."""
    if not isinstance(model, BlendedModel):
        return None
    return {"partner": result.stats["blend"]["partner"], "weight": model.weight}


def _default_run_dir(name: str) -> str:
    """``runs/<name>-<timestamp>-<random suffix>``: unique even for runs (or Ray drivers on
    other hosts) started in the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{name}-{stamp}-{secrets.token_hex(3)}")
