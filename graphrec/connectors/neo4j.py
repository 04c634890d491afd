"""Neo4j connection, identifier quoting and error translation.

* Labels, relationship types and property names come from config: each is checked against
  ``[A-Za-z_][A-Za-z0-9_]*`` and backtick-quoted; nothing from config is formatted raw into
  Cypher, and every value travels as a query parameter.
* The password comes from an environment variable or a mounted file, never from YAML, and is
  never logged.
* Driver errors become one-line :class:`~graphrec.errors.GraphRecError` messages.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

from graphrec.config import Neo4jConfig
from graphrec.errors import ConfigError, GraphRecError

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Neo4jError(GraphRecError):
    """Neo4j could not be used: unreachable, wrong credentials, missing schema."""


def q(name: str, what: str = "name") -> str:
    """Backtick-quote a label, type or property name after checking it."""
    if not isinstance(name, str) or not IDENT.match(name):
        raise ConfigError(
            f"{what} {name!r} is not a valid Neo4j identifier ([A-Za-z_][A-Za-z0-9_]*)"
        )
    return f"`{name}`"


def password(cfg: Neo4jConfig) -> str:
    if cfg.password_file:
        try:
            return open(cfg.password_file, encoding="utf-8").read().strip()
        except OSError as exc:
            raise ConfigError(
                f"neo4j password_file {cfg.password_file!r}: {exc.strerror}"
            ) from None
    value = os.environ.get(cfg.password_env)
    if value is None:
        raise ConfigError(
            f"no Neo4j password: set the environment variable {cfg.password_env} "
            "(or neo4j.password_file)"
        )
    return value


def connect(cfg: Neo4jConfig):
    """A verified driver; raises :class:`Neo4jError` with one line when it cannot connect."""
    import neo4j

    try:
        driver = neo4j.GraphDatabase.driver(
            cfg.uri, auth=(cfg.user, password(cfg)), notifications_min_severity="OFF"
        )
    except (ValueError, neo4j.exceptions.ConfigurationError) as exc:
        raise ConfigError(f"neo4j uri {cfg.uri!r}: {exc}") from None
    try:
        with translate(cfg):
            driver.verify_connectivity()
    except BaseException:
        driver.close()
        raise
    return driver


@contextlib.contextmanager
def translate(cfg: Neo4jConfig) -> Iterator[None]:
    """Turn driver exceptions into one-line errors that name the server."""
    import neo4j.exceptions as ne

    try:
        yield
    except ne.AuthError:
        raise Neo4jError(
            f"neo4j at {cfg.uri}: authentication failed for user {cfg.user!r} "
            f"(check {cfg.password_file or '$' + cfg.password_env})"
        ) from None
    except ne.ServiceUnavailable as exc:
        raise Neo4jError(f"neo4j at {cfg.uri} is unreachable: {_first_line(exc)}") from None
    except ne.ClientError as exc:
        raise Neo4jError(f"neo4j at {cfg.uri}: {exc.code}: {_first_line(exc)}") from None
    except ne.Neo4jError as exc:
        raise Neo4jError(f"neo4j at {cfg.uri}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def labels(session) -> set[str]:
    return {r["label"] for r in session.run("CALL db.labels() YIELD label RETURN label")}


def relationship_types(session) -> set[str]:
    rows = session.run("CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType")
    return {r["relationshipType"] for r in rows}
