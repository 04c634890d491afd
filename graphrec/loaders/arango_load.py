"""``graphrec load`` into ArangoDB: a graph (Arrow tables) as document and edge collections.

Every refusal is decided before the first write: names are checked (plan); then, reading
only, an edge collection that already holds edges is refused unless ``replace``, and so is
a node key that is not a valid ArangoDB document key (check). Then (write): collections
are created where missing, with a unique persistent index on each node type's key
attribute; nodes are imported with ``_key`` = their id and ``onDuplicate=replace`` (a rerun
updates, never duplicates); with ``replace`` the edge collections are truncated; edges are
imported in batches with ``_from``/``_to`` built from their endpoints' keys; a named graph
with one edge definition per edge type is created where missing.
"""

from __future__ import annotations

import re
import time

import pyarrow as pa

from graphrec.config import ArangoConfig, ExtractConfig
from graphrec.connectors.arango import connect, server, translate
from graphrec.errors import ConfigError, DataError
from graphrec.loaders.extract import GraphTables

KEY = re.compile(r"[A-Za-z0-9_\-.@()+,=;$!*'%:]{1,254}\Z")
"""ArangoDB's document key characters (docs: concepts/data-structure/documents)."""


def _collection(cfg: ExtractConfig, kind: str, name: str) -> str:
    spec = cfg.nodes[name] if kind == "node" else cfg.edges[name]
    return (spec.label if kind == "node" else spec.type) or name


def _docs(table: pa.Table, start: int, stop: int, make) -> list[dict]:
    part = table.slice(start, stop - start).to_pylist()
    return [make(row) for row in part]


def load_graph(tables: GraphTables, cfg: ExtractConfig, acfg: ArangoConfig, graph: str,
               batch_rows: int = 10_000, replace: bool = False) -> dict:  # fmt: skip
    """Write ``tables`` into the database of ``acfg``; returns counts and seconds."""
    cfg.check_identifiers()
    t0 = time.perf_counter()
    for ntype, table in tables.nodes.items():  # plan: every key a valid document key
        bad = [v for v in table.column("id").to_pylist() if not KEY.match(str(v))]
        if bad:
            raise DataError(
                f"arango load: {len(bad)} {ntype} ids are not valid ArangoDB document keys "
                f"(e.g. {bad[0]!r}); nothing was written"
            )
    with translate(acfg, "loading"):
        db = connect(acfg)
        have = {c["name"]: c for c in db.collections()}
        for name in tables.edges:  # check: never add edges to a collection that has some
            coll = _collection(cfg, "edge", name)
            if coll in have and db.collection(coll).count() and not replace:
                raise ConfigError(
                    f"arango at {server(acfg)}: edge collection {coll!r} already holds edges; "
                    "graphrec load --replace empties and reloads it; nothing was written"
                )
        counts: dict = {}
        for ntype, table in tables.nodes.items():
            coll = _collection(cfg, "node", ntype)
            key_attr = cfg.nodes[ntype].id
            if coll not in have:
                db.create_collection(coll)
            db.collection(coll).add_index(
                {"type": "persistent", "fields": [key_attr], "unique": True,
                 "name": f"graphrec_{key_attr}"}
            )  # fmt: skip

            def node(row, key_attr=key_attr):
                props = {k: v for k, v in row.items() if k != "id" and v is not None}
                return {"_key": str(row["id"]), key_attr: row["id"], **props}

            for lo in range(0, table.num_rows, batch_rows):
                db.collection(coll).import_bulk(
                    _docs(table, lo, lo + batch_rows, node), on_duplicate="replace"
                )
            counts[coll] = table.num_rows
        definitions = []
        for name, table in tables.edges.items():
            spec = cfg.edges[name]
            coll = _collection(cfg, "edge", name)
            src, dst = _collection(cfg, "node", spec.src), _collection(cfg, "node", spec.dst)
            if coll not in have:
                db.create_collection(coll, edge=True)
            elif replace:
                db.collection(coll).truncate()

            def edge(row, src=src, dst=dst):
                props = {k: v for k, v in row.items() if k not in ("src", "dst") and v is not None}
                return {"_from": f"{src}/{row['src']}", "_to": f"{dst}/{row['dst']}", **props}

            for lo in range(0, table.num_rows, batch_rows):
                db.collection(coll).import_bulk(_docs(table, lo, lo + batch_rows, edge))
            counts[coll] = table.num_rows
            definitions.append(
                {"edge_collection": coll, "from_vertex_collections": [src],
                 "to_vertex_collections": [dst]}
            )  # fmt: skip
        if not db.has_graph(graph):
            db.create_graph(graph, edge_definitions=definitions)
    return {"documents": counts, "graph": graph, "seconds": time.perf_counter() - t0}
