"""ArangoDB as a graph source: partitioned, parallel AQL stream cursors into Arrow batches.

A collection is split into ``extract.parallelism`` ranges of its primary key, read
concurrently. The boundaries come from the server's own key order (one index-only query,
:data:`BOUNDS`), so no ``LIMIT offset, n`` pagination ever rescans. Each range is one
stream cursor (``stream: true``: the server produces batches as they are fetched, nothing
is materialised) of ``arango.fetch_rows`` rows per batch; each batch becomes one Arrow
record batch, so memory is bounded by the batch. Rows come back as arrays, not objects
(smaller JSON, columns by position). Collection and attribute names are bind parameters
(``@@c``, ``d.@a0``); only the fixed templates below are ever sent.

An edge's endpoints are resolved to their node types' key attributes with ``DOCUMENT()``,
so an edge whose ``_from`` or ``_to`` points to no document is found and named. Compared
with ArangoDB's own Rust loader (phenolrs / arangors-graph-exporter), which on 3.12 reads
the internal ``/_api/dump`` API per DB server and falls back to one AQL cursor per
collection, this uses public APIs only and parallelises inside one collection on any
version; it does not read shard-local (docs/arango-research.md).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pyarrow as pa

from graphrec.config import EdgeSpec, ExtractConfig, NodeSpec
from graphrec.connectors.arango import LOOKUP, ArangoError, connect, server, translate
from graphrec.errors import DataError
from graphrec.loaders.base import GraphSource, Kind, Partition, RowNames, to_arrow

KEY_COLUMN = "document _key"
"""The document keys of a batch, beside the declared columns (a name no identifier has)."""
BOUNDS = "FOR off IN @offsets RETURN FIRST(FOR d IN @@c SORT d._key LIMIT off, 1 RETURN d._key)"
"""Partition boundaries: the keys at the given offsets of the primary index's order."""


def _filter(var: str, lower: bool, upper: bool) -> str:
    parts = ([f"{var}._key >= @lo"] if lower else []) + ([f"{var}._key < @hi"] if upper else [])
    return (" FILTER " + " AND ".join(parts)) if parts else ""


def node_query(n_attrs: int, lower: bool, upper: bool) -> str:
    """``[_key, attr0, attr1, ...]`` of the documents in one key range."""
    cols = ", ".join(["d._key", *(f"d.@a{i}" for i in range(n_attrs))])
    return f"FOR d IN @@c{_filter('d', lower, upper)} RETURN [{cols}]"


def edge_query(n_attrs: int, lower: bool, upper: bool) -> str:
    """``[_key, _from, _to, src key attr, dst key attr, attr0, ...]`` of the edges in one
    key range; an endpoint without a document gives null."""
    cols = ", ".join(
        ["e._key", "e._from", "e._to", "a.@s", "b.@t", *(f"e.@a{i}" for i in range(n_attrs))]
    )
    return (
        f"FOR e IN @@c{_filter('e', lower, upper)} LET a = DOCUMENT(e._from) "
        f"LET b = DOCUMENT(e._to) RETURN [{cols}]"
    )


