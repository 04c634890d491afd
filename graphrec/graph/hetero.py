"""Stage 2, build: Arrow tables -> tensors -> PyG ``HeteroData``.

* Ids: every node type gets contiguous ids ``0..N-1`` in the order of its node table; the
  original ids are kept (``Graph.node_ids``) to write results back.
* Features: per node type, the configured properties encoded and concatenated
  (:mod:`graphrec.graph.encoders`, fitted once; their states are kept with the graph);
  every node type also gets a learnable embedding in the model, so featureless types
  (MovieLens users) need no identity matrix.
* Message passing: :func:`message_graph` builds the ``HeteroData`` from a chosen subset of
  target edges (the training edges), with ``rev_<type>`` reverse edges.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch_geometric.data import HeteroData

from graphrec.config import FeatureSpec, JobConfig
from graphrec.errors import ConfigError, DataError, warn
from graphrec.graph import encoders
from graphrec.graph.csr import is_sorted
from graphrec.graph.features import encode_text
from graphrec.loaders.extract import GraphTables

EdgeType = tuple[str, str, str]


@dataclass
class Graph:
    """The whole graph as tensors, before any split."""

    node_ids: dict[str, pa.Array]
    """Node type -> original ids; position = contiguous id."""
    x: dict[str, torch.Tensor]
    """Node type -> float features ``[N, F]`` (absent: no features)."""
    edge_index: dict[EdgeType, torch.Tensor]
    """Every edge type (forward direction) -> ``[2, E]`` contiguous ids."""
    target: EdgeType
    """The edge type that is learned and recommended: (user type, name, item type)."""
    label: torch.Tensor | None = None
    """Float label per target edge (the rating)."""
    time: torch.Tensor | None = None
    """Int64 time per target edge."""
    stats: dict = field(default_factory=dict)
    encoders: dict[str, list[dict]] = field(default_factory=dict)
    undirected: bool = False
    """The target edges are undirected pairs, stored as ``[pairs, reversed pairs]``: edge
    ``j`` and edge ``j + num_pairs`` are one pair (:func:`graphrec.graph.split.split_target`
    keeps them together)."""
    """Node type -> the fitted state of each feature encoder, in column order (the run
    folder's ``encoders.json``): a graph read later is encoded the same way."""

    @property
    def num_nodes(self) -> dict[str, int]:
        return {t: len(ids) for t, ids in self.node_ids.items()}

    @property
    def user_type(self) -> str:
        return self.target[0]

    @property
    def item_type(self) -> str:
        return self.target[2]

    @property
    def target_index(self) -> torch.Tensor:
        return self.edge_index[self.target]

    @property
    def num_pairs(self) -> int:
        """Target edges, counting an undirected pair once."""
        n = self.target_index.shape[1]
        return n // 2 if self.undirected else n

    @property
    def same_type(self) -> bool:
        """Users and items are one node type (friends): nobody is recommended to themselves."""
        return self.user_type == self.item_type

    def ids_digest(self) -> str:
        """A digest of every node type's ids in order: equal only when position ``k`` of
        each type is the same node (what a checkpoint's embedding rows refer to)."""
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        for ntype in sorted(self.node_ids):
            ids = self.node_ids[ntype]
            h.update(f"{ntype}:{len(ids)}:{ids.type}".encode())
            for buf in ids.buffers():
                if buf is not None:
                    h.update(memoryview(buf))
        return h.hexdigest()

    def write_id_maps(self, folder: Path) -> None:
        """``folder/id_map/<type>.parquet``: column ``id``, row = contiguous id. Run
        folders and training checkpoints carry them, so scores map back to source ids."""
        import pyarrow.parquet as pq

        (folder / "id_map").mkdir(parents=True, exist_ok=True)
        for ntype, ids in self.node_ids.items():
            pq.write_table(pa.table({"id": ids}), folder / "id_map" / f"{ntype}.parquet")


def build_graph(
    tables: GraphTables,
    cfg: JobConfig,
    progress: bool = True,
    fitted: dict[str, list[dict]] | None = None,
) -> Graph:
    """Map ids, encode features and collect edge tensors; ``fitted``: the encoders of an
    earlier run (its ``encoders.json``), applied as they are instead of fitted anew."""
    t0 = time.perf_counter()
    ecfg, bcfg = cfg.extract, cfg.build
    # Canonical order (nodes by id, edges by endpoint ids): the same graph read from files or
    # from a database, in whatever order, builds the same tensors and the same split. The
    # edges are put in that order as tensors (by contiguous ids, which follow the sorted
    # ids), not as a sorted copy of their Arrow table (28 bytes an edge, 2.8 GB at 1e8).
    tables = GraphTables(
        nodes={t: tab.sort_by("id") for t, tab in tables.nodes.items()},
        edges=tables.edges,
        stats=tables.stats,
    )
    node_ids = {t: tables.nodes[t].column("id").combine_chunks() for t in ecfg.nodes}
    stats: dict = {}

    edge_index: dict[EdgeType, torch.Tensor] = {}
    rows: torch.Tensor | None = None  # the target table's row of each edge (None: in order)
    for name, spec in ecfg.edges.items():
        table = tables.edges[name]
        src = _to_index(table.column("src"), node_ids[spec.src], name, spec.src)
        dst = _to_index(table.column("dst"), node_ids[spec.dst], name, spec.dst)
        ei, order = _in_endpoint_order(src, dst, len(node_ids[spec.dst]))
        del src, dst
        edge_index[(spec.src, name, spec.dst)] = ei
        if name == bcfg.target:
            rows = order

    tspec = ecfg.edges[bcfg.target]
    target = (tspec.src, bcfg.target, tspec.dst)
    ttable = tables.edges[bcfg.target]
    label = _column_tensor(ttable, bcfg.label, torch.float32)
    when = _time_tensor(ttable, bcfg.timestamp, bcfg.target)
    if rows is not None:
        label = None if label is None else label[rows]
        when = None if when is None else when[rows]
    undirected = bcfg.undirected if bcfg.undirected is not None else target[0] == target[2]
    if undirected:  # pairs as (min, max), self-loops dropped
        ei = edge_index[target]
        loop = ei[0] == ei[1]
        stats["self_loops_dropped"] = int(loop.sum())
        edge_index[target] = torch.stack([ei.min(0).values, ei.max(0).values])[:, ~loop]
        label = None if label is None else label[~loop]
        when = None if when is None else when[~loop]
    latest = bcfg.duplicate_edges == "latest"
    if latest or undirected:  # a pair listed twice, in either direction, is one friendship
        keep = _latest_per_pair(
            edge_index[target], when if latest else None, len(node_ids[target[2]])
        )
        merged = "repeated_pairs_merged" if undirected else "duplicate_edges_merged"
        stats[merged] = int(edge_index[target].shape[1] - len(keep))
        edge_index[target] = edge_index[target][:, keep]
        label = None if label is None else label[keep]
        when = None if when is None else when[keep]
    _check_no_duplicate_edges(
        edge_index[target], node_ids, target, None if latest or undirected else rows
    )
    del rows
    if undirected:  # [pairs, reversed pairs]: messages and scores both ways
        edge_index[target] = torch.cat([edge_index[target], edge_index[target].flip(0)], dim=1)
        label = None if label is None else torch.cat([label, label])
        when = None if when is None else torch.cat([when, when])

    t_feat = time.perf_counter()
    x, states = encode_nodes(tables, bcfg, stats, progress, fitted)
    stats["feature_seconds"] = time.perf_counter() - t_feat
    stats["feature_dims"] = {t: v.shape[1] for t, v in x.items()}
    stats["seconds"] = time.perf_counter() - t0
    stats["rows_per_s"] = (
        sum(t.num_rows for t in tables.nodes.values()) + tables.num_edges
    ) / stats["seconds"]
    return Graph(node_ids, x, edge_index, target, label, when, stats, states, undirected)


def encode_nodes(
    tables: GraphTables,
    bcfg,
    stats: dict,
    progress: bool = True,
    fitted: dict[str, list[dict]] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, list[dict]]]:
    """Every node type's features: encoders fitted on ``tables`` (or the ``fitted`` states
    of an earlier run, applied as they are), concatenated in config order."""
    x: dict[str, torch.Tensor] = {}
    states: dict[str, list[dict]] = {}
    if fitted is None:
        plan = {t: [(spec, None) for spec in specs] for t, specs in bcfg.features.items()}
    else:
        plan = _fitted_plan(fitted, bcfg)
    for ntype, specs in plan.items():
        parts, kept = [], []
        for spec, given in specs:
            where = f"build.features.{ntype}.{spec.property}"
            column = tables.nodes[ntype].column(spec.property)
            if given is None:
                state = encoders.fit(column, spec, where)
                if state is None:
                    warn(f"{where}: left out ({encoders.choose(column, spec)[1]})")
                    continue
                if "warning" in state:
                    warn(f"{where}: {state['warning']}")
            else:
                state = given

            def text(arr, model, spec=spec):
                return encode_text(arr, replace(spec, model=model), bcfg.cache_dir, stats, progress)

            parts.append(encoders.transform(column, state, where, text))
            kept.append(state)
        if parts:
            x[ntype] = torch.cat(parts, dim=1).float()
            states[ntype] = kept
    stats["features"] = {
        t: [f"{s['property']}: {encoders.describe(s)}" for s in v] for t, v in states.items()
    }
    return x, states


