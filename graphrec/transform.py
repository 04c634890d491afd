"""``graphrec transform --run RUN_DIR``: a trained model's recommendations for the graph as it
is now, new users and items included, without retraining (Neptune ML's "model transform").

The run folder holds what a later graph needs to be read the way the model was trained:
``checkpoint.pt`` (weights, config, blend), ``encoders.json`` (the fitted feature encoders)
and ``id_map/<type>.parquet`` (the trained row of every node). Transform re-extracts the
run's source (with any overrides), encodes it with the saved encoders, matches each node to
its trained row by original id, embeds the new ones by the model's own rule
(``ModelSpec.embed_new``, :mod:`graphrec.models.inductive`) with no gradient step, and
writes top-k recommendations for every user (``--only-new``: the new users only) through
the usual sinks into a new run folder. That folder carries the extended model, so a later
transform or a server can start from it.

A source that no longer matches the run (a node type, an id type, a property the encoders
read, a feature width) fails before anything is written, in one line naming the difference.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from graphrec.config import JobConfig, apply_override, from_dict, to_dict
from graphrec.environment import environment
from graphrec.errors import ConfigError, DataError, warn
from graphrec.graph import Graph, all_train, build_graph
from graphrec.graph.hetero import message_graph
from graphrec.job import RunResult, new_run_folder, note_leftovers, save_checkpoint
from graphrec.loaders import GraphTables
from graphrec.models import check_model
from graphrec.models.blend import BlendedModel
from graphrec.models.inductive import NewNodes
from graphrec.models.registry import model_spec
from graphrec.outputs import finite_or_null
from graphrec.pipeline import StageClock, extract_tables
from graphrec.recommend import recommend_all
from graphrec.sinks import make_sink, sink_names
from graphrec.staging import staged_dir, write_manifest
from graphrec.train.context import resolve_device


@dataclasses.dataclass
class TrainedRun:
    """What a run folder keeps of its model."""

    folder: Path
    checkpoint: dict
    encoders: dict[str, list[dict]]
    ids: dict[str, pa.Array]


def read_run(folder: str | Path) -> TrainedRun:
    """The run folder's checkpoint, encoders and id maps, or a one-line error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--run {folder}: no such run folder")
    need = [folder / "checkpoint.pt", folder / "encoders.json", folder / "id_map"]
    missing = [p.name for p in need if not p.exists()]
    if missing:
        raise ConfigError(
            f"--run {folder}: no {', '.join(missing)}: not the folder of a finished "
            "graphrec run (graphrec run / graphrec train make one)"
        )
    try:
        ckpt = torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)
        encoders = json.loads((folder / "encoders.json").read_text())
        ids = {
            p.stem: pq.read_table(p).column("id").combine_chunks()
            for p in sorted((folder / "id_map").glob("*.parquet"))
        }
    except (OSError, ValueError, RuntimeError, pa.ArrowException, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"--run {folder}: cannot read its model files: {first}") from None
    if "target" not in ckpt:
        raise ConfigError(
            f"--run {folder}: made by a graphrec before transform existed (its checkpoint "
            "does not say how it was blended): retrain it once"
        )
    return TrainedRun(folder, ckpt, encoders, ids)


def run_config(run: TrainedRun, overrides: list[str] | tuple[str, ...] = ()) -> JobConfig:
    """The run's own config (a new run folder unless ``write.run_dir`` is given), with
    ``overrides`` applied: e.g. ``extract.root=...`` for the graph as it is now."""
    data = run.checkpoint["config"]
    data["write"]["run_dir"] = None
    data["train"]["resume"] = False
    for item in overrides:
        apply_override(data, item)
    return from_dict(JobConfig, data, "")


def transform_run(
    folder: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    only_new: bool = False,
    progress: bool = True,
) -> RunResult:
    """Recommendations of the model in run folder ``folder`` for the current graph, new
    nodes embedded by the model's rule; returns the new run folder and its metrics."""
    run = read_run(folder)
    cfg = run_config(run, overrides)
    check_model(cfg)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    final = new_run_folder(cfg, "transform")
    note_leftovers(final.parent)
    with staged_dir(final) as work:
        metrics = _transform(run, cfg, work, only_new, progress)
    return RunResult(final, metrics)


