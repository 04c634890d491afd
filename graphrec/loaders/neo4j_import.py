"""``graphrec load --import-files DIR``: a graph (Arrow tables) as the files of Neo4j's
offline bulk importer, ``neo4j-admin database import full``.

The importer writes a new database's store directly (no transactions, no Cypher): the
fastest way to put a large graph into Neo4j, at the price of a stopped database that does
not exist yet. ``graphrec load`` without ``--import-files`` writes through Bolt into a
running server instead (batched ``UNWIND``; any database, also one that already holds data).

Per node type, a header file and a data file: an ``:ID(<type>)`` column (the id space of
the type; not stored) and the key property under its own name and type, so that the ids
keep their type (int ids stay integers whatever ``--id-type`` the ids need), then the
properties; per edge type, ``:START_ID(<src type>)``, ``:END_ID(<dst type>)`` and the
properties. Property types come from the Arrow columns (int -> long, float -> double, bool
-> boolean, string -> string); a column of another type, a NaN (which the importer cannot
read) or a name the command line cannot carry is refused before anything is written.
:func:`import_command` is the ``neo4j-admin`` argument list that reads them.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from graphrec.config import ExtractConfig
from graphrec.errors import ConfigError, DataError
from graphrec.loaders.extract import GraphTables

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""Labels, types and id spaces the ``--nodes=Label=files`` syntax carries as they are."""


@dataclass
class ImportFiles:
    """What :func:`write_import_files` wrote: ``(label or type, header, data)`` per file."""

    root: Path
    nodes: list[tuple[str, Path, Path]] = field(default_factory=list)
    relationships: list[tuple[str, Path, Path]] = field(default_factory=list)
    multiline: bool = False
    rows: dict[str, int] = field(default_factory=dict)


def _type(column: pa.ChunkedArray, what: str) -> str:
    t = column.type
    if pa.types.is_integer(t):
        return "long"
    if pa.types.is_floating(t):
        if pc.any(pc.is_nan(column)).as_py():
            row = pc.index(pc.is_nan(column), True).as_py()
            raise DataError(
                f"graphrec load --import-files: {what}, row {row + 1}: NaN, which "
                "neo4j-admin import cannot read (clean it, or load through Bolt)"
            )
        return "double"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    raise ConfigError(
        f"graphrec load --import-files: {what} is {t}, which the import files do not carry "
        "(long, double, boolean and string do); load through Bolt instead"
    )


def _name(value: str, what: str) -> str:
    if not NAME.fullmatch(value):
        raise ConfigError(
            f"graphrec load --import-files: {what} {value!r} is not a plain name "
            "([A-Za-z_][A-Za-z0-9_]*), which the neo4j-admin command line needs; "
            "load through Bolt instead"
        )
    return value


def _multiline(table: pa.Table) -> bool:
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            if pc.any(pc.match_substring_regex(col, r"[\r\n]")).as_py():
                return True
    return False


def write_import_files(tables: GraphTables, ecfg: ExtractConfig, out: str | Path) -> ImportFiles:
    """Write ``tables`` as neo4j-admin import files into the new folder ``out`` (refused if
    it exists and holds anything: nothing is overwritten); on a failure the folder is
    removed again, so no half-written set is left behind."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"graphrec load --import-files {out}: exists and is not an empty folder")
    # plan: every name and type checked before the first file
    plan: list[tuple[str, str, str, pa.Table, list[str]]] = []  # kind, name, stem, table, head
    for ntype, spec in ecfg.nodes.items():
        if ntype not in tables.nodes:
            raise DataError(f"graphrec load: no rows were read for node type {ntype!r}")
        table = tables.nodes[ntype]
        label = _name(spec.label or ntype, f"extract.nodes.{ntype}: label")
        space = _name(ntype, "node type")
        head = [f":ID({space})"]
        head.append(f"{spec.id}:{_type(table['id'], f'{ntype} ids')}")
        props = [c for c in table.column_names if c != "id"]
        head += [f"{c}:{_type(table[c], f'{ntype} property {c!r}')}" for c in props]
        cols = [table["id"], table["id"], *[table[c] for c in props]]
        names = ["_id", "id", *props]
        plan.append(("node", label, f"nodes-{ntype}", pa.table(cols, names=names), head))
    for name, spec in ecfg.edges.items():
        if name not in tables.edges:
            raise DataError(f"graphrec load: no rows were read for edge type {name!r}")
        table = tables.edges[name]
        rtype = _name(spec.type or name, f"extract.edges.{name}: relationship type")
        head = [
            f":START_ID({_name(spec.src, 'node type')})",
            f":END_ID({_name(spec.dst, 'node type')})",
        ]
        props = [c for c in table.column_names if c not in ("src", "dst")]
        head += [f"{c}:{_type(table[c], f'{name} property {c!r}')}" for c in props]
        plan.append(("rel", rtype, f"rels-{name}", table.select(["src", "dst", *props]), head))

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    files = ImportFiles(out.resolve())
    try:
        for kind, label, stem, table, head in plan:
            header, data = files.root / f"{stem}.header.csv", files.root / f"{stem}.csv"
            header.write_text(",".join(head) + "\n")
            opts = pacsv.WriteOptions(include_header=False, quoting_style="needed")
            pacsv.write_csv(table, data, opts)
            (files.nodes if kind == "node" else files.relationships).append((label, header, data))
            files.rows[stem] = table.num_rows
            files.multiline = files.multiline or _multiline(table)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for p in out.iterdir():
                p.unlink(missing_ok=True)
        raise
    return files


REPORT = "import.report"  # written by neo4j-admin, beside the files


def import_command(files: ImportFiles, database: str = "neo4j") -> list[str]:
    """The ``neo4j-admin`` arguments that import ``files`` as the new ``database`` (the
    database name comes first: the file options take any number of files). The importer's
    report goes into the files' folder, not into whatever folder it is run from."""
    args = ["database", "import", "full", database]
    args += [f"--nodes={label}={h},{d}" for label, h, d in files.nodes]
    args += [f"--relationships={rtype}={h},{d}" for rtype, h, d in files.relationships]
    if files.multiline:
        args.append("--multiline-fields=true")
    return [*args, f"--report-file={files.root / REPORT}"]
