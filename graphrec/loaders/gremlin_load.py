"""``graphrec load`` into a Gremlin graph: a graph (Arrow tables) as vertices and edges.

Names are checked before anything is sent; an edge label that already holds edges is
refused unless ``replace`` (which drops that label's edges first). Vertices are upserted by
their key property (``mergeV``: a rerun updates their properties, never duplicates a
vertex); edges are added between the vertices their endpoints' keys name (``mergeE``: an
edge row listed twice with the same properties is stored once), in batches of
``batch_rows``, each batch one request of bytecode with the rows as its argument (never
script text).
"""

from __future__ import annotations

import time

from graphrec.config import ExtractConfig, GremlinConfig
from graphrec.connectors.gremlin import Gremlin, server, vertex_ids
from graphrec.errors import ConfigError
from graphrec.loaders.extract import GraphTables


def load_graph(tables: GraphTables, cfg: ExtractConfig, gcfg: GremlinConfig,
               batch_rows: int = 1_000, replace: bool = False) -> dict:  # fmt: skip
    """Write ``tables`` into the graph of ``gcfg``; returns counts and seconds."""
    from gremlin_python.process.graph_traversal import __
    from gremlin_python.process.traversal import Direction, Merge, T

    cfg.check_identifiers()
    t0 = time.perf_counter()
    conn = Gremlin(gcfg)
    counts: dict = {}
    try:
        for name in tables.edges:  # check: never add edges to a label that has some
            label = cfg.edges[name].type or name
            if conn.all(conn.g.E().has_label(label).limit(1).count())[0] and not replace:
                raise ConfigError(
                    f"gremlin at {server(gcfg)}: edge label {label!r} already has edges; "
                    "graphrec load --replace drops and reloads them; nothing was written"
                )
        ids: dict[str, dict] = {}
        for ntype, table in tables.nodes.items():
            label, key = cfg.nodes[ntype].label or ntype, cfg.nodes[ntype].id
            rows = table.to_pylist()
            for lo in range(0, len(rows), batch_rows):
                upserts = []
                for row in rows[lo : lo + batch_rows]:
                    props = {k: v for k, v in row.items() if k != "id" and v is not None}
                    match = {T.label: label, key: row["id"]}
                    upserts.append({"s": match, "c": {**match, **props}, "p": props})
                t = (
                    conn.g.inject(upserts).unfold().as_("m")
                    .merge_v(__.select("s"))
                    .option(Merge.on_create, __.select("m").select("c"))
                    .option(Merge.on_match, __.select("m").select("p"))
                )  # fmt: skip
                conn.run(t, f"loading {label} vertices")
            ids[ntype] = vertex_ids(conn, label, key, table.column("id").to_pylist())
            counts[ntype] = table.num_rows
        for name, table in tables.edges.items():
            spec = cfg.edges[name]
            label = spec.type or name
            if replace:
                conn.run(conn.g.E().has_label(label).drop(), f"dropping {label} edges")
            rows = table.to_pylist()
            for lo in range(0, len(rows), batch_rows):
                edges = [
                    {T.label: label, Direction.OUT: ids[spec.src][row["src"]],
                     Direction.IN: ids[spec.dst][row["dst"]],
                     **{k: v for k, v in row.items() if k not in ("src", "dst") and v is not None}}
                    for row in rows[lo : lo + batch_rows]
                ]  # fmt: skip
                conn.run(conn.g.inject(edges).unfold().merge_e(), f"loading {label} edges")
            counts[name] = table.num_rows
    finally:
        conn.close()
    return {"server": server(gcfg), "counts": counts, "seconds": time.perf_counter() - t0}
