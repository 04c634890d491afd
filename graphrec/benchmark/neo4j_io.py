"""Neo4j extraction and write-back throughput: graphrec against the usual ways, one server.

Starts the embedded Neo4j (``neo4j-embedded/``), loads a graph (MovieLens, or a synthetic
one from ``graphrec synth``), then measures on the same server in one run:

extraction of the rating relationships (edges/s)
  (a) seed   one query, records into pandas (the seed articles' way)
  (b) skip   SKIP/LIMIT pages read by P threads (the Spark connector's way)
  (c) graphrec  graphrec's Neo4jSource at P = 1, 2, 4 partitions, with and without the
      neo4j-rust-ext decoder (run in a subprocess with it on the path)
write-back of top-k recommendations (relationships/s)
  (a) one transaction per row   (b) graphrec's batched, idempotent Neo4jSink

    NEO4J_PASSWORD is not needed: the bench sets its own.
    python -m graphrec.benchmark.neo4j_io --graph movielens
    python -m graphrec.benchmark.neo4j_io --graph synth --edges 5e6
    python -m graphrec.benchmark.neo4j_io --graph synth --edges 2e7 --bulk [--rust-path DIR]

``--bulk`` (large graphs): the graph goes in by Neo4j's offline importer (``graphrec load
--import-files`` + ``neo4j-admin database import full``, relationships/s), then graphrec's
extraction (P = ``--partitions``, with the rust-ext decoder where given; the cold first
pass is measured, then ``--repeats`` warm passes, each recorded, the best reported: the
server's query runtime warms up over the first passes too), the server's own
bound (the same queries returning only ``count(*)``) and the batched
write-back of the top 10 for every user; the one-row-at-a-time baselines are left out
(pandas of 20M records alone would not fit).

Run from the repository root (it reads ``configs/`` and ``data/``, and starts the server
built in ``neo4j-embedded/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from graphrec.benchmark.io import SYNTH_AS_MOVIELENS, same_items_for_all, timed_edge_read
from graphrec.benchmark.results import machine, save, versions
from graphrec.config import load_config
from graphrec.connectors.neo4j import connect

REL_QUERY = (
    "MATCH (a:User)-[r:RATED]->(b:Movie) RETURN a.userId AS s, b.movieId AS d, r.rating AS x"
)


def job_config(graph: str, root: str, uri: str, env: str, parallelism: int):
    over = [
        f"extract.neo4j.uri={uri}",
        f"extract.neo4j.password_env={env}",
        f"extract.parallelism={parallelism}",
        f"extract.root={root}",
    ]
    if graph == "synth":  # same schema names as MovieLens, so one set of queries serves both
        over += SYNTH_AS_MOVIELENS
    return load_config("configs/movielens-neo4j.yaml", over)


def graphrec_extract(cfg) -> dict:
    from graphrec.loaders.neo4j import Neo4jSource

    return timed_edge_read(Neo4jSource(cfg.extract), "rates")


def seed_extract(ncfg, dst_key: str) -> dict:
    import pandas as pd

    driver = connect(ncfg)
    t0 = time.perf_counter()
    with driver.session() as s:
        df = pd.DataFrame(s.run(REL_QUERY.replace("movieId", dst_key)).data())
    sec = time.perf_counter() - t0
    driver.close()
    return {"edges": len(df), "seconds": sec, "edges_per_s": len(df) / sec}


def _threads(driver, one, parallelism: int) -> dict:
    """Rows of ``one(0..parallelism-1)`` read on as many threads, timed; closes ``driver``."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        rows = sum(pool.map(one, range(parallelism)))
    sec = time.perf_counter() - t0
    driver.close()
    return {"edges": rows, "seconds": sec, "edges_per_s": rows / sec}


