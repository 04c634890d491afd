"""Recommendations as one Parquet file, written to a temporary name and renamed into place:
a crash never leaves a half-written file, and a rerun replaces the file."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from graphrec.sinks.base import RecommendationSink


class ParquetSink(RecommendationSink):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _write(self, table: pa.Table) -> dict:
        t0 = time.perf_counter()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a failed write leaves nothing half-written behind
            raise
        seconds = time.perf_counter() - t0
        return {"rows": table.num_rows, "seconds": seconds, "rows_per_s": table.num_rows / seconds}
