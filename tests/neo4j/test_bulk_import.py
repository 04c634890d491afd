"""MovieLens through Neo4j's offline bulk importer: ``graphrec load --import-files`` ->
the real ``neo4j-admin database import full`` (the importer of the embedded server's Neo4j
jars) -> a server on the imported store -> graphrec's extraction equals the file source,
titles with commas and quotes, int ids and float ratings included."""

import dataclasses
import secrets
import shutil
from pathlib import Path

import pytest

from graphrec.benchmark.neo4j_server import EmbeddedNeo4j
from graphrec.config import load_config
from graphrec.connectors.neo4j import connect
from graphrec.errors import GraphRecError
from graphrec.loaders import extract
from graphrec.loaders.files import FileSource
from graphrec.loaders.neo4j import Neo4jSource
from graphrec.loaders.neo4j_import import import_command, write_import_files
from tests.neo4j.conftest import _unavailable

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.neo4j


def canonical(table):
    return table.sort_by([(c, "ascending") for c in table.column_names[:2]])


def test_imported_graph_extracts_as_the_files(tmp_path):
    if shutil.which("java") is None or not EmbeddedNeo4j.built():
        _unavailable("java or the built server (mvn -q -f neo4j-embedded/pom.xml package)")
    env = "GRAPHREC_TEST_IMPORT_PASSWORD"
    cfg = load_config(
        ROOT / "configs/movielens-neo4j.yaml", [f"extract.root={ROOT / 'data/movielens-small'}"]
    )
    files = extract(FileSource(dataclasses.replace(cfg.extract, source="files")), progress=False)
    out = write_import_files(files, cfg.extract, tmp_path / "import")
    server = EmbeddedNeo4j(tmp_path / "neo4j", secrets.token_urlsafe(16), env, pagecache="256m")
    before = set(Path.cwd().iterdir())
    try:
        counts = server.admin_import(import_command(out), heap="1g")
    except GraphRecError as exc:
        pytest.fail(str(exc))
    assert set(Path.cwd().iterdir()) == before  # nothing written where it was run from
    assert (out.root / "import.report").is_file()
    users, movies = files.nodes["user"].num_rows, files.nodes["movie"].num_rows
    assert counts["nodes"] == users + movies and counts["relationships"] == 100_836
    with server as ncfg:
        ecfg = dataclasses.replace(cfg.extract, neo4j=ncfg, parallelism=2)
        source = Neo4jSource(ecfg)
        try:
            got = extract(source, {"rates": ["rating"]}, progress=False)
        finally:
            source.close()
    cols = ["src", "dst", "rating"]
    assert canonical(got.edges["rates"].select(cols)).equals(
        canonical(files.edges["rates"].select(cols))
    )
    for ntype in ("user", "movie"):
        want = files.nodes[ntype].sort_by("id")
        assert got.nodes[ntype].sort_by("id").select(want.column_names).equals(want), ntype
    # nothing is imported twice: the database exists now, and the importer refuses
    with pytest.raises(GraphRecError, match="neo4j-admin database import failed"):
        server.admin_import(import_command(out), heap="1g")
    # the imported store served again, with the password it already has
    with server as ncfg:
        driver = connect(ncfg)
        try:
            with driver.session() as s:
                assert s.run("MATCH ()-[r:RATED]->() RETURN count(r)").single()[0] == 100_836
        finally:
            driver.close()