def _fitted_plan(fitted: dict[str, list[dict]], bcfg) -> dict[str, list[tuple]]:
    """The fitted encoders in their saved column order, each with its config entry (or a
    plain one where the config no longer lists it: the run's encoders decide)."""
    plan = {}
    for ntype, saved in fitted.items():
        specs = {s.property: s for s in bcfg.features.get(ntype, [])}
        plan[ntype] = [(specs.get(st["property"], FeatureSpec(st["property"])), st) for st in saved]
    return plan


def message_graph(
    graph: Graph, keep: torch.Tensor | None = None, reverse: bool = True, times: bool = False
) -> HeteroData:
    """``HeteroData`` for message passing with only the ``keep`` target edges (None: all).

    Held-out (validation/test) target edges are simply not in ``keep``, so no sampler or
    convolution can see them. Reverse types are named ``rev_<type>``. The target edges
    carry their labels as ``label`` (where the graph has them), and with ``times`` their
    times as ``time`` (both directions: what temporal sampling cuts by).

    Every edge type is in CSC order (sorted by destination, then source), so a neighbour
    sampler can use ``edge_index`` as is (``is_sorted=True``) instead of building its own
    sorted copy; with the graph in shared memory, workers then share the topology too.
    """
    data = HeteroData()
    num_nodes = graph.num_nodes
    for ntype, n in num_nodes.items():
        data[ntype].num_nodes = n
        if ntype in graph.x:
            data[ntype].x = graph.x[ntype]
    if times and graph.time is None:
        raise ConfigError("temporal sampling needs the target edges' times (build.timestamp)")
    for etype, ei in graph.edge_index.items():
        label = graph.label if etype == graph.target else None
        when = graph.time if times and etype == graph.target else None
        # `keep` lists distinct edges: as many as there are means all of them (final mode),
        # and the order is the sort's below, so no copy is needed
        if etype == graph.target and keep is not None and len(keep) < ei.shape[1]:
            ei = ei[:, keep]
            label = None if label is None else label[keep]
            when = None if when is None else when[keep]
        src, name, dst = etype
        order = _csc_order(ei, num_nodes[src])
        data[etype].edge_index = ei if order is None else ei[:, order]
        if label is not None:  # the kept edges' labels (LightGCN weights edges by them)
            data[etype].label = label if order is None else label[order]
        if when is not None:
            data[etype].time = when if order is None else when[order]
        if reverse and not (etype == graph.target and graph.undirected):  # has both ways
            rev = ei.flip(0)  # a copy; the graph's (source, destination) order is its CSC order
            order = _csc_order(rev, num_nodes[dst])
            rtype = (dst, f"rev_{name}", src)
            data[rtype].edge_index = rev if order is None else rev[:, order]
            if when is not None:
                data[rtype].time = when if order is None else when[order]
        del ei, label, when
    return data


