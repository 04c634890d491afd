"""Recommendations written back to Neo4j as relationships, idempotently.

    (:User)-[:RECOMMENDED {rank, score, model, run_id}]->(:Movie)

Rows are grouped by user and written in batches of ``write.batch_size`` users; one
transaction per batch first deletes those users' previous recommendations from the same
model, then creates the new ones. A user's k rows are never split across transactions, so
a rerun, or a rerun after a write interrupted half-way, ends with exactly k relationships
per user and model. Transient errors (deadlocks, leader changes) are retried by the driver's
managed transactions. Endpoints are matched by key property through an index, created if
missing.

Before the first batch, every user and item id of the table is checked to match exactly one
node; otherwise the write is refused and nothing is written. A batch that still creates
fewer relationships than it has rows (a node deleted meanwhile) is rolled back with an
error. An error or interrupt after some batches says which were written (``outcome``).
"""

from __future__ import annotations

import signal
import time

import pyarrow as pa
import pyarrow.compute as pc

from graphrec.config import Neo4jConfig
from graphrec.connectors.neo4j import (
    abandon,
    close_quietly,
    connect,
    q,
    server,
    translate,
)
from graphrec.errors import DataError, GraphRecError, Interrupted, RunError
from graphrec.sinks.base import RecommendationSink, check_batch_size, user_batches

CHECK_IDS = 20_000  # ids per query while checking that every endpoint exists


class Neo4jSink(RecommendationSink):
    """Args: cfg: connection; user/item: (label, key property) of the two endpoint types;
    relationship: type to write; model: value of the ``model`` property (reruns of the same
    model replace each other); run_id: this run; batch_size: users per transaction.

    Every refusal comes before the first write: names are checked here, and ``write`` checks
    that each user and item of the table matches exactly one node before it writes a batch.
    An interrupt (:class:`~graphrec.errors.Interrupted`, or ``KeyboardInterrupt``, which
    becomes one) leaves with ``outcome`` saying which batches were written."""

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
        check_batch_size(batch_size)
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
            session.run(
                f"CREATE INDEX {q(name)} IF NOT EXISTS FOR (n:{label}) ON (n.{key})"
            ).consume()

    def check_endpoints(self, session, table: pa.Table) -> None:
        """Refuse, before anything is written, a user or item that matches no node or
        more than one (the write would leave a gap, or write a user's k twice)."""
        for column, label, key, what in (
            ("user_id", self.user_label, self.user_key, "user"),
            ("item_id", self.item_label, self.item_key, "item"),
        ):
            values = table.column(column)
            if values.null_count:
                raise DataError(f"neo4j sink: {values.null_count} recommendations have no {column}")
            ids = pc.unique(values).to_pylist()
            query = (
                f"UNWIND $ids AS id OPTIONAL MATCH (n:{label} {{{key}: id}}) "
                "WITH id, count(n) AS c WHERE c <> 1 "
                "RETURN sum(CASE c WHEN 0 THEN 1 ELSE 0 END) AS missing, "
                "sum(CASE WHEN c > 1 THEN 1 ELSE 0 END) AS ambiguous, "
                "collect(CASE c WHEN 0 THEN id END)[..3] AS missing_ids, "
                "collect(CASE WHEN c > 1 THEN id END)[..3] AS ambiguous_ids"
            )
            missing = ambiguous = 0
            missing_ids: list = []
            ambiguous_ids: list = []
            for lo in range(0, len(ids), CHECK_IDS):
                rec = session.run(query, ids=ids[lo : lo + CHECK_IDS]).single()
                missing += rec["missing"] or 0
                ambiguous += rec["ambiguous"] or 0
                missing_ids += rec["missing_ids"] or []
                ambiguous_ids += rec["ambiguous_ids"] or []
            node = f"(:{label.strip('`')} {{{key.strip('`')}}})"
            if missing:
                hint = ""
                if missing == len(ids):  # none at all: often keys of another type (1 vs '1')
                    hint = f"; none matched: are the node keys of another type than {values.type}?"
                raise DataError(
                    f"neo4j sink: {missing} of {len(ids)} {what} ids found no matching {node} "
                    f"node in neo4j at {server(self.cfg)} (e.g. "
                    f"{', '.join(map(repr, missing_ids[:3]))}){hint}; nothing was written"
                )
            if ambiguous:
                raise DataError(
                    f"neo4j sink: {ambiguous} {what} ids match more than one {node} node in "
                    f"neo4j at {server(self.cfg)} (e.g. "
                    f"{', '.join(map(repr, ambiguous_ids[:3]))}); nothing was written"
                )

    def _write(self, table: pa.Table) -> dict:
        t0 = time.perf_counter()
        table = table.sort_by([("user_id", "ascending"), ("rank", "ascending")])
        batches = list(user_batches(table, self.batch_size))
        query = self._query()

        def write_batch(tx, users: list[dict], expected: int) -> int:
            created = tx.run(query, users=users, model=self.model, run_id=self.run_id).single()
            n = created["created"] if created else 0
            if n != expected:  # roll back: a user or item deleted since the check
                raise DataError(
                    f"neo4j sink: a batch of {len(users)} users created {n} relationships for "
                    f"{expected} recommendations (a user or item no longer matches exactly one "
                    f":{self.user_label.strip('`')} or :{self.item_label.strip('`')} node); "
                    "this batch was rolled back"
                )
            return n

        driver = session = None
        written = done = 0
        try:
            with translate(self.cfg, "writing recommendations"):
                driver = connect(self.cfg)
                session = driver.session(database=self.cfg.database)
                self.ensure_indexes(session)
                session.run("CALL db.awaitIndexes(300)").consume()
                self.check_endpoints(session, table)
                for users, expected in batches:
                    written += session.execute_write(write_batch, users, expected)
                    done += 1
        except (Interrupted, KeyboardInterrupt) as exc:
            abandon(session)
            session = None
            stop = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
            stop.outcome = self._outcome(done, batches)
            if stop is exc:
                raise
            raise stop from None
        except GraphRecError as exc:
            if done:
                raise type(exc)(f"{exc}; {self._outcome(done, batches)}") from None
            raise
        finally:
            close_quietly(session)
            close_quietly(driver)
        if written != table.num_rows:
            raise RunError(
                f"neo4j sink wrote {written} of {table.num_rows} recommendation rows to "
                f"{server(self.cfg)}; rerun to write them all"
            )
        seconds = time.perf_counter() - t0
        return {
            "rows": written,
            "seconds": seconds,
            "rows_per_s": written / max(seconds, 1e-9),
            "transactions": len(batches),
        }

    @staticmethod
    def _outcome(done: int, batches: list) -> str:
        """What an interrupted or failed write left behind in Neo4j."""
        if done == 0:
            return "nothing was written to neo4j; the previous recommendations are intact"
        first, last = batches[0][0][0]["id"], batches[done - 1][0][-1]["id"]
        if done == len(batches):
            return f"all {done} batches were written to neo4j (users {first}-{last})"
        return (
            f"{done} of {len(batches)} batches were written to neo4j (users {first}-{last}); "
            "rerun to finish: every user has either the previous or the new recommendations"
        )
