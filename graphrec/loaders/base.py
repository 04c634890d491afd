"""The source interface: a property graph read as Arrow record batches, partition by partition.

A :class:`GraphSource` lists the partitions of each node and edge type and reads one
partition as a stream of :class:`pyarrow.RecordBatch`. Partitions are independent, so
:func:`graphrec.loaders.extract.extract` reads several at once; memory per read is bounded by
``extract.batch_rows``. Files, Neo4j and ArangoDB are implementations of this same class.

Every batch leaves :meth:`GraphSource.read` normalised and checked:

* node batches have column ``id`` then the declared properties;
* edge batches have ``src``, ``dst`` then the declared properties;
* each declared column is cast to its declared type, keys are never null, and a value that
  does not fit raises :class:`~graphrec.errors.DataError` naming location, column and row.

Backends implement the two hooks ``_partitions`` and ``_read`` (PyG's
``FeatureStore.put_tensor`` -> ``_put_tensor`` pattern): the public method checks, the hook
talks to the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from graphrec.config import EdgeSpec, ExtractConfig, NodeSpec
from graphrec.errors import DataError

ARROW_TYPES = {"string": pa.string(), "float": pa.float64(), "int": pa.int64()}
Kind = Literal["node", "edge"]


@dataclass(frozen=True)
class Partition:
    """One independently readable piece of one node or edge type."""

    kind: Kind
    """node or edge."""
    name: str
    """The node or edge type."""
    index: int
    """Position among the type's partitions (keeps output order deterministic)."""
    location: str
    """Where the rows come from, for messages (a file, a query range)."""
    payload: Any = None
    """Backend-specific description of the piece."""


class GraphSource(ABC):
    """A property graph that can be read in partitions of Arrow record batches."""

    def __init__(self, cfg: ExtractConfig) -> None:
        self.cfg = cfg

    # -- public API -----------------------------------------------------------------
    def partitions(self, kind: Kind, name: str) -> list[Partition]:
        """The partitions of node or edge type ``name`` (empty for derived node types)."""
        spec = self.spec(kind, name)
        if kind == "node" and spec.file is None and not self.stores_nodes():
            return []
        return self._partitions(kind, name, spec)

    def read(self, part: Partition) -> Iterator[pa.RecordBatch]:
        """Stream one partition as normalised, type-checked record batches."""
        spec = self.spec(part.kind, part.name)
        columns = self.source_columns(part.kind, spec)
        targets = self.target_schema(part.kind, spec)
        row = 0
        for batch in self._read(part, spec, list(columns)):
            missing = [c for c in columns if c not in batch.schema.names]
            if missing:
                have = ", ".join(batch.schema.names)
                raise DataError(
                    f"{part.location}: missing column {missing[0]!r} "
                    f"(declared in extract.{part.kind}s.{part.name}; have: {have})"
                )
            arrays = []
            for src_col, field in zip(columns, targets, strict=True):
                arrays.append(_cast(batch.column(src_col), field, part.location, src_col, row))
            for key in ("id",) if part.kind == "node" else ("src", "dst"):
                idx = targets.get_field_index(key)
                _check_not_null(arrays[idx], part.location, columns[idx], row)
            yield pa.RecordBatch.from_arrays(arrays, names=targets.names)
            row += batch.num_rows

    def spec(self, kind: Kind, name: str) -> NodeSpec | EdgeSpec:
        table = self.cfg.nodes if kind == "node" else self.cfg.edges
        if name not in table:
            raise DataError(f"unknown {kind} type {name!r} (have: {', '.join(table)})")
        return table[name]

    def fingerprint(self) -> str | None:
        """A string that changes when the source data changes (None: never cache)."""
        return None

    def close(self) -> None:
        """Release connections (files hold none)."""
        return None

    def stores_nodes(self) -> bool:
        """Whether node types without a file still have their own records (databases do)."""
        return False

    # -- helpers shared by backends --------------------------------------------------
    @staticmethod
    def source_columns(kind: Kind, spec: NodeSpec | EdgeSpec) -> list[str]:
        """Columns as named in the source, in output order."""
        keys = [spec.id] if kind == "node" else [spec.src_id, spec.dst_id]
        return keys + [p for p in spec.properties if p not in keys]

    @staticmethod
    def target_schema(kind: Kind, spec: NodeSpec | EdgeSpec) -> pa.Schema:
        """Normalised output schema; undeclared key types are null here and settled by
        :func:`_cast` (integers stay integers, anything else becomes text)."""
        keys = ["id"] if kind == "node" else ["src", "dst"]
        src_keys = [spec.id] if kind == "node" else [spec.src_id, spec.dst_id]
        fields = []
        for key, src in zip(keys, src_keys, strict=True):
            typ = spec.properties.get(src)
            fields.append(pa.field(key, ARROW_TYPES[typ] if typ else pa.null()))
        for prop, typ in spec.properties.items():
            if prop not in src_keys:
                fields.append(pa.field(prop, ARROW_TYPES[typ]))
        return pa.schema(fields)

    # -- backend hooks ---------------------------------------------------------------
    @abstractmethod
    def _partitions(self, kind: Kind, name: str, spec: NodeSpec | EdgeSpec) -> list[Partition]:
        """List the partitions of one type."""

    @abstractmethod
    def _read(
        self, part: Partition, spec: NodeSpec | EdgeSpec, columns: list[str]
    ) -> Iterator[pa.RecordBatch]:
        """Yield record batches holding (at least) ``columns``, in any Arrow types."""


def _cast(arr: pa.Array, field: pa.Field, location: str, column: str, row0: int) -> pa.Array:
    """Cast to the declared type; a key column of undeclared type keeps ints, else strings."""
    target = field.type
    if pa.types.is_null(target):  # undeclared key type: integers stay, anything else -> str
        target = pa.int64() if pa.types.is_integer(arr.type) else pa.string()
    if arr.type == target:
        return arr
    if pa.types.is_floating(target) and pa.types.is_integer(arr.type):
        return arr.cast(target)
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = _first_bad(arr, target)
        value = arr[bad].as_py() if bad is not None else "?"
        where = f"row {row0 + bad + 1}" if bad is not None else f"rows {row0 + 1}.."
        raise DataError(
            f"{location}, column {column!r}, {where}: {value!r} is not "
            f"{'a number' if target != pa.string() else 'text'} ({_type_name(target)})"
        ) from None


def _first_bad(arr: pa.Array, target: pa.DataType) -> int | None:
    # Only on the error path: find the offending row one value at a time.
    for i in range(len(arr)):
        try:
            arr.slice(i, 1).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i
    return None


def _check_not_null(arr: pa.Array, location: str, column: str, row0: int) -> None:
    if arr.null_count:
        bad = pc.index(pc.is_null(arr), True).as_py()
        raise DataError(f"{location}, column {column!r}, row {row0 + bad + 1}: key is empty")


def _type_name(t: pa.DataType) -> str:
    return {pa.float64(): "float", pa.int64(): "int", pa.string(): "string"}.get(t, str(t))


def check_finite(batch: pa.RecordBatch, column: str, location: str, row0: int = 0) -> None:
    """Reject null or NaN in a numeric column (a label must be a real number)."""
    col = batch.column(column)
    mask = pc.is_null(col, nan_is_null=True)
    if pc.any(mask).as_py():
        bad = pc.index(mask, True).as_py()
        value = col[bad].as_py()
        what = "missing (empty or NaN)" if value is None else f"{value!r} is not a number"
        raise DataError(f"{location}, column {column!r}, row {row0 + bad + 1}: {what}")
