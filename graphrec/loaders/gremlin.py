"""A TinkerPop Gremlin graph as a source: vertices and edges by label into Arrow, partitioned.

A label is split into ranges of its key property, at least ``extract.parallelism`` and at
least ``count / gremlin.partition_rows`` of them: integer keys into equal-width ranges
between the key's minimum and maximum (two aggregations); text keys (or integer keys too
few to split) at the quantiles of a server-side ``sample()`` of the keys. Each range is
read by one traversal ``V().has_label(L).has(key, between(lo, hi)).element_map(...)``
whose results stream back in frames of ``gremlin.fetch_rows``; no ``range()`` pagination
ever rescans. gremlinpython queues a response's frames as fast as the server sends them,
so what bounds the client's memory is the partition: at most ``extract.parallelism``
partitions of about ``partition_rows`` rows each are in flight (equal-width ranges over
skewed integer keys can hold more; sampled quantiles follow the keys). An edge label is
read from its source vertices, partitioned by the same kind of key ranges sized by the
edge count, each edge projected to its endpoints' key properties; an endpoint without its
key property is found and named. Every request is bytecode with the labels and
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
        total = conn.all((g.V() if kind == "node" else g.E()).has_label(label).count(), "counting")
        parts = max(self.cfg.parallelism, -(-int(total[0]) // self.gcfg.partition_rows))
        ranges = self._ranges(vlabel, key, ntype, parts)
        return [
            Partition(kind, name, i, self._where(kind, label, key, r), r)
            for i, r in enumerate(ranges)
        ]

    def _ranges(self, vlabel: str, key: str, ntype: str, parts: int) -> list[tuple]:
        """``parts`` key ranges ``(lo, hi)``, ``lo <= key < hi``, None: unbounded."""
        if parts <= 1:
            return [(None, None)]
        g, conn = self.conn.g, self.conn
        if self.key_type(ntype) == pa.int64():
            lo = conn.all(g.V().has_label(vlabel).values(key).min_(), "splitting")
            hi = conn.all(g.V().has_label(vlabel).values(key).max_(), "splitting")
            if lo and hi and isinstance(lo[0], int) and isinstance(hi[0], int):
                lo, hi = lo[0], hi[0] + 1
                if hi - lo >= parts:
                    cuts = [lo + (hi - lo) * i // parts for i in range(parts + 1)]
                    return list(zip(cuts[:-1], cuts[1:], strict=True))
        # ordered by the server: its comparator decides the ranges (Java orders strings by
        # UTF-16 code units, Python by code points; they differ beyond the BMP)
        keys = conn.all(
            g.V().has_label(vlabel).values(key).sample(min(100 * parts, 100_000)).order(),
            "sampling keys",
        )
        if not keys:
            return [(None, None)]
        cuts = []
        for i in range(1, parts):
            cut = keys[len(keys) * i // parts]
            if not cuts or cut != cuts[-1]:
                cuts.append(cut)
        bounds = [None, *cuts, None]
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    def _where(self, kind: Kind, label: str, key: str, r: tuple) -> str:
        what = "vertices" if kind == "node" else "edges"
        src = "source " if kind == "edge" else ""
        lo, hi = r
        if lo is None and hi is None:
            rng = ""
        elif isinstance(lo, int) and isinstance(hi, int):
            rng = f", {src}{key} {lo}..{hi - 1}"
        else:
            ends = ("" if v is None else repr(v) for v in r)
            rng = f", {src}{key} in [{', '.join(ends)})"
        return f"gremlin {what} {label!r}{rng}"

    # -- reading ---------------------------------------------------------------------
    def _read(
        self, part: Partition, spec: NodeSpec | EdgeSpec, columns: list[str]
    ) -> Iterator[pa.RecordBatch]:
        """A partition's rows in key order (``(src, dst, edge id)`` for edges): the ranges
        ascend, so the extracted tables are in key order whatever the server's iteration
        order or the sampled cut points, and a seeded run gives the same graph every time
        (for text keys outside Unicode's basic plane the server's order between ranges and
        Arrow's within one can differ; the rows are the same).
        A partition is held whole anyway (bounded by ``gremlin.partition_rows``)."""
        batches = list(self._stream(part, spec, columns))
        if not batches:
            return
        table = pa.Table.from_batches(batches)
        keys = columns[:1] if part.kind == "node" else [*columns[:2], KEY_COLUMN]
        yield from table.sort_by([(k, "ascending") for k in keys]).to_batches(self.gcfg.fetch_rows)

    def _stream(
        self, part: Partition, spec: NodeSpec | EdgeSpec, columns: list[str]
    ) -> Iterator[pa.RecordBatch]:
        from gremlin_python.process.graph_traversal import __
        from gremlin_python.process.traversal import P, T

        g = self.conn.g
        lo, hi = part.payload

        def within(t, key: str):
            if lo is not None and hi is not None:
                return t.has(key, P.between(lo, hi))
            if lo is not None:
                return t.has(key, P.gte(lo))
            return t if hi is None else t.has(key, P.lt(hi))

        if part.kind == "node":
            t = within(g.V().has_label(self.label("node", part.name)), spec.id)
            t = t.element_map(*columns)
            for rows in self.conn.stream(t, f"reading {part.location}"):
                arrays = [to_arrow([r.get(c) for r in rows]) for c in columns]
                ids = [str(r.get(T.id)) for r in rows]
                yield self._batch(arrays, columns, ids)
            return
        src_key, dst_key = self.cfg.nodes[spec.src].id, self.cfg.nodes[spec.dst].id
        t = within(g.V().has_label(self.label("node", spec.src)), src_key)
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
