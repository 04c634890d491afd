"""Stage 5, write back: sinks for recommendations, looked up by name (``write.sink``)."""

from pathlib import Path

from graphrec.errors import ConfigError
from graphrec.sinks.base import COLUMNS, RecommendationSink
from graphrec.sinks.parquet import ParquetSink


def _parquet(job, run_dir: Path) -> RecommendationSink:
    return ParquetSink(Path(run_dir) / "recommendations.parquet")


def _neo4j(job, run_dir: Path) -> RecommendationSink:
    from graphrec.sinks.neo4j import Neo4jSink  # the driver is only needed here

    ecfg, target = job.extract, job.extract.edges[job.build.target]
    user, item = ecfg.nodes[target.src], ecfg.nodes[target.dst]
    return Neo4jSink(
        job.write.neo4j or ecfg.neo4j,
        user=(user.label or target.src, user.id),  # ends by their node's key property
        item=(item.label or target.dst, item.id),
        relationship=job.write.relationship,
        model=job.name,
        run_id=Path(run_dir).name.split(".partial-")[0].lstrip("."),  # the run folder's
        batch_size=job.write.batch_size,
    )


def _arango(job, run_dir: Path) -> RecommendationSink:
    from graphrec.sinks.arango import ArangoSink  # python-arango is only needed here

    ecfg, target = job.extract, job.extract.edges[job.build.target]
    user, item = ecfg.nodes[target.src], ecfg.nodes[target.dst]
    return ArangoSink(
        ecfg.arango,
        user=(user.label or target.src, user.id),
        item=(item.label or target.dst, item.id),
        collection=job.write.collection,
        model=job.name,
        run_id=Path(run_dir).name.split(".partial-")[0].lstrip("."),
        batch_size=job.write.batch_size,
    )


def _gremlin(job, run_dir: Path) -> RecommendationSink:
    from graphrec.sinks.gremlin import GremlinSink  # gremlinpython is only needed here

    ecfg, target = job.extract, job.extract.edges[job.build.target]
    user, item = ecfg.nodes[target.src], ecfg.nodes[target.dst]
    return GremlinSink(
        ecfg.gremlin,
        user=(user.label or target.src, user.id),
        item=(item.label or target.dst, item.id),
        relationship=job.write.relationship,
        model=job.name,
        run_id=Path(run_dir).name.split(".partial-")[0].lstrip("."),
        batch_size=job.write.batch_size,
    )


SINKS = {"parquet": _parquet, "neo4j": _neo4j, "arango": _arango, "gremlin": _gremlin}


def sink_names(job) -> list[str]:
    """The sinks a run writes to: Parquet always (the run folder keeps a copy), plus the
    configured one; an unknown ``write.sink`` is a config error."""
    if job.write.sink not in SINKS:
        raise ConfigError(
            f"write.sink={job.write.sink!r} is not available (have: {', '.join(SINKS)})"
        )
    names = ["parquet"] + ([job.write.sink] if job.write.sink != "parquet" else [])
    return names


def make_sink(name: str, job, run_dir: str | Path) -> RecommendationSink:
    return SINKS[name](job, Path(run_dir))


__all__ = ["COLUMNS", "SINKS", "ParquetSink", "RecommendationSink", "make_sink", "sink_names"]
