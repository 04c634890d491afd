"""``graphrec load``: bulk-load a graph (Arrow tables) into Neo4j.

Every refusal is decided before the first write, in three steps:

1. *plan* (no server): every label, type and property name is checked and every query
   built; an edge's key columns must be its endpoint types' key properties.
2. *check* (reads only): a relationship type that already has relationships is refused
   unless ``replace``; a node key that cannot get its uniqueness constraint (duplicate keys
   already in the database, or a plain index on the same property) is refused.
3. *write*: uniqueness constraints on every node type's key (also the indexes the
   relationship writes match through), then batched ``UNWIND`` writes: nodes by ``MERGE`` (a
   rerun updates, never duplicates), the old relationships deleted in batches when
   ``replace``, relationships by ``CREATE``. A relationship batch that does not create one
   relationship per row is rolled back with an error.

Relationship batches run on ``parallelism`` threads; lock conflicts between them are
transient errors that the driver's managed transactions retry. An interrupt (``Interrupted``,
or ``KeyboardInterrupt``, which becomes one) cancels the batches not started, lets the
running ones finish for a few seconds, and leaves with ``outcome`` saying what was written;
an error after the first write says the same.
"""

from __future__ import annotations

import contextlib
import signal
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pyarrow as pa
from tqdm.auto import tqdm

from graphrec.config import ExtractConfig, Neo4jConfig
from graphrec.connectors.neo4j import (
    Neo4jError,
    close_quietly,
    connect,
    open_session,
    q,
    server,
    translate,
)
from graphrec.errors import ConfigError, DataError, GraphRecError, Interrupted
from graphrec.loaders.extract import GraphTables

GRACE_S = 10.0  # how long an interrupt waits for the batches already running
DELETE_ROWS = 50_000  # old relationships deleted per transaction (replace)


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


@dataclass
class _Write:
    """One batched write: a node type or a relationship type's edges."""

    what: str  # ":Movie nodes" or "[:RATED]"
    query: str
    table: pa.Table
    keys: list[str]
    edges: bool = False


@dataclass
class _Plan:
    constraints: list[tuple[str, str, str]] = field(default_factory=list)  # label, key, name
    nodes: dict[str, _Write] = field(default_factory=dict)
    edges: dict[str, _Write] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)  # relationship type -> edge name


@dataclass
class _Progress:
    """What has been written so far, for the message of an interrupt or a failure."""

    constraints: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    deleted: dict[str, bool] = field(default_factory=dict)  # type -> all old ones deleted
    edges: list[str] = field(default_factory=list)
    partial: tuple[str, int, int, int] | None = None  # what, done, total, still running

    def anything(self) -> bool:
        partial = bool(self.partial and (self.partial[1] or self.partial[3]))
        return bool(self.nodes or self.deleted or self.edges or partial)

    def outcome(self) -> str:
        done = [f"nodes of {label}" for label in self.nodes]
        done += [f"all {t} relationships" for t in self.edges]
        clauses = []
        if self.partial:
            what, n, total, still = self.partial
            if n:
                done.append(f"{n} of {total} batches of {what}")
            if still:
                clauses.append(
                    f"{still} more batch(es) of {what} were still running and may have been written"
                )
        if done:
            clauses.insert(0, _and(done) + " were written")
        deleted = [
            ("the old " if full else "some of the old ") + f"[:{t}] relationships"
            for t, full in self.deleted.items()
        ]
        if deleted:
            clauses.append(_and(deleted) + " were deleted")
        if not clauses:
            extra = " (only uniqueness constraints were created)" if self.constraints else ""
            return f"nothing was written to neo4j{extra}"
        return "; ".join(clauses) + "; rerun with --replace to load again"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _plan(tables: GraphTables, ecfg: ExtractConfig) -> _Plan:
    """Check every name and build every query; nothing reaches the server."""
    plan = _Plan()
    for ntype, spec in ecfg.nodes.items():
        where = f"extract.nodes.{ntype}"
        label = spec.label or ntype
        lab, key = q(label, f"{where}: label"), q(spec.id, f"{where}: id property")
        name = f"graphrec_{label}_{spec.id}_unique"
        q(name, f"{where}: constraint name")
        if ntype not in tables.nodes:
            raise DataError(f"graphrec load: no rows were read for node type {ntype!r}")
        plan.constraints.append((label, spec.id, name))
        plan.nodes[ntype] = _Write(
            f":{label} nodes",
            f"UNWIND $rows AS r MERGE (n:{lab} {{{key}: r.id}}) SET n += r.p",
            tables.nodes[ntype],
            ["id"],
        )
    for name, spec in ecfg.edges.items():
        where = f"extract.edges.{name}"
        rtype = spec.type or name
        rt = q(rtype, f"{where}: relationship type")
        ends = []
        for end, ntype in (("src", spec.src), ("dst", spec.dst)):
            if ntype not in ecfg.nodes:
                raise ConfigError(f"{where}.{end}: {ntype!r} is not a node type of extract.nodes")
            node = ecfg.nodes[ntype]  # an end is found by its node's key property; the
            # edge's src_id/dst_id name only the edge file's columns (friend -> friend: two)
            ends.append((q(node.label or ntype, "label"), q(node.id, f"{where}: {end}_id")))
        if name not in tables.edges:
            raise DataError(f"graphrec load: no rows were read for edge type {name!r}")
        (src, src_key), (dst, dst_key) = ends
        plan.types.setdefault(rtype, name)
        plan.edges[name] = _Write(
            f"[:{rtype}]",
            f"UNWIND $rows AS r MATCH (a:{src} {{{src_key}: r.src}}) "
            f"MATCH (b:{dst} {{{dst_key}: r.dst}}) CREATE (a)-[e:{rt}]->(b) SET e = r.p",
            tables.edges[name],
            ["src", "dst"],
            edges=True,
        )
    return plan


