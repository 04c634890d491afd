"""MovieLens through a real Neo4j: load, extract (= the file source), run, write back."""

import dataclasses
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from graphrec.config import load_config
from graphrec.connectors.neo4j import Neo4jError
from graphrec.errors import ConfigError, DataError
from graphrec.job import run_job
from graphrec.loaders import extract
from graphrec.loaders.files import FileSource
from graphrec.loaders.neo4j import Neo4jSource
from graphrec.loaders.neo4j_load import load_graph
from graphrec.sinks.neo4j import Neo4jSink

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.neo4j


def neo4j_job(neo4j_cfg, tmp_path, *overrides):
    cfg = load_config(
        ROOT / "configs/movielens-neo4j.yaml",
        [
            f"extract.root={ROOT / 'data/movielens-small'}",
            f"extract.neo4j.uri={neo4j_cfg.uri}",
            f"extract.neo4j.password_env={neo4j_cfg.password_env}",
            f"write.run_dir={tmp_path / 'run'}",
            f"build.cache_dir={tmp_path / 'cache'}",
            f"train.checkpoint_path={tmp_path / 'ckpt'}",
            # genres only and short training: this checks plumbing, not quality
            "build.features.movie=[{property: genres, kind: multi_hot}]",
            "train.epochs=1",
            "train.max_batches_per_epoch=5",
            "train.num_negatives=2",
            *overrides,
        ],
    )
    return cfg


