"""Apache TinkerPop Gremlin Server connections for the source, the sink and ``graphrec load``:
the client, the password, and every server or network fault turned into one line that
names the server and never the secret.

Every request is a traversal sent as Gremlin bytecode (``gremlinpython``), never a script
string: labels and property names come from the config (validated as identifiers) and
every value travels as a typed argument of a step, so no text of the graph or the config is
ever parsed as Gremlin.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from graphrec.config import GremlinConfig
from graphrec.errors import ConfigError, DataError, GraphRecError
from graphrec.redact import redact_text, redact_uri

MAX_FRAME = 256 * 2**20
"""Largest response frame the client accepts (gremlinpython's default is 10 MiB)."""


class GremlinError(GraphRecError):
    """The server refused or failed a request (credentials, a timeout, a lost connection)."""


def server(cfg: GremlinConfig) -> str:
    return redact_uri(cfg.url)


def password(cfg: GremlinConfig) -> str | None:
    """The password (None without a username): env or a mounted file, never YAML."""
    if cfg.username is None:
        return None
    if cfg.password_file:
        try:
            with open(cfg.password_file, encoding="utf-8") as fh:
                value = fh.read().strip()
        except OSError as exc:
            raise ConfigError(
                f"gremlin password_file {cfg.password_file!r}: {exc.strerror or exc}"
            ) from None
        if not value:
            raise ConfigError(f"gremlin password_file {cfg.password_file!r} is empty")
        return value
    value = os.environ.get(cfg.password_env)
    if not value:
        raise ConfigError(
            f"no Gremlin password: set the environment variable {cfg.password_env} "
            "(or gremlin.password_file), or leave gremlin.username unset"
        )
    return value


class Gremlin:
    """One client (a small connection pool) and its traversal source ``g``."""

    def __init__(self, cfg: GremlinConfig, pool_size: int = 2) -> None:
        from gremlin_python.driver.client import Client
        from gremlin_python.structure.graph import Graph

        self.cfg = cfg
        secret = password(cfg)
        kwargs = {"username": cfg.username, "password": secret} if cfg.username else {}
        with translate(cfg, "connecting"):
            self.client = Client(
                cfg.url, cfg.traversal_source, pool_size=pool_size, max_workers=pool_size,
                max_content_length=MAX_FRAME, **kwargs,
            )  # fmt: skip
            self.g = Graph().traversal()  # builds bytecode only; the client sends it
            try:
                self.all(self.g.inject(1))  # the server answers, or one line says why
            except BaseException:  # else its transport is closed by the garbage collector,
                self.close()  # inside whatever event loop runs then (a warning, or worse)
                raise

    def stream(self, t, what: str = "reading") -> Iterator[list]:
        """The results of traversal ``t`` frame by frame (``fetch_rows`` per frame)."""
        with translate(self.cfg, what):
            rs = self.client.submit(
                t.bytecode,
                request_options={
                    "batchSize": self.cfg.fetch_rows,
                    "evaluationTimeout": int(self.cfg.timeout_s * 1000),
                },
            )
            while True:
                chunk = rs.one()
                if chunk is None or (not chunk and rs.done.done() and rs.stream.empty()):
                    break
                yield _values(chunk)

    def all(self, t, what: str = "reading") -> list:
        return [r for chunk in self.stream(t, what) for r in chunk]

    def run(self, t, what: str = "writing") -> None:
        """Run a traversal for its side effects (one request: one transaction where the
        graph has them)."""
        for _ in self.stream(t.none(), what):
            pass

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


LOOKUP_CHUNK = 5_000


def vertex_ids(conn: Gremlin, label: str, key: str, values: list) -> dict:
    """``{key value: vertex id}`` of the vertices of ``label`` whose ``key`` is in ``values``;
    a value held by two vertices is an error."""
    from gremlin_python.process.graph_traversal import __
    from gremlin_python.process.traversal import P, T

    out: dict = {}
    for s in range(0, len(values), LOOKUP_CHUNK):
        chunk = values[s : s + LOOKUP_CHUNK]
        t = (
            conn.g.V().has_label(label).has(key, P.within(*chunk))
            .project("k", "i").by(__.values(key)).by(T.id)
        )  # fmt: skip
        for row in conn.all(t, f"looking up {label}.{key}"):
            if row["k"] in out:
                raise DataError(
                    f"gremlin: two {label} vertices ({out[row['k']]!r}, {row['i']!r}) hold "
                    f"{key} {row['k']!r}: a key must name one vertex; nothing was written"
                )
            out[row["k"]] = row["i"]
    return out


def _values(chunk: list) -> list:
    """Bytecode results arrive as traversers (a value and its bulk): the values, each as
    many times as its bulk."""
    from gremlin_python.process.traversal import Traverser

    out = []
    for r in chunk:
        if isinstance(r, Traverser):
            out.extend([r.object] * max(int(r.bulk), 1))
        else:
            out.append(r)
    return out


@contextlib.contextmanager
def translate(cfg: GremlinConfig, what: str = ""):
    """Any fault of the client or the server as one :class:`GremlinError` line."""
    try:
        yield
    except GraphRecError:
        raise
    except Exception as exc:  # gremlinpython raises many types (aiohttp, asyncio, its own)
        text = redact_text(str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__)
        secret = None
        with contextlib.suppress(ConfigError):
            secret = password(cfg)
        if secret:
            text = text.replace(secret, "***")
        kind = type(exc).__name__
        if "ClientConnectorError" in kind or "Connect" in kind or "refused" in text.lower():
            text = f"cannot connect ({text})"
        doing = f" {what}" if what else ""
        raise GremlinError(f"gremlin at {server(cfg)}{doing}: {text[:300]}") from None
