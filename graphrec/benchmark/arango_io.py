"""ArangoDB extraction and write-back throughput: graphrec against the usual ways, one server.

Against a real ArangoDB (``ARANGO_URL``, ``ARANGO_PASSWORD``, ``ARANGO_DATABASE``,
``ARANGO_USERNAME``) or, without ``ARANGO_URL``, against the protocol STAND-IN of
``tests/arango/standin.py`` (a source checkout), started in a process of its own. Against
the stand-in every number is a client-side cost (python-arango, JSON, Arrow) plus a Python
server's, never ArangoDB's; the JSON says which server it measured (``server``).

The graph (MovieLens, or ``graphrec synth``) is loaded with ``graphrec load`` into
collections named ``GraphrecBench*``; the run refuses to start if any of them exists, and
drops only what it created. Then, on the same server in one run:

extraction of the rating edges (edges/s)
  (a) tutorial   one cursor ``FOR doc IN @@c RETURN doc``, documents into Python lists, then
      pandas (ArangoDB's PyG movie-recommendation tutorial)
  (b) graphrec   ``ArangoSource`` at P = 1, 2, 4 key-range partitions, stream cursors into
      Arrow (endpoints resolved and checked, attributes typed)
  adbpyg-adapter is not measured where it does not install: 1.1.4 pins python-arango~=7.6
  and needs torch-sparse and torch-scatter (source builds); its way is one stream cursor per
  collection, like (a).
write-back of top-k recommendations (edges/s)
  (a) one document per request   (b) graphrec's ``ArangoSink`` (a stream transaction per
      batch of users), then the same write again (a rerun replaces)

    python -m graphrec.benchmark.arango_io                       # the stand-in
    ARANGO_URL=http://host:8529 ARANGO_PASSWORD=... python -m graphrec.benchmark.arango_io
    python -m graphrec.benchmark.arango_io --graph synth --edges 1e6

Run from the repository root (it reads ``configs/`` and ``data/``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import pyarrow as pa

from graphrec.benchmark.io import SYNTH_AS_MOVIELENS, same_items_for_all, timed_edge_read
from graphrec.benchmark.results import machine, save, versions
from graphrec.config import load_config

TUTORIAL = "FOR doc IN @@c RETURN doc"
"""The tutorial's export: every document of one collection through one cursor."""
PREFIX = "GraphrecBench"
COLLECTIONS = {"user": f"{PREFIX}Users", "movie": f"{PREFIX}Movie", "rates": f"{PREFIX}Ratings"}
RECS, ROWS, GRAPH = f"{PREFIX}Recs", f"{PREFIX}Rows", "graphrec_bench"
STANDIN = "stand-in (tests/arango/standin.py, a Python process): not ArangoDB; client-side costs"


def job_config(graph: str, root: str, url: str, database: str, env: str, parallelism: int):
    over = [
        f"extract.arango.url={url}",
        f"extract.arango.database={database}",
        f"extract.arango.username={os.environ.get('ARANGO_USERNAME', 'root')}",
        f"extract.arango.password_env={env}",
        f"extract.parallelism={parallelism}",
        f"extract.root={root}",
        f"extract.nodes.user.label={COLLECTIONS['user']}",
        f"extract.nodes.movie.label={COLLECTIONS['movie']}",
        f"extract.edges.rates.type={COLLECTIONS['rates']}",
    ]
    if graph == "synth":  # the schema names of MovieLens where synth has others
        over += SYNTH_AS_MOVIELENS
    return load_config("configs/movielens-arango.yaml", over)


def tutorial_extract(db) -> dict:
    import pandas as pd

    t0 = time.perf_counter()
    docs = list(db.aql.execute(TUTORIAL, bind_vars={"@c": COLLECTIONS["rates"]}))
    frame = pd.DataFrame(docs)
    sec = time.perf_counter() - t0
    return {"edges": len(frame), "seconds": sec, "edges_per_s": len(frame) / sec}


def per_document_write(db, table: pa.Table, rows: int) -> dict:
    if not db.has_collection(ROWS):
        db.create_collection(ROWS, edge=True)
    coll = db.collection(ROWS)
    data = table.slice(0, rows).to_pylist()
    t0 = time.perf_counter()
    for r in data:
        coll.insert(
            {
                "_from": f"{COLLECTIONS['user']}/{r['user_id']}",
                "_to": f"{COLLECTIONS['movie']}/{r['item_id']}",
                "rank": r["rank"],
                "score": r["score"],
            }
        )
    sec = time.perf_counter() - t0
    return {"rows": rows, "seconds": sec, "rows_per_s": rows / sec}