def label_weights(labels: torch.Tensor, low: float, threshold: float) -> torch.Tensor:
    """Per-edge weights: 1 where the label is ``>= threshold`` (a positive), ``low`` below
    (``train.low_label_weight``: LightGCN's propagation, multinomial targets, als_rated)."""
    labels = labels.float()
    return torch.where(labels >= threshold, torch.ones_like(labels), torch.full_like(labels, low))


def _csc_order(ei: torch.Tensor, num_src: int) -> torch.Tensor | None:
    """The permutation that sorts ``ei`` by (destination, source); None where it is sorted
    (the reverse of a graph's edges, which :func:`build_graph` puts in endpoint order)."""
    key = ei[1] * num_src + ei[0]
    if is_sorted(key):
        return None
    return torch.sort(key).indices


def _to_index(ids: pa.ChunkedArray, node_ids: pa.Array, edge: str, ntype: str) -> torch.Tensor:
    if ids.type != node_ids.type:
        ids = ids.cast(node_ids.type)
    idx = pc.index_in(ids, value_set=node_ids)
    if idx.null_count:  # extract checks endpoints per row; this guards other sources
        bad = pc.index(pc.is_null(idx), True).as_py()
        raise DataError(f"edge type {edge!r}, row {bad + 1}: {ids[bad]} is not a {ntype} id")
    return torch.from_numpy(idx.to_numpy().astype(np.int64))


