"""The sink interface: where recommendations are written back.

A sink takes one Arrow table with columns ``user_id, item_id, rank, score`` (original ids)
and writes it so that a rerun replaces, never duplicates, and a failure leaves the previous
result intact. :meth:`RecommendationSink.write` checks the table, then calls the backend's
``_write``. Implementations: Parquet (``sinks/parquet.py``) and Neo4j (``sinks/neo4j.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa
import pyarrow.compute as pc

from graphrec.errors import ConfigError, DataError

COLUMNS = ("user_id", "item_id", "rank", "score")


class RecommendationSink(ABC):
    """Writes a table of top-k recommendations."""

    def write(self, table: pa.Table) -> dict:
        """Check ``table`` and write it; returns stats (rows, seconds, rows_per_s)."""
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise DataError(f"recommendations lack column(s) {', '.join(missing)}")
        if table.num_rows == 0:
            raise DataError("no recommendations to write (empty table)")
        score = table.column("score")
        finite = pc.is_finite(score)
        if score.null_count or not pc.all(finite).as_py():
            bad = pc.sum(pc.invert(pc.fill_null(finite, False))).as_py()
            raise DataError(f"{bad} recommendation scores are not finite numbers: nothing written")
        return self._write(table.select(list(COLUMNS)))

    @abstractmethod
    def _write(self, table: pa.Table) -> dict:
        """Write the checked table."""


def user_batches(table: pa.Table, batch_size: int):
    """``(users, rows)`` per batch of ``batch_size`` users of ``table`` (sorted by user):
    each user as ``{id, recs: [{item, rank, score}]}``; a user's rows never split."""
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


def check_batch_size(batch_size) -> int:
    """``write.batch_size`` of a database sink: a whole number of users >= 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(
            f"write.batch_size={batch_size!r}: must be a whole number >= 1 (users per transaction)"
        )
    return batch_size
