"""CSV and Parquet files as a graph source: the embedded default, no server needed.

Each node or edge type names a file or glob under ``extract.root``. Partitions are files,
and for Parquet each row group of a file, so a directory of part files reads in parallel.
CSV is streamed with Arrow's block reader; declared properties are parsed to their declared
types while reading, and a value that does not parse is located by row on a second look.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from graphrec.config import EdgeSpec, NodeSpec
from graphrec.errors import DataError
from graphrec.loaders.base import ARROW_TYPES, GraphSource, Kind, Partition


class FileSource(GraphSource):
    """Reads node and edge tables from CSV or Parquet files under ``extract.root``."""

    def _files(self, kind: Kind, name: str, spec: NodeSpec | EdgeSpec) -> list[Path]:
        if spec.file is None:
            raise DataError(f"extract.{kind}s.{name}: no file given")
        pattern = os.path.join(self.cfg.root, spec.file)
        files = sorted(Path(p) for p in glob.glob(pattern))
        if not files:
            raise DataError(f"extract.{kind}s.{name}: no file matches {pattern!r}")
        return files

    def _partitions(self, kind: Kind, name: str, spec: NodeSpec | EdgeSpec) -> list[Partition]:
        parts: list[Partition] = []
        for path in self._files(kind, name, spec):
            if path.stat().st_size == 0:
                raise DataError(f"{path}: file is empty")
            if path.suffix == ".parquet":
                try:
                    groups = pq.ParquetFile(path).num_row_groups
                except pa.ArrowInvalid as exc:
                    raise DataError(f"{path}: not a Parquet file ({exc})") from None
                for g in range(groups):
                    loc = f"{path} (row group {g})" if groups > 1 else str(path)
                    parts.append(Partition(kind, name, len(parts), loc, (str(path), g)))
            else:
                parts.append(Partition(kind, name, len(parts), str(path), (str(path), None)))
        return parts

    def _read(
        self, part: Partition, spec: NodeSpec | EdgeSpec, columns: list[str]
    ) -> Iterator[pa.RecordBatch]:
        path, group = part.payload
        if group is not None:
            pf = pq.ParquetFile(path)
            have = pf.schema_arrow.names
            present = [c for c in columns if c in have]
            if len(present) < len(columns):
                yield _header_only(have)  # the base class names the missing column
                return
            yield from pf.iter_batches(self.cfg.batch_rows, row_groups=[group], columns=present)
            return
        header = _csv_header(path)
        missing = [c for c in columns if c not in header]
        if missing:
            yield _header_only(header)  # the base class names the missing column
            return
        types = {c: ARROW_TYPES[spec.properties[c]] for c in columns if c in spec.properties}
        try:
            yield from self._stream_csv(path, columns, types)
        except pa.ArrowInvalid:
            # A value did not parse. Re-read as text so the base class names its row.
            yield from self._stream_csv(path, columns, {c: pa.string() for c in columns})

    def _stream_csv(
        self, path: str, columns: list[str], types: dict[str, pa.DataType]
    ) -> Iterator[pa.RecordBatch]:
        # block_size bounds memory; Arrow sizes blocks in bytes, ~40 bytes a row is typical.
        read = pcsv.ReadOptions(block_size=max(1 << 20, self.cfg.batch_rows * 40))
        convert = pcsv.ConvertOptions(include_columns=columns, column_types=types)
        try:
            reader = pcsv.open_csv(path, read_options=read, convert_options=convert)
        except pa.ArrowInvalid as exc:
            if "Empty CSV" in str(exc):
                raise DataError(f"{path}: file is empty") from None
            raise
        yield from reader

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for kind, table in (("node", self.cfg.nodes), ("edge", self.cfg.edges)):
            for name, spec in table.items():
                if spec.file is None:
                    continue
                for path in self._files(kind, name, spec):
                    st = path.stat()
                    h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()


def _csv_header(path: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        row = next(csv.reader(f), None)
    if row is None:
        raise DataError(f"{path}: file is empty")
    return row


def _header_only(names: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], pa.string()) for _ in names], names=names)
