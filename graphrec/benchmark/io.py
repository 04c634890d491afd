"""What the database I/O benchmarks share: one timed read of an edge type through a source."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor


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