def _transform(run: TrainedRun, cfg: JobConfig, work: Path, only_new: bool, progress: bool):
    clock = StageClock()
    sinks = sink_names(cfg)
    graph, nodes, model, new_items = load_current(run, cfg, clock, progress)
    user, item = graph.user_type, graph.item_type
    users = torch.nonzero(nodes.new(user)).squeeze(1) if only_new else None
    items = None
    if not new_items and nodes.new(item).any():
        items = torch.nonzero(~nodes.new(item)).squeeze(1)
        warn(
            f"{int(nodes.new(item).sum()):,} new {item} node(s) left out of the rankings: "
            f"model.name={cfg.model.name} cannot score a {item} it never saw (retrain to "
            "include them)"
        )
    with clock.stage("recommend") as st:
        recs = recommend_all(model, graph, cfg, progress, users, items, report=st)
        st["users"] = graph.num_nodes[user] if users is None else len(users)
    with clock.stage("write") as st:
        for name in sinks:
            st[name] = make_sink(name, cfg, work).write(recs)
        ckpt = run.checkpoint
        save_checkpoint(work, model, graph, cfg, ckpt.get("best_epoch"), ckpt.get("blend"))
    metrics = {
        "name": cfg.name,
        "transform_of": str(run.folder),
        "only_new": only_new,
        "nodes": nodes.counts(),
        "new_items_ranked": new_items or not nodes.new(item).any(),
        "recommendations": {"rows": recs.num_rows, "k": cfg.recommend.k},
        "stages": clock.stages,
        "seconds": clock.seconds,
        "environment": environment(),
        "config": to_dict(cfg),
    }
    metrics, _ = finite_or_null(metrics)
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    folder = work.name.split(".partial-")[0].lstrip(".")
    write_manifest(work, {"name": cfg.name, "run_folder": folder, "created": time.time()})
    return metrics


def load_current(
    run: TrainedRun, cfg: JobConfig, clock: StageClock | None = None, progress: bool = False
) -> tuple[Graph, NewNodes, torch.nn.Module, bool]:
    """The run's source read again and encoded with its encoders, every node matched to its
    trained row, and the model sized for it with new nodes embedded (stages extract, build,
    embed); also whether the model can rank items it never saw. Transform, the server and
    the new-node benchmark all start here."""
    clock = clock or StageClock()
    structural = [n for n in ("fastrp", "node2vec") if getattr(cfg.build, n) is not None]
    if structural:  # they are of the training graph: new nodes have none, old ones would move
        raise ConfigError(
            f"graphrec transform/serve: run {run.folder} was trained with structural "
            f"features (build.{structural[0]}), which are not computed again for a graph read "
            "later; train without them to embed new nodes"
        )
    tables = extract_tables(cfg, clock, progress)
    check_source(run, cfg, tables)
    with clock.stage("build") as st:
        graph = build_graph(tables, cfg, progress, fitted=run.encoders)
        del tables
        check_graph(run, graph)
        st.update(graph.stats)
    with clock.stage("embed") as st:
        nodes = match_ids(run, graph)
        model, new_items = rebuild(run, cfg, graph, nodes)
        st["nodes"] = nodes.counts()
    return graph, nodes, model, new_items


