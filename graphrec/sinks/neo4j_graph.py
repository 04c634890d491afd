"""``graphrec load``: bulk-load a graph (Arrow tables) into Neo4j.

Uniqueness constraints on every node type's key come first (they are also the indexes the
relationship writes match through), then batched ``UNWIND`` writes: nodes by ``MERGE`` (a
rerun updates, never duplicates), relationships by ``CREATE`` after checking that the type
is empty (``replace=True`` deletes the old ones first, in batches). Relationship batches run
on ``parallelism`` threads; lock conflicts between them are transient errors that the
driver's managed transactions retry.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
from tqdm.auto import tqdm

from graphrec.config import ExtractConfig, Neo4jConfig
from graphrec.connectors.neo4j import Neo4jError, connect, q, translate
from graphrec.loaders.extract import GraphTables


def _rows(table: pa.Table, keys: list[str], start: int, stop: int) -> list[dict]:
    part = table.slice(start, stop - start)
    cols = {name: part.column(name).to_pylist() for name in part.column_names}
    props = [c for c in part.column_names if c not in keys]
    out = []
    for i in range(part.num_rows):
        row = {k: cols[k][i] for k in keys}
        row["p"] = {c: cols[c][i] for c in props if cols[c][i] is not None}
        out.append(row)
    return out


def load_graph(
    tables: GraphTables,
    ecfg: ExtractConfig,
    ncfg: Neo4jConfig,
    batch_rows: int = 10_000,
    parallelism: int = 1,
    replace: bool = False,
    progress: bool = True,
) -> dict:
    """Write ``tables`` into Neo4j with the labels/types of ``ecfg``; returns rows/s stats."""
    driver = connect(ncfg)
    stats: dict = {}
    try:
        with translate(ncfg):
            with driver.session(database=ncfg.database) as s:
                for ntype, spec in ecfg.nodes.items():
                    lab, key = q(spec.label or ntype, "label"), q(spec.id, "property")
                    name = q(f"graphrec_{spec.label or ntype}_{spec.id}_unique")
                    s.run(
                        f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{lab}) "
                        f"REQUIRE n.{key} IS UNIQUE"
                    ).consume()
                s.run("CALL db.awaitIndexes(300)").consume()

            for ntype, spec in ecfg.nodes.items():
                lab, key = q(spec.label or ntype, "label"), q(spec.id, "property")
                query = f"UNWIND $rows AS r MERGE (n:{lab} {{{key}: r.id}}) SET n += r.p"
                stats[f"nodes:{ntype}"] = _write_batches(
                    driver,
                    ncfg,
                    query,
                    tables.nodes[ntype],
                    ["id"],
                    batch_rows,
                    1,
                    f"load :{spec.label or ntype}",
                    progress,
                )

            for name, spec in ecfg.edges.items():
                src, dst = ecfg.nodes[spec.src], ecfg.nodes[spec.dst]
                rtype = q(spec.type or name, "relationship type")
                with driver.session(database=ncfg.database) as s:
                    existing = s.run(f"MATCH ()-[r:{rtype}]->() RETURN count(r) AS c").single()["c"]
                    if existing and not replace:
                        raise Neo4jError(
                            f"neo4j at {ncfg.uri} already has {existing} :{spec.type or name} "
                            "relationships: pass --replace to delete and load them again"
                        )
                    while existing:
                        existing = s.run(
                            f"MATCH ()-[r:{rtype}]->() WITH r LIMIT 50000 DELETE r "
                            "RETURN count(*) AS c"
                        ).single()["c"]
                query = (
                    f"UNWIND $rows AS r MATCH (a:{q(src.label or spec.src, 'label')} "
                    f"{{{q(spec.src_id, 'property')}: r.src}}) "
                    f"MATCH (b:{q(dst.label or spec.dst, 'label')} "
                    f"{{{q(spec.dst_id, 'property')}: r.dst}}) "
                    f"CREATE (a)-[e:{rtype}]->(b) SET e = r.p"
                )
                stats[f"edges:{name}"] = _write_batches(
                    driver,
                    ncfg,
                    query,
                    tables.edges[name],
                    ["src", "dst"],
                    batch_rows,
                    parallelism,
                    f"load [:{spec.type or name}]",
                    progress,
                )
    finally:
        driver.close()
    return stats


def _write_batches(driver, ncfg, query, table, keys, batch_rows, parallelism, desc, progress):
    t0 = time.perf_counter()
    bar = tqdm(total=table.num_rows, desc=desc, unit=" rows", unit_scale=True, disable=not progress)

    def one(start: int) -> int:
        rows = _rows(table, keys, start, min(start + batch_rows, table.num_rows))
        with driver.session(database=ncfg.database) as s:
            s.execute_write(lambda tx: tx.run(query, rows=rows).consume())
        bar.update(len(rows))
        return len(rows)

    starts = range(0, table.num_rows, batch_rows)
    with translate(ncfg), ThreadPoolExecutor(max(1, parallelism)) as pool:
        written = sum(pool.map(one, starts))
    bar.close()
    seconds = time.perf_counter() - t0
    return {"rows": written, "seconds": seconds, "rows_per_s": written / max(seconds, 1e-9)}
