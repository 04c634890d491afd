"""The source interface: a property graph read as Arrow record batches, partition by partition.

A :class:`GraphSource` lists the partitions of each node and edge type and reads one
partition as a stream of :class:`pyarrow.RecordBatch`. Partitions are independent, so
:func:`graphrec.loaders.extract.extract` reads several at once; memory per read is bounded by
``extract.batch_rows``. Files and Neo4j are implementations of this same class.

Every batch leaves :meth:`GraphSource.read` normalised and checked:

* node batches have column ``id`` then the declared properties;
* edge batches have ``src``, ``dst`` then the declared properties;
* each declared column is cast to its declared type, keys are never null or empty, a float
  is never NaN or infinite (a null is allowed), and a value that does not fit raises
  :class:`~graphrec.errors.DataError` naming location, column and row;
* a key keeps the type declared for its node type's id property (``string`` or ``int``;
  undeclared: ``int``), and an edge's key columns take their endpoint's type unless the
  edge declares them. An id that does not fit (``1.0``, ``abc``, beyond int64, any float
  column) is an error that names the fix, never a silent switch to text;
* a fault of the source while reading (a corrupt or unreadable file) is a ``DataError``
  naming the partition, in one line.

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
from graphrec.errors import ConfigError, DataError

ARROW_TYPES = {"string": pa.string(), "float": pa.float64(), "int": pa.int64()}
Kind = Literal["node", "edge"]
KEY_TYPES = ("int", "string")
"""Types a key (id) property may be declared as; undeclared keys are ``int``."""
READ_FAULTS = (pa.ArrowException, OSError, UnicodeDecodeError)
"""Exceptions of a backend's read that mean the data itself is unreadable."""


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
        for kind, table in (("node", cfg.nodes), ("edge", cfg.edges)):
            for name, spec in table.items():
                keys = [spec.id] if kind == "node" else [spec.src_id, spec.dst_id]
                for key in keys:
                    typ = spec.properties.get(key)
                    if typ is not None and typ not in KEY_TYPES:
                        raise ConfigError(
                            f"extract.{kind}s.{name}.properties.{key}: a key is int or "
                            f"string, not {typ}"
                        )

    # -- public API -----------------------------------------------------------------
    def partitions(self, kind: Kind, name: str) -> list[Partition]:
        """The partitions of node or edge type ``name`` (empty for derived node types)."""
        spec = self.spec(kind, name)
        if kind == "node" and spec.file is None and not self.stores_nodes():
            return []
        try:
            return self._partitions(kind, name, spec)
        except READ_FAULTS as exc:
            raise DataError(f"extract.{kind}s.{name}: {first_line(exc)}") from None

    def read(self, part: Partition) -> Iterator[pa.RecordBatch]:
        """Stream one partition as normalised, type-checked record batches."""
        spec = self.spec(part.kind, part.name)
        columns = self.source_columns(part.kind, spec)
        targets = self.target_schema(part.kind, spec)
        n_keys = 1 if part.kind == "node" else 2
        fixes = self._key_fixes(part.kind, part.name, spec)
        row = 0
        batches = self._read(part, spec, list(columns))
        while True:
            try:
                batch = next(batches, None)
            except READ_FAULTS as exc:
                raise DataError(f"{part.location}: {first_line(exc)}") from None
            if batch is None:
                return
            missing = [c for c in columns if c not in batch.schema.names]
            if missing:
                have = ", ".join(batch.schema.names)
                raise DataError(
                    f"{part.location}: missing column {missing[0]!r} "
                    f"(declared in extract.{part.kind}s.{part.name}; have: {have})"
                )
            arrays = []
            rows = self._row_names(part, batch, row)
            for i, (src_col, field) in enumerate(zip(columns, targets, strict=True)):
                arr = batch.column(src_col)
                if i < n_keys:
                    arr = _cast_key(arr, field.type, part.location, src_col, rows, fixes[i])
                    _check_key_present(arr, part.location, src_col, rows)
                else:
                    arr = _cast(arr, field.type, part.location, src_col, rows)
                    _check_not_infinite(arr, part.location, src_col, rows)
                arrays.append(arr)
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

    def _row_names(self, part: Partition, batch: pa.RecordBatch, row0: int) -> Rows:
        """How messages name a row of ``batch`` (hook: a database names its document)."""
        return row0

    def holders(self, ntype: str, node_id) -> str:
        """Where a node id occurs, for the message about a duplicate (hook: a database
        names the documents; empty when the source cannot say)."""
        return ""

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

    def key_type(self, ntype: str) -> pa.DataType:
        """The type of node type ``ntype``'s keys: as declared for its id property
        (``string`` or ``int``), ``int`` when undeclared."""
        spec = self.cfg.nodes[ntype]
        return ARROW_TYPES[spec.properties.get(spec.id, "int")]

    def target_schema(self, kind: Kind, spec: NodeSpec | EdgeSpec) -> pa.Schema:
        """Normalised output schema: keys first (``id``, or ``src`` and ``dst``), then the
        declared properties. An edge key column not declared on the edge takes the key type
        of its endpoint node type."""
        if kind == "node":
            fields = [pa.field("id", ARROW_TYPES[spec.properties.get(spec.id, "int")])]
            src_keys = [spec.id]
        else:
            src_keys = [spec.src_id, spec.dst_id]
            fields = []
            for key, src, ntype in (("src", spec.src_id, spec.src), ("dst", spec.dst_id, spec.dst)):
                typ = spec.properties.get(src)
                fields.append(pa.field(key, ARROW_TYPES[typ] if typ else self.key_type(ntype)))
        for prop, typ in spec.properties.items():
            if prop not in src_keys:
                fields.append(pa.field(prop, ARROW_TYPES[typ]))
        return pa.schema(fields)

    def _key_fixes(self, kind: Kind, name: str, spec: NodeSpec | EdgeSpec) -> list[str]:
        """Per key column, the config entry that declares its ids as text."""
        if kind == "node":
            return [f"extract.nodes.{name}.properties: {{{spec.id}: string}}"]
        fixes = []
        for src, ntype in ((spec.src_id, spec.src), (spec.dst_id, spec.dst)):
            if src in spec.properties:  # the edge declares its own key type
                fixes.append(f"extract.edges.{name}.properties: {{{src}: string}}")
            else:
                node_id = self.cfg.nodes[ntype].id
                fixes.append(f"extract.nodes.{ntype}.properties: {{{node_id}: string}}")
        return fixes

    # -- backend hooks ---------------------------------------------------------------
    @abstractmethod
    def _partitions(self, kind: Kind, name: str, spec: NodeSpec | EdgeSpec) -> list[Partition]:
        """List the partitions of one type."""

    @abstractmethod
    def _read(
        self, part: Partition, spec: NodeSpec | EdgeSpec, columns: list[str]
    ) -> Iterator[pa.RecordBatch]:
        """Yield record batches holding (at least) ``columns``, in any Arrow types."""


