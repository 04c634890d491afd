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

from graphrec.errors import DataError

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
