"""A real Neo4j for the integration tests: the embedded server of ``neo4j-embedded/``.

The session fixture builds it when Maven is there and it is not built yet, starts it on a
free loopback port with a fresh data folder and a random
password, waits until Bolt answers, and stops it at the end. With
``GRAPHREC_TEST_NEO4J_URI`` (and ``GRAPHREC_TEST_NEO4J_PASSWORD``) set, the tests use that
server instead. Without Java or the built server the tests skip and say why, except under
``GRAPHREC_REQUIRE_NEO4J=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

import pytest

from graphrec.benchmark.neo4j_server import SERVER, EmbeddedNeo4j
from graphrec.config import Neo4jConfig
from graphrec.errors import GraphRecError

PASSWORD_ENV = "GRAPHREC_TEST_NEO4J_PASSWORD"


def _unavailable(reason: str):
    if os.environ.get("GRAPHREC_REQUIRE_NEO4J") == "1":
        pytest.fail(f"Neo4j is required here (GRAPHREC_REQUIRE_NEO4J=1) but {reason}")
    pytest.skip(f"no Neo4j server: {reason}")


@pytest.fixture(scope="session")
def neo4j_cfg(tmp_path_factory) -> Neo4jConfig:
    uri = os.environ.get("GRAPHREC_TEST_NEO4J_URI")
    if uri:
        yield Neo4jConfig(uri=uri, password_env=PASSWORD_ENV)
        return
    if shutil.which("java") is None:
        _unavailable("java is not installed")
    if not EmbeddedNeo4j.built() and shutil.which("mvn"):
        # build it once (about 10 s once Maven's cache holds Neo4j's jars)
        subprocess.run(
            ["mvn", "-q", "-B", "-f", str(SERVER / "pom.xml"), "package", "-DskipTests"],
            check=False,
            capture_output=True,
        )
    if not EmbeddedNeo4j.built():
        _unavailable("the server is not built: mvn -q -f neo4j-embedded/pom.xml package")
    server = EmbeddedNeo4j(
        tmp_path_factory.mktemp("neo4j"), secrets.token_urlsafe(16), PASSWORD_ENV, pagecache="256m"
    )
    yield from running(server)


def running(server: EmbeddedNeo4j):
    """A fixture's body for ``server``: its config while it runs (a failure to start fails
    the test in one line); stopped afterwards."""
    try:
        cfg = server.__enter__()
    except GraphRecError as exc:
        pytest.fail(str(exc))
    try:
        yield cfg
    finally:
        server.__exit__()


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_cfg):
    from graphrec.connectors.neo4j import connect

    driver = connect(neo4j_cfg)
    yield driver
    driver.close()
