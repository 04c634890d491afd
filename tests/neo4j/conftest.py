"""A real Neo4j for the integration tests: the embedded server of ``neo4j-embedded/``.

The session fixture starts it on a free loopback port with a fresh data folder and a random
password, waits until Bolt answers, and stops it at the end. With
``GRAPHREC_TEST_NEO4J_URI`` (and ``GRAPHREC_TEST_NEO4J_PASSWORD``) set, the tests use that
server instead. Without Java or the built server the tests skip and say why, except under
``GRAPHREC_REQUIRE_NEO4J=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from graphrec.config import Neo4jConfig

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "neo4j-embedded"
PASSWORD_ENV = "GRAPHREC_TEST_NEO4J_PASSWORD"


def _unavailable(reason: str):
    if os.environ.get("GRAPHREC_REQUIRE_NEO4J") == "1":
        pytest.fail(f"Neo4j is required here (GRAPHREC_REQUIRE_NEO4J=1) but {reason}")
    pytest.skip(f"no Neo4j server: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def neo4j_cfg(tmp_path_factory) -> Neo4jConfig:
    uri = os.environ.get("GRAPHREC_TEST_NEO4J_URI")
    if uri:
        yield Neo4jConfig(uri=uri, password_env=PASSWORD_ENV)
        return
    classpath = SERVER / "target" / "classpath.txt"
    if shutil.which("java") is None:
        _unavailable("java is not installed")
    if not classpath.is_file():
        _unavailable(f"the server is not built: mvn -q -f {SERVER.name}/pom.xml package")
    password = secrets.token_urlsafe(16)
    os.environ[PASSWORD_ENV] = password
    port = _free_port()
    data = tmp_path_factory.mktemp("neo4j-data")
    log = open(data.parent / "neo4j.log", "w")
    cp = f"{SERVER / 'target' / 'classes'}:{classpath.read_text().strip()}"
    proc = subprocess.Popen(
        [
            "java",
            "-Xmx2g",
            "-cp",
            cp,
            "io.graphrec.EmbeddedNeo4j",
            "--data",
            str(data),
            "--port",
            str(port),
            "--pagecache",
            "256m",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NEO4J_PASSWORD": password},
    )
    cfg = Neo4jConfig(uri=f"bolt://127.0.0.1:{port}", password_env=PASSWORD_ENV)
    try:
        deadline = time.monotonic() + 180
        while "READY" not in Path(log.name).read_text():
            if proc.poll() is not None:
                pytest.fail(f"Neo4j exited early:\n{Path(log.name).read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("Neo4j did not start within 180 s")
            time.sleep(0.5)
        import neo4j

        with neo4j.GraphDatabase.driver(cfg.uri, auth=("neo4j", password)) as d:
            d.verify_connectivity()
        yield cfg
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_cfg):
    from graphrec.connectors.neo4j import connect

    driver = connect(neo4j_cfg)
    yield driver
    driver.close()
