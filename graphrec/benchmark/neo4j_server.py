"""Start and stop the embedded Neo4j built in the repository's ``neo4j-embedded/``: the
server the Neo4j I/O benchmark measures against (the integration tests start it too).
It runs from a repository checkout; an installed package has no server to start."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from graphrec.config import Neo4jConfig
from graphrec.errors import GraphRecError

SERVER = Path(__file__).resolve().parents[2] / "neo4j-embedded"  # in a checkout
GDS_PLUGINS = SERVER / "gds" / "target" / "plugins"
"""Neo4j Graph Data Science's jars: ``mvn -q -f neo4j-embedded/gds/pom.xml package``."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedNeo4j:
    """``with EmbeddedNeo4j(data_dir, password, password_env) as cfg: ...``"""

    def __init__(
        self,
        data: Path,
        password: str,
        password_env: str,
        heap: str = "2g",
        pagecache: str = "512m",
        timeout: float = 180,
        plugins: Path | None = None,
    ) -> None:
        """``plugins``: a plugin folder (e.g. :data:`GDS_PLUGINS`): on the classpath and
        Neo4j's plugin directory, its ``gds.*`` procedures allowed."""
        self.data, self.password, self.password_env = Path(data), password, password_env
        self.heap, self.pagecache, self.timeout = heap, pagecache, timeout
        self.plugins = plugins
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def built() -> bool:
        return (SERVER / "target" / "classpath.txt").is_file()

    @staticmethod
    def _classpath() -> str:
        deps = (SERVER / "target" / "classpath.txt").read_text().strip()
        return f"{SERVER / 'target' / 'classes'}:{deps}"

    def admin_import(self, args: list[str], heap: str = "2g") -> dict:
        """Run ``neo4j-admin`` (``args``: :func:`graphrec.loaders.neo4j_import.
        import_command`) on this server's home, before the server starts: the importer of
        the same Neo4j jars (``org.neo4j.cli.AdminTool``, on the embedded classpath).
        Returns the seconds it took and the counts it reports."""
        import re

        if not self.built():
            raise GraphRecError(f"build the server first: mvn -q -f {SERVER}/pom.xml package")
        if self.proc is not None:
            raise GraphRecError("neo4j-admin import needs the server stopped")
        home, conf = self.data / "db", self.data / "conf"
        home.mkdir(parents=True, exist_ok=True)
        conf.mkdir(exist_ok=True)
        log_path = self.data.parent / f"{self.data.name}-import.log"
        t0 = time.perf_counter()
        with open(log_path, "w") as log:
            rc = subprocess.run(
                ["java", f"-Xmx{heap}", "-cp", self._classpath(), "org.neo4j.cli.AdminTool"]
                + list(args),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(conf)},
            ).returncode
        seconds = time.perf_counter() - t0
        text = log_path.read_text(errors="replace")
        if rc != 0 or "IMPORT DONE" not in text:
            tail = " | ".join(line.strip() for line in text[-800:].splitlines() if line.strip())
            raise GraphRecError(f"neo4j-admin database import failed (exit {rc}): {tail}")
        counts = {
            what: int(n.replace(",", ""))
            for n, what in re.findall(r"^\s*([\d,]+) (nodes|relationships|properties)$", text, re.M)
        }
        return {"seconds": seconds, **counts}

    def __enter__(self) -> Neo4jConfig:
        if not self.built():
            raise GraphRecError(f"build the server first: mvn -q -f {SERVER}/pom.xml package")
        port = free_port()
        self.data.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data.parent / f"{self.data.name}.log"
        cp = self._classpath()
        extra: list[str] = []
        if self.plugins is not None:
            if not any(Path(self.plugins).glob("*.jar")):
                raise GraphRecError(f"no plugin jars in {self.plugins}")
            cp = f"{cp}:{Path(self.plugins).resolve()}/*"
            extra = ["--plugins", str(Path(self.plugins).resolve())]
        os.environ[self.password_env] = self.password
        log = open(self.log_path, "w")
        try:
            self.proc = subprocess.Popen(
                [
                    "java",
                    f"-Xmx{self.heap}",
                    "-cp",
                    cp,
                    "io.graphrec.EmbeddedNeo4j",
                    "--data",
                    str(self.data / "db"),
                    "--port",
                    str(port),
                    "--pagecache",
                    self.pagecache,
                    *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NEO4J_PASSWORD": self.password},
            )
        except OSError as exc:
            raise GraphRecError(f"cannot start the embedded Neo4j (java): {exc.strerror}") from None
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:  # an error or an interrupt: no server is left behind
            self.__exit__()
            raise
        return Neo4jConfig(uri=f"bolt://127.0.0.1:{port}", password_env=self.password_env)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while "READY" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise GraphRecError(f"Neo4j exited early: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise GraphRecError(f"Neo4j did not start within {self.timeout:.0f} s")
            time.sleep(0.5)

    def _log_tail(self) -> str:
        """The end of the server's log as one line, without the password."""
        text = self.log_path.read_text(errors="replace")[-1000:].replace(self.password, "***")
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