def _cast(arr: pa.Array, target: pa.DataType, location: str, column: str, row0: Rows) -> pa.Array:
    """Cast a property column to its declared type; a value that does not fit is named."""
    if arr.type == target:
        return arr
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = _first_bad(arr, target)
        value = arr[bad].as_py() if bad is not None else "?"
        where = _row(row0, bad) if bad is not None else "a row of this batch"
        raise DataError(
            f"{location}, column {column!r}, {where}: {value!r} is not "
            f"{'a number' if target != pa.string() else 'text'} ({_type_name(target)})"
        ) from None


def _cast_key(
    arr: pa.Array, target: pa.DataType, location: str, column: str, row0: Rows, fix: str
) -> pa.Array:
    """Cast a key column to its key type (int64 or string), never silently changing an id:
    a float column is refused whatever the declaration (1.0 would become 1 or '1'), and an
    integer key that does not parse says how to declare the ids as text."""
    if arr.type == target:
        return arr
    if pa.types.is_floating(arr.type):
        valid = pc.index(pc.is_valid(arr), True).as_py()
        bad = max(valid, 0)
        raise DataError(
            f"{location}, column {column!r}, {_row(row0, bad)}: {arr[bad].as_py()!r} is a "
            f"floating-point id (column type {arr.type}); write ids as integers, or as text "
            f"declared {fix}"
        )
    if target == pa.int64() and not (
        pa.types.is_integer(arr.type)
        or pa.types.is_string(arr.type)
        or pa.types.is_large_string(arr.type)
        or pa.types.is_null(arr.type)
    ):
        raise DataError(
            f"{location}, column {column!r}: ids of type {arr.type} are not integer ids "
            f"(declare them as text: {fix})"
        )
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = _first_bad(arr, target)
        if bad is None:
            raise DataError(
                f"{location}, column {column!r}: ids of type {arr.type} do not convert to "
                f"{_type_name(target)}"
            ) from None
        value = arr[bad].as_py()
        what = (
            "is beyond the int64 range of integer ids"
            if isinstance(value, int)
            else "is not an integer id"
            if target == pa.int64()
            else "is not text"
        )
        hint = f" (declare it as text: {fix})" if target == pa.int64() else ""
        raise DataError(
            f"{location}, column {column!r}, {_row(row0, bad)}: {value!r} {what}{hint}"
        ) from None


