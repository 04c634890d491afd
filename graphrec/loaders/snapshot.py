"""Snapshot cache: extracted Arrow tables saved as Parquet and reused on the next run.

The cache key covers the extract config (schema, source, root) and the source's fingerprint
(file sizes and times for files), so a changed schema or changed data re-extracts. A
snapshot is written to a temporary folder and renamed into place, so an interrupted write
never leaves a half snapshot behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import pyarrow.parquet as pq

from graphrec.config import ExtractConfig
from graphrec.loaders.base import GraphSource
from graphrec.loaders.extract import GraphTables, extract
from graphrec.staging import staged_dir

MANIFEST = "manifest.json"
FORMAT = 2
"""Snapshot format: part of the cache key, raised whenever extraction's checks or output
change (2: ids keep their declared type, non-finite numbers refused), so a snapshot made
by an older graphrec is never reused unchecked."""


def snapshot_key(cfg: ExtractConfig, fingerprint: str) -> str:
    spec = dataclasses.asdict(cfg)
    for volatile in ("snapshot_dir", "parallelism", "batch_rows"):
        spec.pop(volatile)
    blob = json.dumps([FORMAT, spec, fingerprint], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def save_snapshot(tables: GraphTables, folder: str | Path) -> Path:
    """Write ``tables`` under ``folder`` atomically; returns the folder."""
    folder = Path(folder)
    with staged_dir(folder, exists="keep") as tmp:  # same key: same content
        for kind, tabs in (("nodes", tables.nodes), ("edges", tables.edges)):
            (tmp / kind).mkdir()
            for name, table in tabs.items():
                pq.write_table(table, tmp / kind / f"{name}.parquet")
        manifest = {
            "nodes": list(tables.nodes),
            "edges": list(tables.edges),
            "stats": tables.stats,
            "created": time.time(),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder


def load_snapshot(folder: str | Path) -> GraphTables:
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    return GraphTables(
        nodes={n: pq.read_table(folder / "nodes" / f"{n}.parquet") for n in manifest["nodes"]},
        edges={e: pq.read_table(folder / "edges" / f"{e}.parquet") for e in manifest["edges"]},
        stats=dict(manifest["stats"]),
    )


def extract_cached(
    source: GraphSource,
    required: dict[str, list[str]] | None = None,
    progress: bool = True,
    read_parts=None,
) -> tuple[GraphTables, bool]:
    """Load the snapshot for this source and config if there is one, else extract and save.

    Returns the tables and whether they came from the cache.
    """
    cfg = source.cfg
    fingerprint = source.fingerprint() if cfg.snapshot_dir else None
    if fingerprint is None:
        return extract(source, required, progress, read_parts), False
    folder = Path(cfg.snapshot_dir) / snapshot_key(cfg, fingerprint)
    if (folder / MANIFEST).is_file():
        return load_snapshot(folder), True
    tables = extract(source, required, progress, read_parts)
    save_snapshot(tables, folder)
    return tables, False