def check_source(run: TrainedRun, cfg: JobConfig, tables: GraphTables) -> None:
    """The re-extracted graph has what the run's model reads, or a one-line error naming the
    difference: the node types, the target edge type, the id types, every property the
    saved encoders encode."""
    where = f"--run {run.folder}"
    trained, now = sorted(run.ids), sorted(tables.nodes)
    if trained != now:
        raise ConfigError(
            f"{where}: trained on node types {', '.join(trained)}; the source has {', '.join(now)}"
        )
    spec = cfg.extract.edges.get(cfg.build.target)
    target = [spec.src, cfg.build.target, spec.dst] if spec else None
    if target != list(run.checkpoint["target"]):
        raise ConfigError(
            f"{where}: trained on target {tuple(run.checkpoint['target'])}; the config "
            f"now has {tuple(target) if target else cfg.build.target}"
        )
    for ntype, ids in run.ids.items():
        now_type = tables.nodes[ntype].schema.field("id").type
        if not _same_id_type(ids.type, now_type):
            raise ConfigError(
                f"{where}: {ntype} ids were {ids.type} when it was trained; the source's are "
                f"{now_type}"
            )
    for ntype, states in run.encoders.items():
        have = tables.nodes[ntype].column_names
        for st in states:
            if st["property"] not in have:
                props = ", ".join(c for c in have if c != "id") or "none"
                raise ConfigError(
                    f"{where}: its encoders read {ntype}.{st['property']}, which the source "
                    f"no longer has ({ntype} properties: {props})"
                )


def _same_id_type(a: pa.DataType, b: pa.DataType) -> bool:
    return (
        a == b
        or (pa.types.is_integer(a) and pa.types.is_integer(b))
        or (pa.types.is_string(a) or pa.types.is_large_string(a))
        and (pa.types.is_string(b) or pa.types.is_large_string(b))
    )


def check_graph(run: TrainedRun, graph: Graph) -> None:
    """Feature widths and the pairing of the target as the model was trained."""
    trained = run.checkpoint["feature_dims"]
    now = {t: x.shape[1] for t, x in graph.x.items()}
    if trained != now:
        raise ConfigError(
            f"--run {run.folder}: feature widths {trained} when it was trained; the source "
            f"encodes to {now}"
        )
    if bool(run.checkpoint.get("undirected")) != graph.undirected:
        raise ConfigError(
            f"--run {run.folder}: its target was "
            f"{'undirected' if run.checkpoint.get('undirected') else 'directed'}; build.undirected "
            "now says otherwise"
        )


def match_ids(run: TrainedRun, graph: Graph) -> NewNodes:
    """Each node's trained row (by original id), -1 for a node the model never saw."""
    rows = {}
    for ntype, ids in graph.node_ids.items():
        old = run.ids[ntype]
        if ids.type != old.type:
            old = old.cast(ids.type)
        found = pc.index_in(ids, value_set=old).fill_null(-1)
        rows[ntype] = torch.from_numpy(found.to_numpy(zero_copy_only=False).astype("int64"))
    return NewNodes(rows, {t: len(ids) for t, ids in run.ids.items()})


def rebuild(
    run: TrainedRun, cfg: JobConfig, graph: Graph, nodes: NewNodes, state: dict | None = None
) -> tuple[torch.nn.Module, bool]:
    """The trained model (or ``state``: weights of the same model on another graph, e.g.
    the one being served) sized for ``graph``, new nodes embedded; and whether it can rank
    items it never saw."""
    split = all_train(graph.target_index.shape[1])
    data = message_graph(graph, None, cfg.build.reverse_edges)
    state = run.checkpoint["model"] if state is None else state
    blend = run.checkpoint.get("blend")

    def one(name: str, state: dict):
        spec = model_spec(name)
        if spec.embed_new is None:
            raise ConfigError(
                f"model.name={name} cannot embed nodes it never saw: retrain it on the "
                "current graph (graphrec run)"
            )
        mcfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=name))
        model = spec.build(graph, split, mcfg)
        spec.embed_new(model, state, nodes, data)
        return model, spec.new_items

    if blend is None:
        model, new_items = one(cfg.model.name, state)
    else:
        base, new_items = one(cfg.model.name, _part(state, "base."))
        partner, _ = one(blend["partner"], _part(state, "partner."))
        model = BlendedModel(base, partner, blend["weight"], cfg.evaluate.batch_users)
    model.eval()
    return model.to(resolve_device(cfg.train.device)), new_items


def _part(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