class ArangoSource(GraphSource):
    """Reads the collections named in the config from an ArangoDB database."""

    def __init__(self, cfg: ExtractConfig) -> None:
        super().__init__(cfg)
        self.acfg = cfg.arango
        cfg.check_identifiers()  # every name from config, before anything reaches the server
        self._db = None
        self._lock = threading.Lock()

    @property
    def db(self):
        with self._lock:
            if self._db is None:
                self._db = connect(self.acfg, self.cfg.parallelism)
            return self._db

    def close(self) -> None:
        with self._lock:
            self._db = None

    def stores_nodes(self) -> bool:
        return True

    def collection(self, kind: Kind, name: str) -> str:
        if kind == "node":
            return self.cfg.nodes[name].label or name
        return self.cfg.edges[name].type or name

    def _count(self, kind: Kind, name: str) -> int:
        coll = self.collection(kind, name)
        with translate(self.acfg):
            names = {c["name"] for c in self.db.collections()}
            if coll not in names:
                have = ", ".join(sorted(n for n in names if not n.startswith("_"))) or "none"
                raise ArangoError(
                    f"arango at {server(self.acfg)}: collection {coll!r} (extract.{kind}s."
                    f"{name}) does not exist in database {self.acfg.database!r} (have: {have})"
                )
            return int(self.db.collection(coll).count())

    # -- partitions ----------------------------------------------------------------------
    def _partitions(self, kind: Kind, name: str, spec: NodeSpec | EdgeSpec) -> list[Partition]:
        coll = self.collection(kind, name)
        count = self._count(kind, name)
        n_parts = max(1, min(self.cfg.parallelism, count))
        offsets = [i * count // n_parts for i in range(1, n_parts)]
        bounds: list[str] = []
        if offsets:
            with translate(self.acfg, f"splitting {coll!r}"):
                cur = self.db.aql.execute(BOUNDS, bind_vars={"@c": coll, "offsets": offsets})
                bounds = [b for b in cur if b is not None]
        edges = [None, *sorted(set(bounds)), None]
        return [
            Partition(kind, name, i, self._where(coll, lo, hi), (lo, hi))
            for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True))
        ]

    def _where(self, coll: str, lo, hi) -> str:
        rng = f"keys {lo or 'first'}..{'before ' + hi if hi else 'last'}"
        return f"arango collection {coll!r} ({rng})"

    # -- reading ---------------------------------------------------------------------------
    def _read(
        self, part: Partition, spec: NodeSpec | EdgeSpec, columns: list[str]
    ) -> Iterator[pa.RecordBatch]:
        lo, hi = part.payload
        coll = self.collection(part.kind, part.name)
        binds: dict = {"@c": coll}
        if lo is not None:
            binds["lo"] = lo
        if hi is not None:
            binds["hi"] = hi
        if part.kind == "node":
            attrs = columns
            query = node_query(len(attrs), lo is not None, hi is not None)
            skip = 1
        else:
            attrs = columns[2:]
            query = edge_query(len(attrs), lo is not None, hi is not None)
            binds["s"] = self.cfg.nodes[spec.src].id
            binds["t"] = self.cfg.nodes[spec.dst].id
            skip = 3
        binds.update({f"a{i}": a for i, a in enumerate(attrs)})
        with translate(self.acfg, f"reading {part.location}"):
            cur = self.db.aql.execute(
                query, bind_vars=binds, batch_size=self.acfg.fetch_rows, stream=True, ttl=120
            )
            try:
                while True:
                    rows = list(cur.batch())
                    cur.batch().clear()
                    if rows:
                        yield self._batch(part, spec, rows, columns, skip)
                    if not cur.has_more():
                        break
                    cur.fetch()
            finally:
                with contextlib.suppress(Exception):  # best effort: the server drops a
                    cur.close(ignore_missing=True)  # cursor after its ttl anyway

    def _batch(self, part, spec, rows: list, columns: list[str], skip: int) -> pa.RecordBatch:
        cols = list(zip(*rows, strict=True))
        keys = cols[0]
        values = cols[skip:]
        n_keys = 1 if part.kind == "node" else 2
        for j in range(n_keys):
            if any(v is None for v in values[j]):
                row = list(values[j]).index(None)
                self._missing_key(part, spec, columns[j], j, keys[row], cols, row)
        arrays = [to_arrow(list(v)) for v in values]
        arrays.append(pa.array(keys, pa.string()))  # names a document in messages
        return pa.RecordBatch.from_arrays(arrays, names=[*columns, KEY_COLUMN])

    def _row_names(self, part: Partition, batch: pa.RecordBatch, row0: int) -> RowNames:
        coll = self.collection(part.kind, part.name)
        return RowNames(row0, batch.column(KEY_COLUMN), coll)

    def holders(self, ntype: str, node_id) -> str:
        """The documents holding a duplicated key attribute value (a few of them)."""
        coll, attr = self.collection("node", ntype), self.cfg.nodes[ntype].id
        with translate(self.acfg, f"reading {coll}"):
            found = self.db.aql.execute(
                LOOKUP, bind_vars={"@c": coll, "k": attr, "ids": [node_id]}, batch_size=8
            )
            ids = [row[1] for _, row in zip(range(8), found, strict=False)]
        return f" (documents {', '.join(ids)} hold {attr} {node_id!r})" if ids else ""

    def _missing_key(self, part, spec, column, j, key, cols, row) -> None:
        coll = self.collection(part.kind, part.name)
        if part.kind == "node":
            raise DataError(
                f"arango: document {coll}/{key} has no key attribute {column!r} "
                f"(extract.nodes.{part.name}.id)"
            )
        end = cols[1 + j][row]
        node = spec.src if j == 0 else spec.dst
        raise DataError(
            f"arango: edge {coll}/{key}: {'_from' if j == 0 else '_to'} {end!r} points to no "
            f"document with key attribute {self.cfg.nodes[node].id!r} (extract.edges.{part.name})"
        )

    def fingerprint(self) -> str:
        """Counts and revisions of every collection read (a change re-extracts); the URL
        enters without userinfo."""
        parts = [server(self.acfg), self.acfg.database]
        with translate(self.acfg):
            for kind, table in (("node", self.cfg.nodes), ("edge", self.cfg.edges)):
                for name in table:
                    c = self.db.collection(self.collection(kind, name))
                    parts += [str(c.count()), str(c.revision())]
        return "|".join(parts)