@pytest.fixture(scope="module")
def movielens_in_neo4j(neo4j_cfg, neo4j_driver, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ml")
    cfg = neo4j_job(neo4j_cfg, tmp)
    with neo4j_driver.session() as s:
        s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
    files = dataclasses.replace(cfg.extract, source="files")
    tables = extract(FileSource(files), progress=False)
    stats = load_graph(tables, cfg.extract, cfg.extract.neo4j, progress=False)
    assert stats["edges:rates"]["rows"] == 100_836
    return cfg, tables


def canonical(table):
    return table.sort_by([(c, "ascending") for c in table.column_names[:2]])


def test_extract_equals_the_file_source(movielens_in_neo4j):
    cfg, file_tables = movielens_in_neo4j
    source = Neo4jSource(cfg.extract)
    try:
        parts = source.partitions("edge", "rates")
        assert len(parts) == 2  # extract.parallelism partitions, read concurrently
        got = extract(source, {"rates": ["rating"]}, progress=False)
    finally:
        source.close()
    a, b = canonical(got.edges["rates"]), canonical(file_tables.edges["rates"])
    assert a.num_rows == 100_836 and a.equals(b)
    assert got.nodes["movie"].sort_by("id").equals(file_tables.nodes["movie"].sort_by("id"))
    assert got.nodes["user"].sort_by("id").equals(file_tables.nodes["user"].sort_by("id"))


def test_job_writes_exactly_k_unseen_per_user_and_a_rerun_replaces(
    movielens_in_neo4j, neo4j_driver, tmp_path
):
    cfg, _ = movielens_in_neo4j
    # each run gets its own train config: run_job writes the run id it picks into it
    cfg = dataclasses.replace(
        cfg,
        write=dataclasses.replace(cfg.write, run_dir=str(tmp_path / "a")),
        train=dataclasses.replace(cfg.train),
    )
    result = run_job(cfg, progress=False)
    k = cfg.recommend.k
    check = """
        MATCH (u:User) OPTIONAL MATCH (u)-[r:RECOMMENDED {model: $model}]->(m:Movie)
        WITH u, count(r) AS n, count(DISTINCT m) AS d RETURN min(n) AS lo, max(n) AS hi,
        min(d) AS dlo, count(u) AS users"""
    seen = (
        "MATCH (u:User)-[:RECOMMENDED {model: $model}]->(m:Movie)<-[:RATED]-(u) "
        "RETURN count(*) AS c"
    )
    with neo4j_driver.session() as s:
        row = s.run(check, model=cfg.name).single()
        assert (row["lo"], row["hi"], row["dlo"], row["users"]) == (k, k, k, 610)
        assert s.run(seen, model=cfg.name).single()["c"] == 0  # never a movie the user rated
        total = s.run("MATCH ()-[r:RECOMMENDED]->() RETURN count(r) AS c").single()["c"]
    assert total == 610 * k
    # the Parquet copy in the run folder holds the same rows
    assert pq.read_table(result.run_dir / "recommendations.parquet").num_rows == 610 * k
    # a rerun replaces: same count, new run_id
    cfg2 = dataclasses.replace(
        cfg,
        write=dataclasses.replace(cfg.write, run_dir=str(tmp_path / "b")),
        train=dataclasses.replace(cfg.train, run_id=None),
    )
    run_job(cfg2, progress=False)
    with neo4j_driver.session() as s:
        row = s.run(check, model=cfg.name).single()
        assert (row["lo"], row["hi"], row["users"]) == (k, k, 610)
        runs = s.run(
            "MATCH ()-[r:RECOMMENDED]->() RETURN collect(DISTINCT r.run_id) AS ids"
        ).single()
        assert runs["ids"] == ["b"]


def test_interrupted_write_then_rerun_ends_exact(movielens_in_neo4j, neo4j_driver, neo4j_cfg):
    import pyarrow as pa

    users = list(range(1, 11)) * 3
    items = [1, 2, 3] * 10
    table = pa.table(
        {"user_id": sorted(users), "item_id": items, "rank": [1, 2, 3] * 10, "score": [0.5] * 30}
    )
    sink = Neo4jSink(
        neo4j_cfg,
        ("User", "userId"),
        ("Movie", "movieId"),
        "RECOMMENDED",
        model="interrupt-test",
        run_id="r1",
        batch_size=3,
    )
    sink.write(table.slice(0, 12))  # a first run that stopped after 4 of 10 users
    sink.write(table)  # the rerun
    sink.write(table)  # and once more
    with neo4j_driver.session() as s:
        rows = s.run(
            "MATCH (u:User)-[r:RECOMMENDED {model: 'interrupt-test'}]->(m) "
            "RETURN u.userId AS u, count(r) AS n ORDER BY u"
        ).data()
        s.run("MATCH ()-[r:RECOMMENDED {model: 'interrupt-test'}]->() DELETE r").consume()
    assert [(r["u"], r["n"]) for r in rows] == [(u, 3) for u in range(1, 11)]


def test_sink_rolls_back_a_batch_with_an_unknown_user(movielens_in_neo4j, neo4j_driver, neo4j_cfg):
    import pyarrow as pa

    table = pa.table(
        {"user_id": [1, 999999], "item_id": [1, 1], "rank": [1, 1], "score": [1.0, 1.0]}
    )
    sink = Neo4jSink(
        neo4j_cfg,
        ("User", "userId"),
        ("Movie", "movieId"),
        "RECOMMENDED",
        model="rollback-test",
        run_id="r",
        batch_size=10,
    )
    with pytest.raises(DataError, match="found no matching"):
        sink.write(table)
    with neo4j_driver.session() as s:
        n = s.run("MATCH ()-[r:RECOMMENDED {model: 'rollback-test'}]->() RETURN count(r) AS c")
        assert n.single()["c"] == 0  # nothing half-written


def test_wrong_password(movielens_in_neo4j, monkeypatch):
    cfg, _ = movielens_in_neo4j
    monkeypatch.setenv("WRONG_PW", "not-the-password")
    bad = dataclasses.replace(cfg.extract.neo4j, password_env="WRONG_PW")
    source = Neo4jSource(dataclasses.replace(cfg.extract, neo4j=bad))
    with pytest.raises(Neo4jError, match="authentication failed for user 'neo4j'") as e:
        source.partitions("edge", "rates")
    assert "not-the-password" not in str(e.value) and "\n" not in str(e.value)


def test_missing_password_variable(movielens_in_neo4j):
    cfg, _ = movielens_in_neo4j
    bad = dataclasses.replace(cfg.extract.neo4j, password_env="GRAPHREC_NO_SUCH_VAR")
    with pytest.raises(ConfigError, match="set the environment variable GRAPHREC_NO_SUCH_VAR"):
        Neo4jSource(dataclasses.replace(cfg.extract, neo4j=bad)).partitions("node", "movie")


def test_unreachable_server(movielens_in_neo4j):
    cfg, _ = movielens_in_neo4j
    bad = dataclasses.replace(cfg.extract.neo4j, uri="bolt://127.0.0.1:9")
    with pytest.raises(Neo4jError, match=r"bolt://127.0.0.1:9 is unreachable"):
        Neo4jSource(dataclasses.replace(cfg.extract, neo4j=bad)).partitions("node", "movie")


def test_label_that_does_not_exist(movielens_in_neo4j):
    cfg, _ = movielens_in_neo4j
    nodes = dict(cfg.extract.nodes)
    nodes["movie"] = dataclasses.replace(nodes["movie"], label="Film")
    source = Neo4jSource(dataclasses.replace(cfg.extract, nodes=nodes))
    with pytest.raises(Neo4jError, match=r"label 'Film' does not exist .*have: Movie, User"):
        source.partitions("node", "movie")


def test_node_without_its_key(movielens_in_neo4j, neo4j_driver):
    cfg, _ = movielens_in_neo4j
    with neo4j_driver.session() as s:
        node = s.run("CREATE (m:Movie {title: 'no key'}) RETURN id(m) AS i").single()["i"]
    source = Neo4jSource(cfg.extract)
    try:
        with pytest.raises(
            DataError, match=rf"node :Movie with id {node} has no key property 'movieId'"
        ):
            extract(source, progress=False)
    finally:
        source.close()
        with neo4j_driver.session() as s:
            s.run("MATCH (m:Movie) WHERE m.movieId IS NULL DELETE m").consume()


def test_load_refuses_to_duplicate(movielens_in_neo4j):
    cfg, tables = movielens_in_neo4j
    with pytest.raises(
        Neo4jError, match=r"already has 100836 :RATED relationships: pass --replace"
    ):
        load_graph(tables, cfg.extract, cfg.extract.neo4j, progress=False)


def test_identifiers_from_config_are_checked(movielens_in_neo4j):
    cfg, _ = movielens_in_neo4j
    nodes = dict(cfg.extract.nodes)
    nodes["movie"] = dataclasses.replace(nodes["movie"], label="Movie`) DETACH DELETE (x")
    with pytest.raises(ConfigError, match=r"movie.label .* is not a valid database name"):
        Neo4jSource(dataclasses.replace(cfg.extract, nodes=nodes))


def test_tls_scheme_is_accepted_and_fails_clearly_against_a_plain_server(movielens_in_neo4j):
    cfg, _ = movielens_in_neo4j
    tls = cfg.extract.neo4j.uri.replace("bolt://", "neo4j+s://")
    bad = dataclasses.replace(cfg.extract.neo4j, uri=tls)
    with pytest.raises(Neo4jError, match=r"neo4j\+s://127.0.0.1:\d+") as e:
        Neo4jSource(dataclasses.replace(cfg.extract, neo4j=bad)).partitions("node", "movie")
    assert "\n" not in str(e.value)


def test_a_dropped_connection_retries_the_chunk(movielens_in_neo4j):
    import neo4j

    cfg, file_tables = movielens_in_neo4j
    dead = neo4j.GraphDatabase.driver("bolt://127.0.0.1:9", auth=("neo4j", "x"))

    class OneDroppedConnection(Neo4jSource):
        calls = 0

        def session(self):
            OneDroppedConnection.calls += 1
            if OneDroppedConnection.calls == 2:  # the first chunk meets a server that is gone
                return dead.session()
            return super().session()

    source = OneDroppedConnection(cfg.extract)
    try:
        parts = source.partitions("node", "movie")
        rows = sum(b.num_rows for p in parts for b in source.read(p))
    finally:
        source.close()
        dead.close()
    assert OneDroppedConnection.calls > 2 and rows == file_tables.nodes["movie"].num_rows


def test_the_benchmarks_baselines_and_server_bound_count_every_relationship(movielens_in_neo4j):
    """``neo4j_io``'s SKIP/LIMIT baseline and the server's count-only bound read the same
    100,836 relationships as graphrec (a bound over fewer rows would flatter the client)."""
    from graphrec.benchmark.neo4j_io import skip_limit_extract, traversal_ceiling

    cfg, _ = movielens_in_neo4j
    for parallelism in (1, 3):
        extract = dataclasses.replace(cfg.extract, parallelism=parallelism)
        bound = traversal_ceiling(dataclasses.replace(cfg, extract=extract))
        assert bound["edges"] == 100_836 and bound["edges_per_s"] > 0
        pages = skip_limit_extract(cfg.extract.neo4j, "movieId", parallelism, 100_836)
        assert pages["edges"] == 100_836
