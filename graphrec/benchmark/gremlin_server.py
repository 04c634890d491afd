"""Start and stop the Apache TinkerPop Gremlin Server built in the repository's
``gremlin-server/``: one in-memory TinkerGraph ``graph``, its traversal source ``g``, on a
free loopback port (the integration tests start it). It runs from a repository checkout; an
installed package has no server to start."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from graphrec.errors import GraphRecError

SERVER = Path(__file__).resolve().parents[2] / "gremlin-server"  # in a checkout
BUILD = f"mvn -q -B -f {SERVER}/pom.xml package -DskipTests"


class GremlinServerError(GraphRecError):
    """The test Gremlin Server could not be started (not built, no java, did not answer)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GremlinTestServer:
    """``with GremlinTestServer() as url: ...``: ``url`` is ``ws://127.0.0.1:PORT/gremlin``.

    The server's config (``gremlin-server/conf/gremlin-server.yaml`` with this port and
    absolute paths) and its log go to ``workdir`` (a temporary folder, removed at the end,
    when none is given)."""

    def __init__(self, workdir: Path | None = None, heap: str = "1g", timeout: float = 120) -> None:
        self.workdir = Path(workdir) if workdir is not None else None
        self.heap, self.timeout = heap, timeout
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self._tmp: str | None = None

    @classmethod
    def built(cls) -> bool:
        return (SERVER / "target" / "classpath.txt").is_file()

    def _write_config(self, folder: Path, port: int) -> Path:
        text = (SERVER / "conf" / "gremlin-server.yaml").read_text()
        text, n = re.subn(r"(?m)^port:\s*\d+\s*$", f"port: {port}", text)
        if n != 1:
            raise GremlinServerError(
                f"{SERVER}/conf/gremlin-server.yaml has no single 'port:' line"
            )
        text = re.sub(r"(?<![\w/.])conf/", f"{SERVER / 'conf'}/", text)  # absolute paths
        path = folder / "gremlin-server.yaml"
        path.write_text(text)
        return path

    def __enter__(self) -> str:
        if not self.built():
            raise GremlinServerError(f"build the Gremlin Server first: {BUILD}")
        if shutil.which("java") is None:
            raise GremlinServerError("cannot start the Gremlin Server: java is not installed")
        if self.workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="graphrec-gremlin-")
            folder = Path(self._tmp)
        else:
            folder = self.workdir
            folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        config = self._write_config(folder, port)
        self.log_path = folder / "gremlin-server.log"
        cp = (SERVER / "target" / "classpath.txt").read_text().strip()
        log = open(self.log_path, "w")
        try:
            self.proc = subprocess.Popen(
                [
                    "java",
                    f"-Xmx{self.heap}",
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                    "-Dorg.slf4j.simpleLogger.log.org.apache.tinkerpop.gremlin.server.GremlinServer=info",
                    "-cp",
                    cp,
                    "org.apache.tinkerpop.gremlin.server.GremlinServer",
                    str(config),
                ],
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
            )
        except OSError as exc:
            self._cleanup()
            raise GremlinServerError(
                f"cannot start the Gremlin Server (java): {exc.strerror}"
            ) from None
        finally:
            log.close()
        self.url = f"ws://127.0.0.1:{port}/gremlin"
        try:
            self._wait_ready(port)
        except BaseException:  # an error or an interrupt: no server is left behind
            self.__exit__()
            raise
        return self.url

    def _wait_ready(self, port: int) -> None:
        """Until a real gremlinpython connection runs ``g.V().limit(1).toList()``."""
        from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
        from gremlin_python.process.anonymous_traversal import traversal

        deadline = time.monotonic() + self.timeout
        last = "no answer"
        while True:
            if self.proc.poll() is not None:
                status = self.proc.returncode
                raise GremlinServerError(
                    f"the Gremlin Server exited early (status {status}): {self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise GremlinServerError(
                    f"the Gremlin Server did not answer within {self.timeout:.0f} s ({last})"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                time.sleep(0.25)
                continue
            conn = None
            try:
                conn = DriverRemoteConnection(self.url, "g", pool_size=1)
                traversal().with_remote(conn).V().limit(1).toList()
                return
            except Exception as exc:  # the server is up but not serving `g` yet
                last = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                time.sleep(0.5)
            finally:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass

    def _log_tail(self) -> str:
        """The end of the server's log as one line."""
        text = self.log_path.read_text(errors="replace")[-1000:]
        return (
            " | ".join(line.strip() for line in text.splitlines() if line.strip()) or "(empty log)"
        )

    def __exit__(self, *exc) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        elif proc is not None:
            proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
