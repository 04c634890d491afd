"""Stage 5, write back: sinks for recommendations, looked up by name (``write.sink``)."""

from pathlib import Path

from graphrec.config import WriteConfig
from graphrec.errors import ConfigError
from graphrec.sinks.base import COLUMNS, RecommendationSink
from graphrec.sinks.parquet import ParquetSink

SINKS = {"parquet": lambda cfg, run_dir: ParquetSink(Path(run_dir) / "recommendations.parquet")}


def make_sink(cfg: WriteConfig, run_dir: str | Path) -> RecommendationSink:
    if cfg.sink not in SINKS:
        raise ConfigError(f"write.sink={cfg.sink!r} is not available (have: {', '.join(SINKS)})")
    return SINKS[cfg.sink](cfg, run_dir)


__all__ = ["COLUMNS", "SINKS", "ParquetSink", "RecommendationSink", "make_sink"]