def _first_bad(arr: pa.Array, target: pa.DataType) -> int | None:
    """Only on the error path: the first row that does not cast, found by halving (about
    log2(n) casts, not one per row)."""

    def fails(lo: int, hi: int) -> bool:
        try:
            arr.slice(lo, hi - lo).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return True
        return False

    lo, hi = 0, len(arr)
    if hi == 0 or not fails(lo, hi):
        return None
    while hi - lo > 1:  # arr[lo:hi] holds the first bad row
        mid = (lo + hi) // 2
        if fails(lo, mid):
            hi = mid
        else:
            lo = mid
    return lo


def _check_key_present(arr: pa.Array, location: str, column: str, row0: Rows) -> None:
    """A key is never null, and a text key never empty."""
    _check_not_null(arr, location, column, row0)
    if pa.types.is_string(arr.type):
        empty = pc.equal(pc.utf8_length(arr), 0)
        if pc.any(empty).as_py():
            bad = pc.index(empty, True).as_py()
            raise DataError(f"{location}, column {column!r}, {_row(row0, bad)}: key is empty")


def _check_not_infinite(arr: pa.Array, location: str, column: str, row0: Rows) -> None:
    """A float property is a finite number or null (missing); NaN and +-inf are errors."""
    if not pa.types.is_floating(arr.type):
        return
    bad_mask = pc.invert(pc.fill_null(pc.is_finite(arr), True))
    if pc.any(bad_mask).as_py():
        bad = pc.index(bad_mask, True).as_py()
        raise DataError(
            f"{location}, column {column!r}, {_row(row0, bad)}: "
            f"{arr[bad].as_py()} is not a finite number"
        )


def _check_not_null(arr: pa.Array, location: str, column: str, row0: Rows) -> None:
    if arr.null_count:
        bad = pc.index(pc.is_null(arr), True).as_py()
        raise DataError(f"{location}, column {column!r}, {_row(row0, bad)}: key is empty")


def first_line(exc: BaseException) -> str:
    """An exception's message as one line: its first line, without control characters."""
    lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    return "".join(ch for ch in lines[0] if ch.isprintable()).strip()


class RowNames:
    """How messages name the rows of one batch when the source has a name for each: its
    document key (``document Movie/105, row 7``) beside the row number in the partition."""

    def __init__(self, row0: int, keys: pa.Array, collection: str) -> None:
        self.row0, self.keys, self.collection = row0, keys, collection

    def __call__(self, i: int) -> str:
        return f"document {self.collection}/{self.keys[i].as_py()} (row {self.row0 + i + 1})"


Rows = int | RowNames
"""A batch's first row number in its partition, or a :class:`RowNames`."""


def _row(rows: Rows, i: int) -> str:
    return rows(i) if isinstance(rows, RowNames) else f"row {rows + i + 1}"


def _type_name(t: pa.DataType) -> str:
    return {pa.float64(): "float", pa.int64(): "int", pa.string(): "string"}.get(t, str(t))


def check_finite(batch: pa.RecordBatch, column: str, location: str, row0: Rows = 0) -> None:
    """Reject null or NaN in a numeric column (a label must be a real number)."""
    col = batch.column(column)
    mask = pc.is_null(col, nan_is_null=True)
    if pc.any(mask).as_py():
        bad = pc.index(mask, True).as_py()
        value = col[bad].as_py()
        what = "missing (empty or NaN)" if value is None else f"{value!r} is not a number"
        raise DataError(f"{location}, column {column!r}, {_row(row0, bad)}: {what}")


def to_arrow(values: list) -> pa.Array:
    """A database client's values -> Arrow; mixed types fall back to text, so the checks of
    :meth:`GraphSource.read` name the row that does not fit its declared type."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
