"""What the database I/O benchmarks share: a synth graph under MovieLens names, one timed
read of an edge type through a source, a recommendation table to write."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

SYNTH_AS_MOVIELENS = [
    "extract.nodes.movie.id=itemId",
    "extract.nodes.movie.file=items.parquet",
    "extract.nodes.movie.properties={title: string, categories: string}",
    "extract.nodes.user.file=users.parquet",
    "extract.edges.rates.dst_id=itemId",
    "extract.edges.rates.file=ratings.parquet",
    "build.features.movie=[{property: categories, kind: multi_hot}]",
]
"""Overrides that read a ``graphrec synth`` graph with a MovieLens config's schema names."""


def timed_edge_read(source, edge: str) -> dict:
    """Read every partition of ``edge`` concurrently (as ``graphrec run`` does); edges/s."""
    try:
        t0 = time.perf_counter()
        parts = source.partitions("edge", edge)
        with ThreadPoolExecutor(len(parts)) as pool:
            rows = sum(pool.map(lambda p: sum(b.num_rows for b in source.read(p)), parts))
        s = time.perf_counter() - t0
    finally:
        source.close()
    return {"edges": rows, "seconds": s, "edges_per_s": rows / s}


def same_items_for_all(users: list, items: list) -> pa.Table:
    """A recommendation table to write: every user gets ``items`` at ranks 1..k."""
    k, n = len(items), len(users)
    return pa.table(
        {
            "user_id": [u for u in users for _ in range(k)],
            "item_id": items * n,
            "rank": list(range(1, k + 1)) * n,
            "score": [1.0] * (n * k),
        }
    )
