"""Stage 5, the Parquet sink and the sink lookup (``write.sink``).

Non-finite scores are refused before anything is written: see
``tests/reliability/test_numeric.py::test_sinks_refuse_non_finite_scores``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import graphrec.sinks.parquet as parquet_module
from graphrec.errors import ConfigError, DataError
from graphrec.sinks import COLUMNS, SINKS, ParquetSink, make_sink, sink_names
from tests.conftest import make_config, tiny_config_dict


def recs(users=(1, 1, 2, 2), items=(101, 102, 103, 101), scale: float = 1.0) -> pa.Table:
    n = len(users)
    return pa.table(
        {
            "user_id": pa.array(users, pa.int64()),
            "item_id": pa.array(items, pa.int64()),
            "rank": pa.array([1 + j % 2 for j in range(n)], pa.int32()),
            "score": pa.array([scale * (0.9 - 0.1 * j) for j in range(n)], pa.float32()),
        }
    )


def test_the_written_file_round_trips_the_table(tmp_path):
    table = recs()
    out = tmp_path / "deep" / "er" / "recs.parquet"  # folders are made as needed
    stats = ParquetSink(out).write(table)
    back = pq.read_table(out)
    assert back.equals(table)  # values, column order and types (int32 rank, float32 score)
    assert back.schema.equals(table.schema)
    assert stats["rows"] == 4 and stats["seconds"] >= 0 and stats["rows_per_s"] > 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["recs.parquet"]  # no temp file


def test_string_ids_round_trip(tmp_path):
    table = pa.table(
        {
            "user_id": ["alice", "bob"],
            "item_id": ["m/1", "m 2"],
            "rank": pa.array([1, 1], pa.int32()),
            "score": pa.array([2.5, -1.0], pa.float32()),
        }
    )
    out = tmp_path / "recs.parquet"
    ParquetSink(out).write(table)
    assert pq.read_table(out).equals(table)


def test_only_the_four_columns_in_their_order_are_written(tmp_path):
    table = recs()
    shuffled = table.select(["score", "item_id", "user_id", "rank"]).append_column(
        "debug", pa.array(["x"] * 4)
    )
    out = tmp_path / "recs.parquet"
    ParquetSink(out).write(shuffled)
    back = pq.read_table(out)
    assert tuple(back.column_names) == COLUMNS == ("user_id", "item_id", "rank", "score")
    assert back.equals(table)


def test_a_rerun_replaces_the_file(tmp_path):
    out = tmp_path / "recs.parquet"
    ParquetSink(out).write(recs())
    second = recs(users=(7,), items=(9,), scale=2.0)
    ParquetSink(out).write(second)
    assert pq.read_table(out).equals(second)


@pytest.mark.parametrize(
    "table,message",
    [
        (recs().drop_columns(["rank"]), "lack column"),
        (recs().slice(0, 0), "empty table"),
    ],
    ids=["missing column", "empty"],
)
def test_a_bad_table_is_refused_and_the_previous_file_kept(tmp_path, table, message):
    out = tmp_path / "recs.parquet"
    ParquetSink(out).write(recs())
    before = out.read_bytes()
    with pytest.raises(DataError, match=message):
        ParquetSink(out).write(table)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["recs.parquet"]


def failing_write(table, where, **kw):
    """Writes a few bytes where it was told, then fails (as a full disk would)."""
    with open(where, "wb") as f:
        f.write(b"PAR1 half a file")
    raise OSError(28, "No space left on device")


def test_a_write_that_fails_half_way_keeps_the_previous_file(tmp_path, monkeypatch):
    out = tmp_path / "recs.parquet"
    ParquetSink(out).write(recs())
    before = out.read_bytes()
    monkeypatch.setattr(parquet_module.pq, "write_table", failing_write)
    with pytest.raises(OSError, match="No space left"):
        ParquetSink(out).write(recs(scale=3.0))
    assert out.read_bytes() == before  # the file in place is whole: the old one
    assert pq.read_table(out).equals(recs())


def test_a_first_write_that_fails_half_way_leaves_no_file_at_the_path(tmp_path, monkeypatch):
    out = tmp_path / "recs.parquet"
    monkeypatch.setattr(parquet_module.pq, "write_table", failing_write)
    with pytest.raises(OSError):
        ParquetSink(out).write(recs())
    assert not out.exists()


def test_a_write_that_fails_half_way_leaves_no_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "recs.parquet"
    monkeypatch.setattr(parquet_module.pq, "write_table", failing_write)
    with pytest.raises(OSError):
        ParquetSink(out).write(recs())
    assert list(tmp_path.iterdir()) == []


def config(tmp_path, sink: str):
    root = tmp_path / "data"  # never read: the lookup needs the config only
    data = tiny_config_dict(root, tmp_path)
    data["write"]["sink"] = sink
    return make_config(data)


@pytest.mark.parametrize("sink,names", [("parquet", ["parquet"]), ("neo4j", ["parquet", "neo4j"])])
def test_sink_names_always_include_parquet(tmp_path, sink, names):
    assert sink_names(config(tmp_path, sink)) == names
    assert set(names) <= set(SINKS)


@pytest.mark.parametrize("sink", ["s3", "Parquet", ""])
def test_an_unknown_sink_is_a_config_error(tmp_path, sink):
    cfg = config(tmp_path, sink)  # write.sink is free text in the schema ...
    with pytest.raises(ConfigError, match=rf"write.sink='{sink}' is not available \(have: "):
        sink_names(cfg)  # ... and refused here, before any work


def test_make_sink_parquet_writes_into_the_run_folder(tmp_path):
    cfg = config(tmp_path, "parquet")
    sink = make_sink("parquet", cfg, str(tmp_path / "run"))
    assert isinstance(sink, ParquetSink)
    assert sink.path == tmp_path / "run" / "recommendations.parquet"
    sink.write(recs())
    assert pq.read_table(tmp_path / "run" / "recommendations.parquet").equals(recs())


def test_make_sink_neo4j_is_configured_from_the_job_without_connecting(tmp_path):
    from graphrec.sinks.neo4j import Neo4jSink

    cfg = config(tmp_path, "neo4j")
    cfg.write.batch_size = 7
    sink = make_sink("neo4j", cfg, tmp_path / ".tiny-20240101.partial-ab12")
    assert isinstance(sink, Neo4jSink)
    assert sink.run_id == "tiny-20240101"  # the run folder's name, not the staging one's
    assert sink.model == "tiny" and sink.batch_size == 7
    assert "user" in sink.user_label and "userId" in sink.user_key
    assert "movie" in sink.item_label and "movieId" in sink.item_key
    assert "RECOMMENDED" in sink.rel
