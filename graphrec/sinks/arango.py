"""Recommendations written back to ArangoDB as edges, idempotently.

    Recommendation_Inferences: {_from: "User/1", _to: "Movie/5", rank, score, model, run_id}

Rows are grouped by user and written in batches of ``write.batch_size`` users. Each batch
is one stream transaction of two AQL queries, :data:`REMOVE` (those users' previous edges
of the same model) then :data:`INSERT` (the new k): two queries because one AQL query
cannot modify a collection twice, and AQL because bulk import is not documented as
transactional. A batch commits whole or not at all, so a rerun, or a rerun after an
interrupted write, ends with exactly k edges per user and model. A batch that fails with
a transient error (a write conflict, a lock timeout, an unavailable server) is retried.

Before the first batch every user and item id is resolved to exactly one document (by its
key attribute); otherwise the write is refused and nothing is written. The edge collection
is created (with a persistent index on ``_from, model``) when it does not exist; an
existing document collection of that name is refused, never changed.
"""

from __future__ import annotations

import signal
import time

import pyarrow as pa
import pyarrow.compute as pc

from graphrec.config import ArangoConfig
from graphrec.connectors.arango import LOOKUP, connect, server, translate
from graphrec.errors import ConfigError, DataError, GraphRecError, Interrupted, RunError
from graphrec.sinks.base import RecommendationSink, check_batch_size, user_batches

REMOVE = "FOR e IN @@c FILTER e._from IN @froms AND e.model == @model REMOVE e IN @@c"
"""A batch's users' previous recommendations of this model."""
INSERT = (
    "FOR r IN @rows INSERT {_from: r[0], _to: r[1], rank: r[2], score: r[3], model: @model, "
    "run_id: @run} INTO @@c"
)
"""A batch's new recommendations."""
CHECK_IDS = 20_000
TRANSIENT = {28, 1200, 1302, 503}  # locked, write conflict, lock timeout, unavailable
ATTEMPTS = 3


class ArangoSink(RecommendationSink):
    """Args: cfg: connection; user/item: (collection, key attribute) of the endpoints;
    collection: the edge collection written; model: the ``model`` attribute (reruns of the
    same model replace each other); run_id: this run; batch_size: users per transaction."""

    def __init__(
        self,
        cfg: ArangoConfig,
        user: tuple[str, str],
        item: tuple[str, str],
        collection: str,
        model: str,
        run_id: str,
        batch_size: int = 500,
    ) -> None:
        check_batch_size(batch_size)
        self.cfg, self.user, self.item, self.collection = cfg, user, item, collection
        self.model, self.run_id, self.batch_size = model, run_id, batch_size

    def _ensure_collection(self, db) -> None:
        have = {c["name"]: c for c in db.collections()}
        if self.collection in have:
            if have[self.collection]["type"] != "edge":
                raise ConfigError(
                    f"arango sink: {self.collection!r} is a document collection, not an edge "
                    "collection; name another one (write.collection)"
                )
        else:
            db.create_collection(self.collection, edge=True)
        db.collection(self.collection).add_index(
            {"type": "persistent", "fields": ["_from", "model"], "name": "graphrec_from_model"}
        )

    def _resolve(self, db, table: pa.Table) -> tuple[dict, dict]:
        """``{id: _id}`` for users and items; refuses an id with no document or several."""
        out = []
        for column, (coll, key), what in (("user_id", self.user, "user"),
                                          ("item_id", self.item, "item")):  # fmt: skip
            values = table.column(column)
            if values.null_count:
                raise DataError(
                    f"arango sink: {values.null_count} recommendations have no {column}"
                )
            ids = pc.unique(values).to_pylist()
            found: dict = {}
            ambiguous: list = []
            for lo in range(0, len(ids), CHECK_IDS):
                cur = db.aql.execute(
                    LOOKUP, bind_vars={"@c": coll, "k": key, "ids": ids[lo : lo + CHECK_IDS]}
                )
                for value, doc_id in cur:
                    if value in found:
                        ambiguous.append(value)
                    found[value] = doc_id
            missing = [i for i in ids if i not in found]
            if missing:
                raise DataError(
                    f"arango sink: {len(missing)} of {len(ids)} {what} ids match no document "
                    f"of {coll!r} by {key!r} at {server(self.cfg)} (e.g. "
                    f"{', '.join(map(repr, missing[:3]))}); nothing was written"
                )
            if ambiguous:
                raise DataError(
                    f"arango sink: {len(set(ambiguous))} {what} ids match more than one document "
                    f"of {coll!r} by {key!r} (e.g. {', '.join(map(repr, ambiguous[:3]))}); "
                    "nothing was written"
                )
            out.append(found)
        return out[0], out[1]

    def _batch(self, db, users: list[dict], users_id: dict, items_id: dict) -> int:
        froms = [users_id[u["id"]] for u in users]
        rows = [
            [users_id[u["id"]], items_id[r["item"]], r["rank"], r["score"]]
            for u in users for r in u["recs"]
        ]  # fmt: skip
        from arango.exceptions import ArangoServerError

        for attempt in range(ATTEMPTS):
            trx = db.begin_transaction(write=[self.collection])
            try:
                c, model = self.collection, self.model
                trx.aql.execute(REMOVE, bind_vars={"@c": c, "froms": froms, "model": model})
                binds = {"@c": c, "rows": rows, "model": model, "run": self.run_id}
                cur = trx.aql.execute(INSERT, bind_vars=binds)
                written = int(cur.statistics().get("modified", len(rows)))
                if written != len(rows):
                    raise DataError(
                        f"arango sink: a batch of {len(users)} users inserted {written} of "
                        f"{len(rows)} edges; this batch was rolled back"
                    )
                trx.commit_transaction()
                return written
            except BaseException as exc:
                _abort(trx)
                transient = isinstance(exc, ArangoServerError) and (
                    exc.error_code in TRANSIENT or exc.http_code == 503
                )
                if not transient or attempt == ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def _write(self, table: pa.Table) -> dict:
        t0 = time.perf_counter()
        table = table.sort_by([("user_id", "ascending"), ("rank", "ascending")])
        batches = list(user_batches(table, self.batch_size))
        written = done = 0
        try:
            with translate(self.cfg, "writing recommendations"):
                db = connect(self.cfg)
                self._ensure_collection(db)
                users_id, items_id = self._resolve(db, table)
                for users, _ in batches:
                    written += self._batch(db, users, users_id, items_id)
                    done += 1
        except (Interrupted, KeyboardInterrupt) as exc:
            stop = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
            stop.outcome = self._outcome(done, batches)
            if stop is exc:
                raise
            raise stop from None
        except GraphRecError as exc:
            if done:
                raise type(exc)(f"{exc}; {self._outcome(done, batches)}") from None
            raise
        if written != table.num_rows:
            raise RunError(f"arango sink wrote {written} of {table.num_rows} rows; rerun")
        seconds = time.perf_counter() - t0
        return {"rows": written, "seconds": seconds, "rows_per_s": written / max(seconds, 1e-9),
                "transactions": len(batches)}  # fmt: skip

    @staticmethod
    def _outcome(done: int, batches: list) -> str:
        if done == 0:
            return "nothing was written to arango; the previous recommendations are intact"
        if done == len(batches):
            return f"all {done} batches were written to arango"
        return (
            f"{done} of {len(batches)} batches were written to arango; rerun to finish: every "
            "user has either the previous or the new recommendations"
        )


def _abort(trx) -> None:
    """Abort ``trx``; never raises (it runs while another error passes)."""
    try:
        trx.abort_transaction()
    except Exception:  # noqa: BLE001 - already failing; the server also expires it
        pass
