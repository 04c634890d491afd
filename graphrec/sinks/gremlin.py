"""Recommendations written back to a Gremlin graph as edges, idempotently.

    (user)-[RECOMMENDED {rank, score, model, run_id}]->(item)

Rows are grouped by user and written in batches of ``write.batch_size`` users, each batch
one request (bytecode): the batch's users' previous ``RECOMMENDED`` edges of the same
``model`` are dropped, then the new k per user are added (``mergeE`` over the injected
edges: constant traversal depth however large the batch). On a graph with transactions
(JanusGraph, Neptune: a sessionless request is one transaction) a batch commits whole or
not at all; on TinkerGraph, which has none, a write killed inside a batch can leave that
batch's users part-written, and the rerun replaces them: every rerun ends with exactly k
edges per user and model. Before the first batch every user and item id is resolved to
exactly one vertex by its key property; otherwise nothing is written.
"""

from __future__ import annotations

import time

import pyarrow as pa

from graphrec.config import GremlinConfig
from graphrec.connectors.gremlin import Gremlin, vertex_ids
from graphrec.errors import DataError
from graphrec.sinks.base import RecommendationSink, check_batch_size, user_batches


class GremlinSink(RecommendationSink):
    """Args: cfg: connection; user/item: (vertex label, key property) of the endpoints;
    relationship: the edge label; model: the ``model`` property (reruns of the same model
    replace each other); run_id: this run; batch_size: users per request."""

    def __init__(
        self,
        cfg: GremlinConfig,
        user: tuple[str, str],
        item: tuple[str, str],
        relationship: str,
        model: str,
        run_id: str,
        batch_size: int = 500,
    ) -> None:
        self.cfg, self.user, self.item = cfg, user, item
        self.relationship, self.model, self.run_id = relationship, model, run_id
        self.batch_size = check_batch_size(batch_size)

    def _write(self, table: pa.Table) -> dict:
        from gremlin_python.process.graph_traversal import __
        from gremlin_python.process.traversal import Direction, T

        t0 = time.perf_counter()
        conn = Gremlin(self.cfg)
        try:
            users = sorted(set(table.column("user_id").to_pylist()))
            items = sorted(set(table.column("item_id").to_pylist()))
            uid = vertex_ids(conn, *self.user, users)
            iid = vertex_ids(conn, *self.item, items)
            for label, wanted, found in ((self.user, users, uid), (self.item, items, iid)):
                missing = [v for v in wanted if v not in found]
                if missing:
                    raise DataError(
                        f"gremlin: no {label[0]} vertex has {label[1]} {missing[0]!r} "
                        f"({len(missing)} missing); nothing was written"
                    )
            rel, written, batches = self.relationship, 0, 0
            for group, rows in user_batches(table.sort_by("user_id"), self.batch_size):
                users_v = [uid[u["id"]] for u in group]
                edges = [
                    {T.label: rel, Direction.OUT: uid[u["id"]], Direction.IN: iid[r["item"]],
                     "rank": r["rank"], "score": float(r["score"]), "model": self.model,
                     "run_id": self.run_id}
                    for u in group for r in u["recs"]
                ]  # fmt: skip
                t = (
                    conn.g.inject(edges)
                    .side_effect(__.V(*users_v).out_e(rel).has("model", self.model).drop())
                    .unfold().merge_e()
                )  # fmt: skip
                conn.run(t, f"writing batch {batches + 1}")
                written += rows
                batches += 1
        finally:
            conn.close()
        seconds = time.perf_counter() - t0
        return {
            "rows": written,
            "batches": batches,
            "seconds": seconds,
            "rows_per_s": written / max(seconds, 1e-9),
        }