def _check(session, plan: _Plan, ncfg: Neo4jConfig, replace: bool) -> tuple[dict, list]:
    """Read-only checks: existing relationships per type, and whether each node key can
    get its uniqueness constraint. Returns (existing counts, constraints to create)."""
    existing = {}
    for rtype in plan.types:
        existing[rtype] = session.run(f"MATCH ()-[r:{q(rtype)}]->() RETURN count(r) AS c").single()[
            "c"
        ]
    full = {t: n for t, n in existing.items() if n}
    if full and not replace:
        what = _and([f"{n} :{t}" for t, n in full.items()])
        raise Neo4jError(
            f"neo4j at {server(ncfg)} already has {what} relationships: pass --replace to "
            "delete and load them again; nothing was written"
        )
    unique = {
        (tuple(r["labelsOrTypes"] or ()), tuple(r["properties"] or ()))
        for r in session.run(
            "SHOW CONSTRAINTS YIELD type, entityType, labelsOrTypes, properties "
            "WHERE entityType = 'NODE' AND type IN ['UNIQUENESS', 'NODE_KEY'] "
            "RETURN labelsOrTypes, properties"
        )
    }
    indexes = {
        (tuple(r["labelsOrTypes"] or ()), tuple(r["properties"] or ())): r["name"]
        for r in session.run(
            "SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, "
            "owningConstraint WHERE entityType = 'NODE' AND type = 'RANGE' "
            "AND owningConstraint IS NULL RETURN name, labelsOrTypes, properties"
        )
    }
    create = []
    for label, key, name in plan.constraints:
        schema = ((label,), (key,))
        if schema in unique:
            continue
        if schema in indexes:
            raise Neo4jError(
                f"neo4j at {server(ncfg)} has index {indexes[schema]!r} on :{label}({key}), "
                f"so the uniqueness constraint graphrec load needs there cannot be created: "
                f"drop it first (DROP INDEX {q(indexes[schema])}); nothing was written"
            )
        dup = session.run(
            f"MATCH (n:{q(label)}) WHERE n.{q(key)} IS NOT NULL "
            f"WITH n.{q(key)} AS k, count(*) AS c WHERE c > 1 RETURN k, c LIMIT 1"
        ).single()
        if dup is not None:
            raise Neo4jError(
                f"neo4j at {server(ncfg)} already has {dup['c']} :{label} nodes with {key} = "
                f"{dup['k']!r}, so the uniqueness constraint on :{label}({key}) cannot be "
                "created: remove the duplicates first; nothing was written"
            )
        create.append((label, key, name))
    return existing, create


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
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ConfigError(f"--batch-rows={batch_rows!r}: must be a whole number >= 1")
    if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
        raise ConfigError(f"--parallel={parallelism!r}: must be a whole number >= 1")
    plan = _plan(tables, ecfg)
    done = _Progress()
    stats: dict = {}
    driver = None
    try:
        with translate(ncfg, "loading the graph"):
            driver = connect(ncfg)
            with open_session(driver, ncfg) as s:
                existing, create = _check(s, plan, ncfg, replace)
                # -- nothing was written before this line -------------------------------
                for label, key, name in create:
                    s.run(
                        f"CREATE CONSTRAINT {q(name)} IF NOT EXISTS FOR (n:{q(label)}) "
                        f"REQUIRE n.{q(key)} IS UNIQUE"
                    ).consume()
                    done.constraints.append(name)
                s.run("CALL db.awaitIndexes(300)").consume()

            for ntype, job in plan.nodes.items():
                stats[f"nodes:{ntype}"] = _write_batches(
                    driver, ncfg, job, batch_rows, 1, progress, done
                )
                done.nodes.append(job.what.split()[0])

            for rtype, n in existing.items():
                if n:
                    _delete(driver, ncfg, rtype, done)

            for name, job in plan.edges.items():
                stats[f"edges:{name}"] = _write_batches(
                    driver, ncfg, job, batch_rows, parallelism, progress, done
                )
                done.edges.append(job.what)
    except (Interrupted, KeyboardInterrupt) as exc:
        stop = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        stop.outcome = done.outcome()
        if stop is exc:
            raise
        raise stop from None
    except GraphRecError as exc:
        if done.anything():
            raise type(exc)(f"{exc}; {done.outcome()}") from None
        raise
    finally:
        close_quietly(driver)
    return stats


