"""CSV and Parquet files as a graph source: the embedded default, no server needed.

Each node or edge type names a file or glob under ``extract.root``. Partitions are files,
and for Parquet each row group of a file, so a directory of part files reads in parallel.
CSV is streamed with Arrow's block reader; keys and declared properties are parsed to their
declared types while reading, and a value that does not parse is located by row on a second
look. ``NaN`` in a CSV number column is read as NaN (and refused), not as a missing value;
an empty field, ``NA`` or ``NULL`` is missing. A file that cannot be read (a folder, no
permission, a row with the wrong number of fields, bytes that are not UTF-8, a corrupt or
truncated Parquet file) is one :class:`~graphrec.errors.DataError` naming the file.
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
from graphrec.loaders.base import READ_FAULTS, GraphSource, Kind, Partition, first_line

# Arrow's default null markers less the NaN spellings: "NaN" in a float column is NaN, so
# the finite check refuses it instead of it passing as a missing value.
CSV_NULLS = ["", "#N/A", "#N/A N/A", "#NA", "N/A", "NA", "NULL", "n/a", "null"]


class FileSource(GraphSource):
    """Reads node and edge tables from CSV or Parquet files under ``extract.root``."""

    def _files(self, kind: Kind, name: str, spec: NodeSpec | EdgeSpec) -> list[Path]:
        if spec.file is None:
            raise DataError(f"extract.{kind}s.{name}: no file given")
        if not os.path.isdir(self.cfg.root):
            what = "is not a folder" if os.path.exists(self.cfg.root) else "does not exist"
            raise DataError(f"extract.root {self.cfg.root!r} {what}")
        pattern = os.path.join(self.cfg.root, spec.file)
        files = sorted(Path(p) for p in glob.glob(pattern))
        if not files:
            raise DataError(f"extract.{kind}s.{name}: no file matches {pattern!r}")
        for path in files:
            if path.is_dir():
                raise DataError(
                    f"{path}: is a folder, not a file (extract.{kind}s.{name}.file; for the "
                    f"files in it give a glob such as '{spec.file.rstrip('/')}/*')"
                )
        return files

    def _partitions(self, kind: Kind, name: str, spec: NodeSpec | EdgeSpec) -> list[Partition]:
        parts: list[Partition] = []
        for path in self._files(kind, name, spec):
            try:
                size = path.stat().st_size
            except OSError as exc:  # a broken link, a file gone meanwhile
                raise DataError(f"{path}: {first_line(exc)}") from None
            if size == 0:
                raise DataError(f"{path}: file is empty")
            if path.suffix == ".parquet":
                try:
                    groups = pq.ParquetFile(path).num_row_groups
                except READ_FAULTS as exc:
                    raise DataError(
                        f"{path}: not a readable Parquet file ({first_line(exc)})"
                    ) from None
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
            pf = pq.ParquetFile(path, page_checksum_verification=True)
            have = pf.schema_arrow.names
            present = [c for c in columns if c in have]
            if len(present) < len(columns):
                yield _header_only(have)  # the base class names the missing column
                return
            try:
                yield from pf.iter_batches(self.cfg.batch_rows, row_groups=[group], columns=present)
            except READ_FAULTS as exc:
                raise DataError(
                    f"{part.location}: corrupt Parquet data ({first_line(exc).rstrip(': ')})"
                ) from None
            return
        header = _csv_header(path)
        missing = [c for c in columns if c not in header]
        if missing:
            yield _header_only(header)  # the base class names the missing column
            return
        targets = self.target_schema(part.kind, spec)
        types = dict(zip(columns, targets.types, strict=True))
        done = 0  # rows already passed on, if the typed read fails part way
        try:
            try:
                for batch in self._stream_csv(path, columns, types):
                    yield batch
                    done += batch.num_rows
            except pa.ArrowInvalid:
                # A value did not parse. Re-read as text, from the first row not yet passed
                # on, so the base class names its row.
                for batch in self._stream_csv(path, columns, {c: pa.string() for c in columns}):
                    skip = min(done, batch.num_rows)
                    done -= skip
                    if skip < batch.num_rows:
                        yield batch.slice(skip)
        except pa.ArrowInvalid as exc:
            raise _csv_fault(path, exc) from None

    def _stream_csv(
        self, path: str, columns: list[str], types: dict[str, pa.DataType]
    ) -> Iterator[pa.RecordBatch]:
        # block_size bounds memory; Arrow sizes blocks in bytes, ~40 bytes a row is typical.
        read = pcsv.ReadOptions(block_size=max(1 << 20, self.cfg.batch_rows * 40))
        convert = pcsv.ConvertOptions(
            include_columns=columns, column_types=types, null_values=CSV_NULLS
        )
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
                    try:
                        st = path.stat()
                    except OSError as exc:  # a broken link, a file gone meanwhile
                        raise DataError(f"{path}: {first_line(exc)}") from None
                    h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()


def _csv_header(path: str) -> list[str]:
    with open(path, "rb") as f:
        first = f.readline()
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}, line 1: {_not_utf8(first, exc)}") from None
    row = next(csv.reader([text]), None)
    if row is None:
        raise DataError(f"{path}: file is empty")
    return row


def _not_utf8(line: bytes, exc: UnicodeDecodeError) -> str:
    return f"byte 0x{line[exc.start]:02x} is not UTF-8 text (save the file as UTF-8)"


def _csv_fault(path: str, exc: pa.ArrowInvalid) -> DataError:
    """A CSV file Arrow cannot parse, located on a second look (only on this error path)."""
    message = first_line(exc)
    if "UTF8" in message or "UTF-8" in message:
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as err:
                    return DataError(f"{path}, line {n}: {_not_utf8(line, err)}")
    if "Expected" in message and "columns, got" in message:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            row = 0
            for record in reader:
                if not record:  # Arrow skips empty lines
                    continue
                row += 1
                if len(record) != len(header):
                    return DataError(
                        f"{path}, row {row}: {len(record)} fields, the header has {len(header)}"
                    )
    return DataError(f"{path}: {message}")


def _header_only(names: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], pa.string()) for _ in names], names=names)
