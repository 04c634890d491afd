"""Stage 1, extract: graph sources that speak Arrow (CSV/Parquet files, Neo4j).

These are the database loaders of the pipeline: a source reads a property graph into
Arrow tables. PyG's mini-batch loaders (``LinkNeighborLoader``) belong to training
(:mod:`graphrec.train`, :mod:`graphrec.samplers`).

Sources are looked up by name (``extract.source`` in the config).
"""

from graphrec.config import ExtractConfig
from graphrec.errors import ConfigError
from graphrec.loaders.base import GraphSource, Partition
from graphrec.loaders.extract import GraphTables, extract
from graphrec.loaders.files import FileSource
from graphrec.loaders.snapshot import extract_cached, load_snapshot, save_snapshot


def _neo4j_source(cfg: ExtractConfig) -> GraphSource:
    from graphrec.loaders.neo4j import Neo4jSource  # the driver is only needed here

    return Neo4jSource(cfg)


def _arango_source(cfg: ExtractConfig) -> GraphSource:
    from graphrec.loaders.arango import ArangoSource  # python-arango is only needed here

    return ArangoSource(cfg)


def _gremlin_source(cfg: ExtractConfig) -> GraphSource:
    from graphrec.loaders.gremlin import GremlinSource  # gremlinpython is only needed here

    return GremlinSource(cfg)


SOURCES = {
    "files": FileSource,
    "neo4j": _neo4j_source,
    "arango": _arango_source,
    "gremlin": _gremlin_source,
}


def make_source(cfg: ExtractConfig) -> GraphSource:
    """The source named by ``cfg.source``."""
    if cfg.source not in SOURCES:
        raise ConfigError(
            f"extract.source={cfg.source!r} is not available (have: {', '.join(SOURCES)})"
        )
    return SOURCES[cfg.source](cfg)


__all__ = [
    "SOURCES",
    "FileSource",
    "GraphSource",
    "GraphTables",
    "Partition",
    "extract",
    "extract_cached",
    "load_snapshot",
    "make_source",
    "save_snapshot",
]