def _delete(driver, ncfg: Neo4jConfig, rtype: str, done: _Progress) -> None:
    """Delete every ``rtype`` relationship, in batches (``replace``)."""
    done.deleted[rtype] = False
    with open_session(driver, ncfg) as s:
        left = 1
        while left:
            left = s.run(
                f"MATCH ()-[r:{q(rtype)}]->() WITH r LIMIT {DELETE_ROWS} DELETE r "
                "RETURN count(*) AS c"
            ).single()["c"]
    done.deleted[rtype] = True


def _write_batches(driver, ncfg, job: _Write, batch_rows, parallelism, progress, done) -> dict:
    """Write ``job.table`` in batches of ``batch_rows`` on ``parallelism`` threads."""
    t0 = time.perf_counter()
    table = job.table
    starts = list(range(0, table.num_rows, batch_rows))
    bar = tqdm(
        total=table.num_rows,
        desc=f"load {job.what}",
        unit=" rows",
        unit_scale=True,
        disable=not progress,
    )

    def work(tx, rows: list[dict], start: int) -> None:
        summary = tx.run(job.query, rows=rows).consume()
        created = summary.counters.relationships_created
        if job.edges and created != len(rows):  # roll back: an endpoint was not found
            raise DataError(
                f"graphrec load {job.what}, rows {start + 1}-{start + len(rows)}: "
                f"{len(rows) - created} of {len(rows)} relationships found no endpoint node; "
                "this batch was rolled back"
            )

    def one(start: int) -> int:
        rows = _rows(table, job.keys, start, min(start + batch_rows, table.num_rows))
        with open_session(driver, ncfg) as s:
            s.execute_write(work, rows, start)
        bar.update(len(rows))
        return len(rows)

    pool = ThreadPoolExecutor(max(1, min(parallelism, len(starts))), "graphrec-load")
    futures = [pool.submit(one, start) for start in starts]
    written = 0
    try:
        for future in futures:
            written += future.result()
    except BaseException:
        # stop: no batch starts any more; the running ones get GRACE_S to finish (each is
        # one transaction), then closing the driver ends them; their errors stay in the
        # futures, so no thread prints a traceback
        pool.shutdown(wait=False, cancel_futures=True)
        running = [f for f in futures if not f.done()]
        with contextlib.suppress(BaseException):
            wait(running, timeout=GRACE_S)
        ok = sum(1 for f in futures if f.done() and not f.cancelled() and f.exception() is None)
        still = sum(1 for f in futures if f.running())
        done.partial = (job.what, ok, len(futures), still)
        raise
    finally:
        bar.close()
    pool.shutdown()
    if written != table.num_rows:
        raise DataError(f"graphrec load {job.what}: wrote {written} of {table.num_rows} rows")
    seconds = time.perf_counter() - t0
    return {"rows": written, "seconds": seconds, "rows_per_s": written / max(seconds, 1e-9)}
