"""The whole job, stage by stage: extract -> build -> train -> recommend -> write back.

Each stage is timed and its peak memory recorded. Everything the run produces goes to a
temporary folder that is renamed to the run folder only when the job has succeeded, so a
failed run never leaves a half-written result behind.
"""

from __future__ import annotations

import contextlib
import json
import resource
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import torch

from graphrec.graph import Graph, all_train, build_graph, message_graph, split_edges
from graphrec.graph.split import EdgeSplit
from graphrec.config import JobConfig, to_dict
from graphrec.environment import environment
from graphrec.errors import ConfigError, GraphRecError, Interrupted, RunError, warn
from graphrec.loaders import extract_cached, make_source
from graphrec.models import Recommender, check_model
from graphrec.outputs import finite_or_null
from graphrec.plots import plot_training_curve
from graphrec.recommend import to_csr, topk_unseen
from graphrec.sinks import make_sink, make_sinks
from graphrec.staging import leftover_staging, staged_dir, write_manifest
from graphrec.train import evaluate_ranking, popularity_vectors, rmse
from graphrec.train.batches import TrainInputs
from graphrec.train.context import resolve_device
from graphrec.train.evaluation import positives
from graphrec.train.loop import train_loop_per_worker


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict


class StageClock:
    """Seconds and peak resident memory per stage."""

    def __init__(self) -> None:
        self.stages: dict[str, dict] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield self.stages.setdefault(name, {})
        except Interrupted as exc:
            exc.stage = exc.stage or name
            raise
        self.stages[name]["seconds"] = time.perf_counter() - t0
        # ru_maxrss is the process's peak so far (KiB on Linux).
        self.stages[name]["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    if cfg.write.run_dir:
        final = Path(cfg.write.run_dir)
        if final.exists() or final.is_symlink():
            raise ConfigError(
                f"write.run_dir={cfg.write.run_dir!r} already exists: graphrec never writes "
                "into a folder it did not create; name a new folder or leave write.run_dir "
                "unset (runs/<name>-<timestamp>-<suffix>)"
            )
    else:
        final = Path(_default_run_dir(cfg.name))
    note_leftovers(final.parent)
    with staged_dir(final) as work:
        metrics = _run(cfg, work, progress, train_only)
    return RunResult(final, metrics)


def note_leftovers(folder: Path) -> None:
    """Name the staging folders that killed runs left beside the new run folder."""
    left = leftover_staging(folder)
    if left:
        names = ", ".join(p.name for p, _ in left[:3]) + (" ..." if len(left) > 3 else "")
        warn(
            f"{len(left)} unfinished run folder(s) of interrupted runs in {folder}: {names} "
            f"(graphrec clean {folder} removes them)"
        )


def _run(cfg: JobConfig, run_dir: Path, progress: bool, train_only: bool = False) -> dict:
    clock = StageClock()
    sinks = [] if train_only else make_sinks(cfg)  # an unknown sink fails now, not later

    graph, split = extract_and_build(cfg, clock, progress)

    with clock.stage("train") as st, checkpoint_hint(cfg):
        inputs = TrainInputs.of(graph, split, cfg)
        if cfg.distributed.workers > 0:
            from graphrec.distributed import fit  # Ray only when asked for

            model, result = fit(inputs, cfg, progress)
            model.to(resolve_device(cfg.train.device))
        else:
            model, result = train_loop_per_worker(
                {"cfg": cfg, "inputs": inputs, "progress": progress}
            )
        del inputs
        st.update(result.stats)

    metrics: dict = {"name": cfg.name, "mode": cfg.mode, "objective": cfg.train.objective}
    if cfg.mode == "evaluate":
        with clock.stage("evaluate"):
            metrics.update(evaluate_test(model, graph, split, cfg))
        metrics["best_epoch"] = result.best_epoch
        metrics[result.val_metric] = result.best_val

    if not train_only:
        with clock.stage("recommend") as st:
            recs = recommend(model, graph, cfg, progress)
            st["users"] = graph.num_nodes[graph.user_type]
        st["users_per_s"] = st["users"] / st["seconds"]

    with clock.stage("write") as st:
        for name in sinks:
            st[name] = make_sink(name, cfg, run_dir).write(recs)
        if sinks:
            st["rows_per_s"] = st[sinks[-1]]["rows_per_s"]
            metrics["recommendations"] = {"rows": recs.num_rows, "k": cfg.recommend.k}
        save_checkpoint(run_dir, model, graph, cfg, result)
        plot_training_curve(result.history, result.val_metric, run_dir / "training_curve.png")

    metrics["stages"] = clock.stages
    metrics["seconds"] = {name: s["seconds"] for name, s in clock.stages.items()}
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
    from graphrec.train.context import join_uri, newest_checkpoint

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


def extract_and_build(cfg: JobConfig, clock: StageClock, progress: bool) -> tuple[Graph, EdgeSplit]:
    """Stages 1 and 2: the graph as tensors, and its split (all edges train in final mode)."""
    target = cfg.build.target
    with clock.stage("extract") as st:
        required = {target: [cfg.build.label]} if cfg.build.label else {}
        source = make_source(cfg.extract)
        try:
            tables, cached = extract_cached(source, required, progress)
        finally:
            source.close()
        st.update(edges=tables.num_edges, from_snapshot=cached)
        if not cached:
            st["edges_per_s"] = tables.stats["edges_per_s"]

    with clock.stage("build") as st:
        graph = build_graph(tables, cfg, progress)
        n_target = graph.target_index.shape[1]
        if cfg.mode == "final":
            split = all_train(n_target)
        else:
            split = split_edges(cfg.build.split, n_target, graph.target_index[0], graph.time)
        if cfg.build.fastrp is not None:  # from training edges only: no held-out leak
            from graphrec.graph.structural import fastrp

            f = cfg.build.fastrp
            emb = fastrp(graph, split.train, f.dim, tuple(f.weights), f.seed)
            graph.x = {
                t: torch.cat([graph.x[t], e], 1) if t in graph.x else e for t, e in emb.items()
            }
        st.update(graph.stats)
        st.update(
            train_edges=len(split.train), val_edges=len(split.val), test_edges=len(split.test)
        )
        del tables
    return graph, split


def evaluate_test(model: Recommender, graph: Graph, split: EdgeSplit, cfg: JobConfig) -> dict:
    """Test metrics of the model and of the popularity baseline, on the same split.

    Test edges are scored with train+validation edges as the message-passing graph and as
    the items excluded from ranking.
    """
    ei = graph.target_index
    seen = torch.cat([split.train, split.val])
    data = message_graph(graph, seen, cfg.build.reverse_edges).to(model.device)
    n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
    k, batch = cfg.evaluate.k, cfg.evaluate.batch_users
    exclude = to_csr(ei[0, seen], ei[1, seen], n_users)
    pos = positives(graph, split.test, cfg.evaluate.positive_threshold)
    out: dict = {"rmse": None}
    if cfg.train.objective == "rating":
        model.eval()
        with torch.no_grad():
            z = model.encode(data)
            pred = model.score(data, z, ei[:, split.test].to(model.device))
        out["rmse"] = rmse(pred.cpu(), graph.label[split.test])
    uv, iv = model.vectors(data)
    out.update(evaluate_ranking(uv, iv, exclude, ei[0, pos], ei[1, pos], k, batch))
    pu, pi = popularity_vectors(ei[1, split.train], n_users, n_items)
    base = evaluate_ranking(pu, pi, exclude, ei[0, pos], ei[1, pos], k, batch)
    out["baseline_popularity"] = {key: v for key, v in base.items() if key != "users"}
    out["test_positives"] = int(len(pos))
    return out


def recommend(model: Recommender, graph: Graph, cfg: JobConfig, progress: bool) -> pa.Table:
    """Top-k unseen items for every user, scored on the full graph, as an Arrow table."""
    ei = graph.target_index
    n_users = graph.num_nodes[graph.user_type]
    data = message_graph(graph, None, cfg.build.reverse_edges).to(model.device)
    uv, iv = model.vectors(data)
    exclude = to_csr(ei[0], ei[1], n_users)  # every item the user already has an edge to
    k = cfg.recommend.k
    items, scores = topk_unseen(
        uv, iv, exclude, k, cfg.recommend.batch_users, progress, "recommend"
    )
    users = torch.arange(n_users).repeat_interleave(k)
    ranks = torch.arange(1, k + 1).repeat(n_users)
    items, scores = items.flatten(), scores.flatten()
    keep = items >= 0  # a user with fewer than k unseen items gets fewer rows
    users, ranks, items, scores = users[keep], ranks[keep], items[keep], scores[keep]
    bad = ~torch.isfinite(scores)
    if bad.any():
        first = graph.node_ids[graph.user_type][int(users[bad][0])].as_py()
        raise RunError(
            f"recommend: {int(bad.sum())} of {len(scores)} scores are not finite (first for "
            f"user {first!r}): the model diverged; nothing was written"
        )
    return pa.table(
        {
            "user_id": graph.node_ids[graph.user_type].take(pa.array(users.numpy())),
            "item_id": graph.node_ids[graph.item_type].take(pa.array(items.numpy())),
            "rank": pa.array(ranks.numpy().astype("int32")),
            "score": pa.array(scores.numpy().astype("float32")),
        }
    )


def save_checkpoint(
    run_dir: Path, model: Recommender, graph: Graph, cfg: JobConfig, result
) -> None:
    """``checkpoint.pt`` (weights, config, epoch) and ``id_map/<type>.parquet`` (original ids)."""
    graph.write_id_maps(run_dir)
    torch.save(
        {
            "model": {k: v.cpu() for k, v in model.state_dict().items()},
            "config": to_dict(cfg),
            "best_epoch": result.best_epoch,
            "feature_dims": {t: x.shape[1] for t, x in graph.x.items()},
            "num_nodes": graph.num_nodes,
        },
        run_dir / "checkpoint.pt",
    )


def _default_run_dir(name: str) -> str:
    """``runs/<name>-<timestamp>-<random suffix>``: unique even for runs (or Ray drivers on
    other hosts) started in the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{name}-{stamp}-{secrets.token_hex(3)}")
