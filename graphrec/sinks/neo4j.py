"""Recommendations written back to Neo4j as relationships, idempotently.

    (:User)-[:RECOMMENDED {rank, score, model, run_id}]->(:Movie)

Rows are grouped by user and written in batches of ``write.batch_size`` users; one
transaction per batch first deletes those users' previous recommendations from the same
model, then creates the new ones. A user's k rows are never split across transactions, so
a rerun, or a rerun after a write interrupted half-way, ends with exactly k relationships
per user and model. Transient errors (deadlocks, leader changes) are retried by the driver's
managed transactions. Endpoints are matched by key property through an index, created if
missing. A batch whose users or items are not all found is rolled back with an error.
"""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc

from graphrec.config import Neo4jConfig
from graphrec.connectors.neo4j import connect, q, translate
from graphrec.errors import DataError
from graphrec.sinks.base import RecommendationSink


class Neo4jSink(RecommendationSink):
    """Args: cfg: connection; user/item: (label, key property) of the two endpoint types;
    relationship: type to write; model: value of the ``model`` property (reruns of the same
    model replace each other); run_id: this run; batch_size: users per transaction."""

    def __init__(
        self,
        cfg: Neo4jConfig,
        user: tuple[str, str],
        item: tuple[str, str],
        relationship: str,
        model: str,
        run_id: str,
        batch_size: int = 500,
    ) -> None:
        self.cfg = cfg
        self.user_label, self.user_key = q(user[0], "label"), q(user[1], "property")
        self.item_label, self.item_key = q(item[0], "label"), q(item[1], "property")
        self.rel = q(relationship, "relationship type")
        self.model, self.run_id, self.batch_size = model, run_id, batch_size

    def _query(self) -> str:
        return (
            f"UNWIND $users AS u MATCH (a:{self.user_label} {{{self.user_key}: u.id}}) "
            f"OPTIONAL MATCH (a)-[old:{self.rel} {{model: $model}}]->() DELETE old "
            "WITH DISTINCT a, u UNWIND u.recs AS rec "
            f"MATCH (b:{self.item_label} {{{self.item_key}: rec.item}}) "
            f"CREATE (a)-[:{self.rel} {{rank: rec.rank, score: rec.score, model: $model, "
            "run_id: $run_id}]->(b) RETURN count(*) AS created"
        )

    def ensure_indexes(self, session) -> None:
        for label, key in ((self.user_label, self.user_key), (self.item_label, self.item_key)):
            name = f"graphrec_{label.strip('`')}_{key.strip('`')}"
            session.run(f"CREATE INDEX {q(name)} IF NOT EXISTS FOR (n:{label}) ON (n.{key})")

    def _write(self, table: pa.Table) -> dict:
        t0 = time.perf_counter()
        table = table.sort_by([("user_id", "ascending"), ("rank", "ascending")])
        batches = list(_user_batches(table, self.batch_size))
        query = self._query()

        def write_batch(tx, users: list[dict], expected: int) -> int:
            created = tx.run(query, users=users, model=self.model, run_id=self.run_id).single()
            n = created["created"] if created else 0
            if n != expected:  # roll back: a missing user or item would leave a gap
                raise DataError(
                    f"neo4j sink: {expected - n} of {expected} recommendations found no "
                    f"matching {self.user_label}/{self.item_label} node; nothing of this "
                    "batch was written"
                )
            return n

        driver = connect(self.cfg)
        written = 0
        try:
            with translate(self.cfg), driver.session(database=self.cfg.database) as session:
                self.ensure_indexes(session)
                session.run("CALL db.awaitIndexes(300)").consume()
                for users, expected in batches:
                    written += session.execute_write(write_batch, users, expected)
        finally:
            driver.close()
        seconds = time.perf_counter() - t0
        return {
            "rows": written,
            "seconds": seconds,
            "rows_per_s": written / seconds,
            "transactions": len(batches),
        }


def _user_batches(table: pa.Table, batch_size: int):
    """``(users, rows)`` per batch: each user as ``{id, recs: [{item, rank, score}]}``."""
    users = table.column("user_id").combine_chunks()
    starts = [0]
    change = pc.not_equal(users[1:], users[:-1]).to_numpy(zero_copy_only=False)
    starts += [i + 1 for i in change.nonzero()[0].tolist()]
    starts.append(len(users))
    items = table.column("item_id").to_pylist()
    ranks = table.column("rank").to_pylist()
    scores = table.column("score").to_pylist()
    ids = users.to_pylist()
    for b in range(0, len(starts) - 1, batch_size):
        group = []
        first, last = starts[b], starts[min(b + batch_size, len(starts) - 1)]
        for u in range(b, min(b + batch_size, len(starts) - 1)):
            lo, hi = starts[u], starts[u + 1]
            group.append(
                {
                    "id": ids[lo],
                    "recs": [
                        {"item": items[j], "rank": ranks[j], "score": scores[j]}
                        for j in range(lo, hi)
                    ],
                }
            )
        yield group, last - first
