"""A real Gremlin Server for the integration tests: the TinkerGraph server of
``gremlin-server/``.

The session fixture builds it when Maven is there and it is not built yet, starts it on a
free loopback port, waits until a gremlinpython traversal answers, and stops it at the end.
With ``GRAPHREC_TEST_GREMLIN_URL`` set, the tests use that server instead. Without Java,
gremlinpython or the built server the tests skip and say why, except under
``GRAPHREC_REQUIRE_GREMLIN=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess

import pytest

from graphrec.benchmark.gremlin_server import SERVER, GremlinTestServer
from graphrec.errors import GraphRecError


def _unavailable(reason: str):
    if os.environ.get("GRAPHREC_REQUIRE_GREMLIN") == "1":
        pytest.fail(f"Gremlin Server is required here (GRAPHREC_REQUIRE_GREMLIN=1) but {reason}")
    pytest.skip(f"no Gremlin Server: {reason}")


@pytest.fixture(scope="session")
def gremlin_url(tmp_path_factory) -> str:
    if importlib.util.find_spec("gremlin_python") is None:
        _unavailable("gremlinpython is not installed")
    url = os.environ.get("GRAPHREC_TEST_GREMLIN_URL")
    if url:
        yield url
        return
    if shutil.which("java") is None:
        _unavailable("java is not installed")
    if not GremlinTestServer.built() and shutil.which("mvn"):
        # build it once (about 10 s with a warm Maven cache)
        subprocess.run(
            ["mvn", "-q", "-B", "-f", str(SERVER / "pom.xml"), "package", "-DskipTests"],
            check=False,
            capture_output=True,
        )
    if not GremlinTestServer.built():
        _unavailable(
            "the server is not built: mvn -q -B -f gremlin-server/pom.xml package -DskipTests"
        )
    server = GremlinTestServer(tmp_path_factory.mktemp("gremlin"))
    try:
        url = server.__enter__()
    except GraphRecError as exc:
        pytest.fail(str(exc))
    try:
        yield url
    finally:
        server.__exit__()


@pytest.fixture
def gremlin_g(gremlin_url):
    """A traversal source ``g`` on the server (one connection per test)."""
    from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
    from gremlin_python.process.anonymous_traversal import traversal

    conn = DriverRemoteConnection(gremlin_url, "g", max_content_length=256 * 1024 * 1024)
    try:
        yield traversal().with_remote(conn)
    finally:
        conn.close()
