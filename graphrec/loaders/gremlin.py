"""A TinkerPop Gremlin graph as a source: vertices and edges by label into Arrow, partitioned.

A vertex label is split into ``extract.parallelism`` ranges of its key property (integer
keys: equal-width ranges between the key's minimum and maximum, found with two
aggregations; text keys: one partition), each read by one traversal
``V().has_label(L).has(key, between(lo, hi)).element_map(...)`` whose results stream back in
frames of ``gremlin.fetch_rows``: memory is bounded by a frame, and no ``range()``
pagination ever rescans. An edge label is read from its source vertices, partitioned by
the same key ranges, each edge projected to its endpoints' key properties; an endpoint
without its key property is found and named. Every request is bytecode with the labels and
property names as validated identifiers and every value as an argument
(:mod:`graphrec.connectors.gremlin`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa

from graphrec.config import EdgeSpec, ExtractConfig, NodeSpec
from graphrec.connectors.gremlin import Gremlin, GremlinError, server
from graphrec.errors import DataError
from graphrec.loaders.base import GraphSource, Kind, Partition, RowNames, to_arrow

KEY_COLUMN = "vertex or edge id"
"""The element ids of a batch, beside the declared columns (a name no identifier has)."""


class GremlinSource(GraphSource):
    """Reads the vertex and edge labels named in the config from a Gremlin Server."""

    def __init__(self, cfg: ExtractConfig) -> None:
        super().__init__(cfg)
        cfg.check_identifiers()  # every name from config, before anything reaches the server
        self.gcfg = cfg.gremlin
        self._conn: Gremlin | None = None
        self._lock = threading.Lock()

    @property
    def conn(self) -> Gremlin:
        with self._lock:
            if self._conn is None:
                self._conn = Gremlin(self.gcfg, pool_size=max(2, self.cfg.parallelism))
            return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def stores_nodes(self) -> bool:
        return True

    def label(self, kind: Kind, name: str) -> str:
        if kind == "node":
            return self.cfg.nodes[name].label or name
        return self.cfg.edges[name].type or name

    # -- partitions ------------------------------------------------------------------
    def _partitions(self, kind: Kind, name: str, spec: NodeSpec | EdgeSpec) -> list[Partition]:
        g, conn = self.conn.g, self.conn
        label = self.label(kind, name)
        first = (g.V() if kind == "node" else g.E()).has_label(label).limit(1).count()
        if conn.all(first, f"counting {label!r}")[0] == 0:
            step = g.V() if kind == "node" else g.E()
            have = conn.all(step.label().dedup().limit(50), "listing labels")
            raise GremlinError(
                f"gremlin at {server(self.gcfg)}: no {'vertex' if kind == 'node' else 'edge'} "
                f"has label {label!r} (extract.{kind}s.{name}; labels here: "
                f"{', '.join(sorted(map(str, have))) or 'none'})"
            )
        ntype = name if kind == "node" else spec.src
        vlabel, key = self.label("node", ntype), self.cfg.nodes[ntype].id
        if kind == "node":
            missing = conn.all(g.V().has_label(vlabel).has_not(key).id_().limit(1), "checking keys")
            if missing:
                raise DataError(
                    f"gremlin: vertex {missing[0]!r} (label {vlabel!r}) has no key property "
                    f"{key!r} (extract.nodes.{name}.id)"
                )
        ranges: list[tuple] = [(None, None)]
        if self.key_type(ntype) == pa.int64() and self.cfg.parallelism > 1:
            lo = conn.all(g.V().has_label(vlabel).values(key).min_(), "splitting")
            hi = conn.all(g.V().has_label(vlabel).values(key).max_(), "splitting")
            if lo and hi and isinstance(lo[0], int) and isinstance(hi[0], int):
                lo, hi = lo[0], hi[0] + 1
                n = max(1, min(self.cfg.parallelism, hi - lo))
                cuts = [lo + (hi - lo) * i // n for i in range(n + 1)]
                ranges = list(zip(cuts[:-1], cuts[1:], strict=True))
        return [
            Partition(kind, name, i, self._where(kind, label, key, r), r)
            for i, r in enumerate(ranges)
        ]

    def _where(self, kind: Kind, label: str, key: str, r: tuple) -> str:
        what = "vertices" if kind == "node" else "edges"
        src = "source " if kind == "edge" else ""
        rng = "" if r[0] is None else f", {src}{key} {r[0]}..{r[1] - 1}"
        return f"gremlin {what} {label!r}{rng}"

    # -- reading ---------------------------------------------------------------------
    def _read(
        self, part: Partition, spec: NodeSpec | EdgeSpec, columns: list[str]
    ) -> Iterator[pa.RecordBatch]:
        from gremlin_python.process.graph_traversal import __
        from gremlin_python.process.traversal import P, T

        g = self.conn.g
        lo, hi = part.payload
        if part.kind == "node":
            t = g.V().has_label(self.label("node", part.name))
            if lo is not None:
                t = t.has(spec.id, P.between(lo, hi))
            t = t.element_map(*columns)
            for rows in self.conn.stream(t, f"reading {part.location}"):
                arrays = [to_arrow([r.get(c) for r in rows]) for c in columns]
                ids = [str(r.get(T.id)) for r in rows]
                yield self._batch(arrays, columns, ids)
            return
        src_key, dst_key = self.cfg.nodes[spec.src].id, self.cfg.nodes[spec.dst].id
        t = g.V().has_label(self.label("node", spec.src))
        if lo is not None:
            t = t.has(src_key, P.between(lo, hi))
        props = columns[2:]
        t = (
            t.out_e(self.label("edge", part.name))
            .where(__.in_v().has_label(self.label("node", spec.dst)))
            .project("id", "src", "dst", *(f"p{i}" for i in range(len(props))))
            .by(T.id)
            .by(__.out_v().values(src_key).fold())
            .by(__.in_v().values(dst_key).fold())
        )
        for p in props:
            t = t.by(__.values(p).fold())
        for rows in self.conn.stream(t, f"reading {part.location}"):
            for r in rows:
                for end, key in (("src", src_key), ("dst", dst_key)):
                    if not r[end]:
                        raise DataError(
                            f"gremlin: edge {r['id']!r} ({part.name}): its "
                            f"{'out' if end == 'src' else 'in'} vertex has no key property "
                            f"{key!r}"
                        )
            arrays = [to_arrow([r[c][0] for r in rows]) for c in ("src", "dst")]
            for i in range(len(props)):
                arrays.append(to_arrow([(r[f"p{i}"] or [None])[0] for r in rows]))
            yield self._batch(arrays, columns, [str(r["id"]) for r in rows])

    @staticmethod
    def _batch(arrays: list, columns: list[str], ids: list[str]) -> pa.RecordBatch:
        arrays.append(pa.array(ids, pa.string()))
        return pa.RecordBatch.from_arrays(arrays, names=[*columns, KEY_COLUMN])

    def _row_names(self, part: Partition, batch: pa.RecordBatch, row0: int) -> RowNames:
        what = "vertex" if part.kind == "node" else "edge"
        return _Named(row0, batch.column(KEY_COLUMN), what)

    def fingerprint(self) -> None:
        """Gremlin has no cheap change marker: never cached (always re-extracted)."""
        return None


class _Named(RowNames):
    def __call__(self, i: int) -> str:
        return f"{self.collection} {self.keys[i].as_py()} (row {self.row0 + i + 1})"