def _column_tensor(table: pa.Table, column: str | None, dtype: torch.dtype) -> torch.Tensor | None:
    if column is None:
        return None
    arr = table.column(column).combine_chunks().to_numpy(zero_copy_only=False)
    return torch.from_numpy(np.array(arr)).to(dtype)  # a writable copy


def _time_tensor(table: pa.Table, column: str | None, edge: str) -> torch.Tensor | None:
    """Int64 epoch seconds from an integer column or ISO 8601 text (with or without an
    offset; without one the time is taken as UTC)."""
    if column is None:
        return None
    arr = table.column(column).combine_chunks()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        parsed = _as_timestamp(arr)
        if parsed is None:
            bad = next(i for i in range(len(arr)) if _as_timestamp(arr.slice(i, 1)) is None)
            raise DataError(
                f"edge type {edge!r}, row {bad + 1}: {column}={arr[bad].as_py()!r} is not a "
                "time (integer seconds or ISO 8601 text such as 2022-05-24 22:53:30+01)"
            )
        arr = parsed
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.timestamp("s", tz=arr.type.tz)).view(pa.int64())
    return _column_tensor(pa.table({column: arr}), column, torch.int64)


def _as_timestamp(arr: pa.Array) -> pa.Array | None:
    """ISO 8601 text as timestamps: with offsets, else as UTC wall time; None if neither."""
    for target in (pa.timestamp("s", tz="UTC"), pa.timestamp("s")):
        try:
            return arr.cast(target)
        except pa.ArrowInvalid:
            continue
    return None


def _latest_per_pair(ei: torch.Tensor, when: torch.Tensor | None, n_dst: int) -> torch.Tensor:
    """Indices of the edges to keep: one per (src, dst), the latest (then the last row)."""
    key = ei[0] * n_dst + ei[1]
    pos = torch.arange(len(key))
    order = torch.argsort(pos, stable=True)  # row order
    if when is not None:
        order = order[torch.argsort(when[order], stable=True)]
    order = order[torch.argsort(key[order], stable=True)]  # by pair, then time, then row
    last = torch.ones(len(order), dtype=torch.bool)
    last[:-1] = key[order][1:] != key[order][:-1]
    return order[last].sort().values


def _in_endpoint_order(
    src: torch.Tensor, dst: torch.Tensor, n_dst: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``([2, E] edges sorted by (src, dst), the input row of each)``; rows None where the
    input was in that order already. A stable sort: equal pairs keep their input order."""
    key = src * n_dst + dst
    if is_sorted(key):
        return torch.stack([src, dst]), None
    order = torch.sort(key, stable=True).indices
    del key
    ei = torch.empty(2, len(order), dtype=src.dtype)
    torch.index_select(src, 0, order, out=ei[0])
    torch.index_select(dst, 0, order, out=ei[1])
    return ei, order


def _check_no_duplicate_edges(
    ei: torch.Tensor, node_ids: dict, target: EdgeType, rows: torch.Tensor | None = None
) -> None:
    """Edges in endpoint order: a repeated pair sits next to its twin. ``rows``: each
    edge's row in the input (for the message), None where that is its position."""
    n_dst = len(node_ids[target[2]])
    key = ei[0] * n_dst + ei[1]
    same = (key[1:] == key[:-1]).nonzero()
    if len(same):
        at = int(same[0]) + 1
        row = at if rows is None else int(rows[at])
        u, i = int(ei[0, at]), int(ei[1, at])
        raise DataError(
            f"edge type {target[1]!r}, row {row + 1}: duplicate edge "
            f"{node_ids[target[0]][u]} -> {node_ids[target[2]][i]} (one edge per pair, or "
            "build.duplicate_edges=latest to keep the latest of each pair)"
        )