def skip_limit_extract(ncfg, dst_key: str, parallelism: int, total: int) -> dict:
    driver = connect(ncfg)
    page = -(-total // parallelism)
    q = REL_QUERY.replace("movieId", dst_key) + " SKIP $skip LIMIT $limit"

    def one(i: int) -> int:
        with driver.session() as s:
            return len(s.run(q, skip=i * page, limit=page).values())

    return _threads(driver, one, parallelism)


def traversal_ceiling(cfg) -> dict:
    """The server's own bound for graphrec's read of ``rates``: graphrec's own partitions,
    chunks and ``MATCH`` (:meth:`Neo4jSource.match`), each query returning only
    ``count(*)`` (no property read, nothing to transfer or decode). No client can extract
    faster than this."""
    from graphrec.loaders.neo4j import Neo4jSource

    source = Neo4jSource(cfg.extract)
    try:
        parts = source.partitions("edge", "rates")
        q = source.match("edge", "rates", cfg.extract.edges["rates"]) + " RETURN count(*) AS n"
    finally:
        source.close()
    driver = connect(cfg.extract.neo4j)

    def one(p: int) -> int:
        lo, hi, chunk = parts[p].payload
        with driver.session(database=cfg.extract.neo4j.database) as s:
            return sum(
                s.run(q, lo=c, hi=min(c + chunk, hi)).single()["n"] for c in range(lo, hi, chunk)
            )

    return _threads(driver, one, len(parts))


def per_row_write(ncfg, table: pa.Table, dst_key: str, rows: int) -> dict:
    driver = connect(ncfg)
    q = (
        f"MATCH (a:User {{userId: $u}}) MATCH (b:Movie {{{dst_key}: $i}}) "
        "CREATE (a)-[:BENCH_ROW {rank: $r, score: $s}]->(b)"
    )
    data = table.slice(0, rows).to_pylist()
    t0 = time.perf_counter()
    with driver.session() as s:
        for row in data:
            s.execute_write(
                lambda tx, r=row: tx.run(
                    q, u=r["user_id"], i=r["item_id"], r=r["rank"], s=r["score"]
                ).consume()
            )
    sec = time.perf_counter() - t0
    with driver.session() as s:
        s.run("MATCH ()-[r:BENCH_ROW]->() DELETE r").consume()
    driver.close()
    return {"rows": rows, "seconds": sec, "rows_per_s": rows / sec}


def batched_write(ncfg, table: pa.Table, dst_key: str) -> dict:
    from graphrec.sinks.neo4j import Neo4jSink

    sink = Neo4jSink(ncfg, ("User", "userId"), ("Movie", dst_key), "BENCH_REC", "bench", "b1")
    return sink.write(table)


def fake_recommendations(ncfg, dst_key: str, k: int = 10) -> pa.Table:
    driver = connect(ncfg)
    with driver.session() as s:
        users = [r[0] for r in s.run("MATCH (u:User) RETURN u.userId").values()]
        items = [r[0] for r in s.run(f"MATCH (m:Movie) RETURN m.{dst_key} LIMIT $k", k=k).values()]
    driver.close()
    return same_items_for_all(users, items)


def rust_extract(a, root: str, uri: str, env: str, par: int) -> dict:
    """graphrec's extraction in a subprocess with neo4j-rust-ext on the path."""
    out = subprocess.run(
        [sys.executable, "-m", "graphrec.benchmark.neo4j_io", "--child", "--graph", a.graph]
        + ["--root", root, "--uri", uri, "--password-env", env, "--parallelism", str(par)],
        env={**os.environ, "PYTHONPATH": f"{a.rust_path}:{os.getcwd()}"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def top10_for_every_user(tables, k: int = 10) -> pa.Table:
    """k distinct items for every user (spread over the catalogue, as a model's are)."""
    import numpy as np

    users = tables.nodes["user"]["id"].to_numpy()
    items = tables.nodes["movie"]["id"].to_numpy()
    n, m = len(users), len(items)
    pick = (np.arange(n)[:, None] * 7919 + np.arange(k)[None, :] * (m // k + 1)) % m
    return pa.table(
        {
            "user_id": np.repeat(users, k),
            "item_id": items[pick.ravel()],
            "rank": np.tile(np.arange(1, k + 1), n),
            "score": np.tile(np.linspace(1.0, 0.1, k), n),
        }
    )


def bulk(a) -> None:
    """``--bulk``: offline import, extraction and write-back of a large synthetic graph."""
    import shutil

    from graphrec.benchmark.neo4j_server import EmbeddedNeo4j
    from graphrec.loaders import extract
    from graphrec.loaders.files import FileSource
    from graphrec.loaders.neo4j_import import import_command, write_import_files
    from graphrec.sinks.neo4j import Neo4jSink
    from graphrec.synth import synth_graph

    if a.graph != "synth":
        raise SystemExit("--bulk measures a synthetic graph: --graph synth --edges N")
    work = Path(tempfile.mkdtemp(prefix="graphrec-bench-bulk-"))
    root = str(work / "synth")
    env = "GRAPHREC_BENCH_NEO4J_PASSWORD"
    result: dict = {"benchmark": "neo4j-bulk", "graph": "synth", "machine": machine()}
    try:
        result["synth"] = synth_graph(root, int(a.edges), progress=False)
        cfg = job_config("synth", root, "bolt://unused", env, 1)
        t0 = time.perf_counter()
        tables = extract(
            FileSource(dataclasses.replace(cfg.extract, source="files")), progress=False
        )
        result["edges"] = tables.edges["rates"].num_rows
        result["read_files_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        files = write_import_files(tables, cfg.extract, work / "import")
        sec = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in files.root.iterdir())
        result["import_files"] = {"seconds": sec, "bytes": size, "rows": files.rows}
        print("import files", json.dumps(result["import_files"]), flush=True)
        recs = top10_for_every_user(tables)
        del tables
        server = EmbeddedNeo4j(
            work / "neo4j", secrets.token_urlsafe(12), env, heap="3g", pagecache="4g", timeout=600
        )
        imp = server.admin_import(import_command(files), heap="4g")
        imp["relationships_per_s"] = imp.get("relationships", 0) / imp["seconds"]
        result["import"] = imp
        print("neo4j-admin import", json.dumps(imp), flush=True)
        shutil.rmtree(files.root)  # the store holds it now
        ex = result["extract"] = {}
        with server as ncfg:
            pars = [int(x) for x in a.partitions.split(",")]
            # the first read after the import fills the page cache: reported apart
            ex["graphrec_cold_first_pass"] = (
                rust_extract(a, root, ncfg.uri, env, max(pars))
                if a.rust_path
                else graphrec_extract(job_config("synth", root, ncfg.uri, env, max(pars)))
            )
            for par in pars:
                ex[f"graphrec_p{par}"] = graphrec_extract(
                    job_config("synth", root, ncfg.uri, env, par)
                )
                if a.rust_path:  # warm passes: the best, and every pass's figure
                    runs = [rust_extract(a, root, ncfg.uri, env, par) for _ in range(a.repeats)]
                    best = max(runs, key=lambda r: r["edges_per_s"])
                    best["passes_edges_per_s"] = [r["edges_per_s"] for r in runs]
                    ex[f"graphrec_rust_p{par}"] = best
                ex[f"server_count_only_p{par}"] = traversal_ceiling(
                    job_config("synth", root, ncfg.uri, env, par)
                )
                print(par, {k: round(v["edges_per_s"]) for k, v in ex.items()}, flush=True)
            sink = Neo4jSink(
                ncfg, ("User", "userId"), ("Movie", "itemId"), "BENCH_REC", "bench", "b1"
            )
            t0 = time.perf_counter()
            w = sink.write(recs)
            w["seconds_total"] = time.perf_counter() - t0
            w["rows_per_s"] = recs.num_rows / w["seconds_total"]
            result["write"] = {"graphrec_batched_top10_every_user": w}
            print("write", json.dumps(w), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import neo4j

    result["versions"] = {
        "neo4j_driver": neo4j.__version__,
        "neo4j_server": "5.26.0 (embedded; neo4j-admin import of the same jars)",
        **versions(),
    }
    save(result, "neo4j-bulk-synth", a.out)


def child(args) -> None:
    """Measure graphrec's extraction only (run in a subprocess for the rust-ext variant)."""
    import neo4j  # noqa: F401

    cfg = job_config(args.graph, args.root, args.uri, args.password_env, args.parallelism)
    print(json.dumps(graphrec_extract(cfg)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", choices=["movielens", "synth"], default="movielens")
    p.add_argument("--edges", type=float, default=5e6)
    p.add_argument("--partitions", default="1,2,4")
    p.add_argument("--rust-path", default=None, help="folder with neo4j + neo4j-rust-ext")
    p.add_argument("--per-row", type=int, default=2000, help="rows for the per-row write")
    p.add_argument("--out", default="bench/results")
    p.add_argument("--bulk", action="store_true", help="large graphs: offline import (see above)")
    p.add_argument("--repeats", type=int, default=3, help="--bulk: warm rust-ext passes per P")
    # child mode
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--uri"), p.add_argument("--password-env"), p.add_argument("--root")
    p.add_argument("--parallelism", type=int, default=1)
    a = p.parse_args()
    if a.child:
        return child(a)
    if a.bulk:
        return bulk(a)

    from graphrec.benchmark.neo4j_server import EmbeddedNeo4j
    from graphrec.loaders import extract
    from graphrec.loaders.files import FileSource
    from graphrec.loaders.neo4j_load import load_graph
    from graphrec.synth import synth_graph

    work = Path(tempfile.mkdtemp(prefix="graphrec-bench-"))
    root = "data/movielens-small"
    if a.graph == "synth":
        root = str(work / "synth")
        synth_graph(root, int(a.edges), progress=False)
    dst_key = "movieId" if a.graph == "movielens" else "itemId"
    env = "GRAPHREC_BENCH_NEO4J_PASSWORD"
    result: dict = {
        "benchmark": "neo4j",
        "graph": a.graph,
        "machine": machine(),
        "extract": {},
        "write": {},
    }
    with EmbeddedNeo4j(
        work / "neo4j", secrets.token_urlsafe(12), env, heap="4g", pagecache="4g", timeout=300
    ) as ncfg:
        cfg = job_config(a.graph, root, ncfg.uri, env, 1)
        tables = extract(
            FileSource(dataclasses.replace(cfg.extract, source="files")), progress=False
        )
        result["load"] = load_graph(tables, cfg.extract, ncfg, progress=False, parallelism=1)
        total = tables.edges["rates"].num_rows
        result["edges"] = total
        del tables
        print("loaded", json.dumps(result["load"]), flush=True)
        graphrec_extract(job_config(a.graph, root, ncfg.uri, env, 1))  # warm the page cache
        ex = result["extract"]
        ex["seed_pandas"] = seed_extract(ncfg, dst_key)
        print("seed", ex["seed_pandas"], flush=True)
        for par in [int(x) for x in a.partitions.split(",")]:
            ex[f"skip_limit_p{par}"] = skip_limit_extract(ncfg, dst_key, par, total)
            ex[f"graphrec_p{par}"] = graphrec_extract(job_config(a.graph, root, ncfg.uri, env, par))
            if a.rust_path:
                ex[f"graphrec_rust_p{par}"] = rust_extract(a, root, ncfg.uri, env, par)
            print(par, {k: round(v["edges_per_s"]) for k, v in ex.items()}, flush=True)
        recs = fake_recommendations(ncfg, dst_key)
        result["write"]["per_row_tx"] = per_row_write(
            ncfg, recs, dst_key, min(a.per_row, recs.num_rows)
        )
        result["write"]["graphrec_batched"] = batched_write(ncfg, recs, dst_key)
    seed = ex["seed_pandas"]["edges_per_s"]
    result["ratios"] = {
        k: {
            "vs_seed": v["edges_per_s"] / seed,
            "vs_skip_limit_same_p": v["edges_per_s"]
            / ex[f"skip_limit_p{k.rsplit('_p', 1)[1]}"]["edges_per_s"],
        }
        for k, v in ex.items()
        if k.startswith("graphrec")
    }
    result["ratios"]["write_batched_vs_per_row"] = (
        result["write"]["graphrec_batched"]["rows_per_s"]
        / result["write"]["per_row_tx"]["rows_per_s"]
    )
    import neo4j

    result["versions"] = {
        "neo4j_driver": neo4j.__version__,
        "neo4j_server": "5.26.0 (embedded)",
        **versions(),
    }
    save(result, f"neo4j-{a.graph}", a.out)


if __name__ == "__main__":
    main()