def recommendations(tables, k: int = 10) -> pa.Table:
    users = tables.nodes["user"].column("id").to_pylist()
    items = tables.nodes["movie"].column("id").slice(0, k).to_pylist()
    return same_items_for_all(users, items)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def standin_server(password: str, database: str):
    """The stand-in in a process of its own (so it does not share the client's GIL)."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.arango.standin",
            "--port",
            str(port),
            "--database",
            database,
        ],  # fmt: skip
        env={**os.environ, "ARANGO_PASSWORD": password},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        if "STAND-IN" not in line:
            raise SystemExit(
                "arango_io: the stand-in did not start (tests/arango/standin.py is part of a "
                "source checkout; run from the repository root, or set ARANGO_URL)"
            )
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _refuse_existing(db) -> None:
    names = [*COLLECTIONS.values(), RECS, ROWS]
    taken = [n for n in names if db.has_collection(n)] + ([GRAPH] if db.has_graph(GRAPH) else [])
    if taken:
        raise SystemExit(
            f"arango_io: {', '.join(taken)} already exist in this database; the benchmark "
            "writes only into collections it creates (drop them, or use another database)"
        )


def _drop_created(db) -> None:
    if db.has_graph(GRAPH):
        db.delete_graph(GRAPH)
    for name in [*COLLECTIONS.values(), RECS, ROWS]:
        if db.has_collection(name):
            db.delete_collection(name)


def measure(a, url: str, database: str, env: str, server: str) -> dict:
    from graphrec.connectors.arango import connect
    from graphrec.loaders import extract
    from graphrec.loaders.arango import ArangoSource
    from graphrec.loaders.arango_load import load_graph
    from graphrec.loaders.files import FileSource
    from graphrec.sinks.arango import ArangoSink

    root = a.root
    if a.graph == "synth":
        root = str(Path(tempfile.mkdtemp(prefix="graphrec-bench-")) / "synth")
        from graphrec.synth import synth_graph

        synth_graph(root, int(a.edges), progress=False)
    cfg = job_config(a.graph, root, url, database, env, 1)
    acfg = cfg.extract.arango
    db = connect(acfg)
    _refuse_existing(db)
    result: dict = {"benchmark": "arango", "graph": a.graph, "server": server,
                    "machine": machine(), "extract": {}, "write": {}}  # fmt: skip
    try:
        tables = extract(
            FileSource(dataclasses.replace(cfg.extract, source="files")), progress=False
        )
        result["load"] = load_graph(tables, cfg.extract, acfg, GRAPH)
        result["edges"] = tables.edges["rates"].num_rows
        print("loaded", result["load"], flush=True)
        ex = result["extract"]
        ex["tutorial_pandas"] = tutorial_extract(db)
        print("tutorial", ex["tutorial_pandas"], flush=True)
        for par in [int(x) for x in a.partitions.split(",")]:
            pcfg = job_config(a.graph, root, url, database, env, par)
            ex[f"graphrec_p{par}"] = timed_edge_read(ArangoSource(pcfg.extract), "rates")
            print(par, {k: round(v["edges_per_s"]) for k, v in ex.items()}, flush=True)
        recs = recommendations(tables)
        result["recommendations"] = recs.num_rows
        wr = result["write"]
        wr["per_document"] = per_document_write(db, recs, min(a.per_document, recs.num_rows))
        sink = ArangoSink(acfg, (COLLECTIONS["user"], "userId"), (COLLECTIONS["movie"],
                          cfg.extract.nodes["movie"].id), RECS, "bench", "b1")  # fmt: skip
        wr["graphrec_batched"] = sink.write(recs)
        wr["graphrec_batched_rerun"] = sink.write(recs)
        left = db.collection(RECS).count()
        if left != recs.num_rows:  # the rerun replaced, never duplicated
            raise SystemExit(f"arango_io: {left} recommendation edges after the rerun, "
                             f"want {recs.num_rows}")  # fmt: skip
        print("write", {k: round(v["rows_per_s"]) for k, v in wr.items()}, flush=True)
        result["versions"] = {"server": db.version(), **versions()}
    finally:
        _drop_created(db)
    tut = ex["tutorial_pandas"]["edges_per_s"]
    ratios = {
        f"{k}_vs_tutorial": v["edges_per_s"] / tut for k, v in ex.items() if k != "tutorial_pandas"
    }
    per_doc = wr["per_document"]["rows_per_s"]
    ratios["write_batched_vs_per_document"] = wr["graphrec_batched"]["rows_per_s"] / per_doc
    result["ratios"] = ratios
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", choices=["movielens", "synth"], default="movielens")
    p.add_argument("--edges", type=float, default=1e6)
    p.add_argument("--root", default="data/movielens-small", help="the MovieLens files")
    p.add_argument("--partitions", default="1,2,4")
    p.add_argument("--per-document", type=int, default=2000, help="rows written one by one")
    p.add_argument("--out", default="bench/results")
    a = p.parse_args()
    url = os.environ.get("ARANGO_URL")
    database = os.environ.get("ARANGO_DATABASE", "_system")
    if url:
        if not os.environ.get("ARANGO_PASSWORD"):
            raise SystemExit("arango_io: ARANGO_URL is set; set ARANGO_PASSWORD too")
        result = measure(a, url, database, "ARANGO_PASSWORD", "ArangoDB at ARANGO_URL")
    else:
        env = "GRAPHREC_BENCH_ARANGO_PASSWORD"
        os.environ[env] = secrets.token_urlsafe(12)
        with standin_server(os.environ[env], database) as standin:
            result = measure(a, standin, database, env, STANDIN)
    result["versions"]["python_arango"] = metadata.version("python-arango")
    save(result, f"arango-{a.graph}", a.out)


if __name__ == "__main__":
    main()
