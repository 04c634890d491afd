"""Neo4j connection, identifier quoting and error translation.

* Labels, relationship types and property names come from config: each is checked against
  ``[A-Za-z_][A-Za-z0-9_]*`` and backtick-quoted; nothing from config is formatted raw into
  Cypher, and every value travels as a query parameter.
* The password comes from an environment variable or a mounted file, never from YAML, and is
  never logged. Every URI in a message goes through :func:`~graphrec.redact.redact_uri`, and
  every driver message through :func:`scrub` (URI userinfo and the password masked).
* Driver errors become one-line :class:`~graphrec.errors.GraphRecError` messages: bad input
  (a wrong password, database, URI, or a port where no Neo4j answers) is a
  :class:`Neo4jError` (exit status 2); a server that cannot be reached, goes away or fails
  during the run is a :class:`Neo4jFault`, also a :class:`~graphrec.errors.RunError` (exit
  status 1).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from graphrec.config import IDENTIFIER, Neo4jConfig
from graphrec.errors import ConfigError, GraphRecError, RunError
from graphrec.redact import redact_text, redact_uri

IDENT = IDENTIFIER  # one rule for every name from config (graphrec.config)

# The driver logs its own warnings (retries, defunct connections); without a handler they
# would reach stderr through logging's last resort as extra lines next to graphrec's one.
# Applications that configure logging still receive them through the root logger.
logging.getLogger("neo4j").addHandler(logging.NullHandler())


class Neo4jError(GraphRecError):
    """Neo4j could not be used: unreachable, wrong credentials, missing schema."""


class Neo4jFault(Neo4jError, RunError):
    """The server could not be reached, went away, or failed during the run (exit status 1)."""


def q(name: str, what: str = "name") -> str:
    """Backtick-quote a label, type or property name after checking it."""
    if not isinstance(name, str) or not IDENT.match(name):
        raise ConfigError(
            f"{what} {name!r} is not a valid Neo4j identifier ([A-Za-z_][A-Za-z0-9_]*)"
        )
    return f"`{name}`"


def quote_any(name: str) -> str:
    """Backtick-quote a name read *from the database* (any characters; a backtick is
    doubled, Cypher's escape), for queries about names graphrec did not choose."""
    return "`" + str(name).replace("`", "``") + "`"


def server(cfg: Neo4jConfig) -> str:
    """The server as shown in messages: its URI without userinfo."""
    return redact_uri(cfg.uri)


def password(cfg: Neo4jConfig) -> str:
    if cfg.password_file:
        path = cfg.password_file
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read().strip()
        except IsADirectoryError:
            raise ConfigError(
                f"neo4j password_file {path!r} is a folder; name the file that holds the "
                "password (the Secret's key inside the mounted folder)"
            ) from None
        except OSError as exc:
            raise ConfigError(f"neo4j password_file {path!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"neo4j password_file {path!r} is not UTF-8 text") from None
        if not value:
            raise ConfigError(f"neo4j password_file {path!r} is empty")
        return value
    value = os.environ.get(cfg.password_env)
    if value is None:
        raise ConfigError(
            f"no Neo4j password: set the environment variable {cfg.password_env} "
            "(or neo4j.password_file)"
        )
    if not value.strip():
        raise ConfigError(
            f"no Neo4j password: the environment variable {cfg.password_env} is empty"
        )
    return value


def _known_password(cfg: Neo4jConfig) -> str | None:
    """The password, if it can be had without raising (to mask it in driver messages)."""
    try:
        return password(cfg)
    except (GraphRecError, OSError, ValueError):
        return None


def scrub(text: str, cfg: Neo4jConfig | None = None) -> str:
    """``text`` as one line, with URI userinfo (and ``cfg``'s password) masked."""
    text = " ".join(line.strip() for line in str(text).splitlines() if line.strip())
    text = redact_text(text)
    if cfg is not None:
        secret = _known_password(cfg)
        if secret and len(secret) >= 4:  # shorter ones would mask ordinary words
            text = text.replace(secret, "***")
    return text


def check_uri(cfg: Neo4jConfig) -> None:
    """Refuse, before any connection, a URI the connector must not use (checked again
    here: a ``Neo4jConfig`` may have been changed after it was made)."""
    cfg.check_uri()


def connect(cfg: Neo4jConfig):
    """A verified driver, already checked against ``cfg.database``; raises one line
    (:class:`ConfigError`, :class:`Neo4jError` or :class:`Neo4jFault`) otherwise."""
    import neo4j

    check_uri(cfg)
    secret = password(cfg)
    try:
        driver = neo4j.GraphDatabase.driver(
            cfg.uri, auth=(cfg.user, secret), notifications_min_severity="OFF"
        )
    except (ValueError, TypeError, neo4j.exceptions.DriverError) as exc:
        raise ConfigError(f"neo4j uri {server(cfg)!r}: {scrub(_text(exc), cfg)}") from None
    try:
        with translate(cfg):
            driver.verify_connectivity()
            with open_session(driver, cfg) as session:
                session.run("RETURN 1").consume()  # a wrong database name fails here
    except ValueError as exc:  # an address that cannot be resolved: 'host:notaport'
        close_quietly(driver)
        raise ConfigError(f"neo4j uri {server(cfg)!r}: {scrub(_text(exc), cfg)}") from None
    except BaseException:
        close_quietly(driver)
        raise
    return driver


def close_quietly(resource) -> None:
    """Close a driver or session while another exception (an error, an interrupt) is on
    its way up: a failure to close must neither replace it nor chain a second traceback.
    A second interrupt during the close is dropped too; the first one is still raised."""
    if resource is None:
        return
    with contextlib.suppress(BaseException):
        resource.close()


@contextlib.contextmanager
def open_session(driver, cfg: Neo4jConfig, **config) -> Iterator:
    """``driver.session(database=cfg.database)`` that cannot raise over the exception
    leaving it (see :func:`guarded`)."""
    with guarded(driver.session(database=cfg.database, **config)) as session:
        yield session


@contextlib.contextmanager
def guarded(session) -> Iterator:
    """Use ``session`` and close it in a way that cannot raise over the exception leaving
    the block: an error closes it quietly, an interrupt abandons it (:func:`abandon`)."""
    try:
        yield session
    except Exception:
        close_quietly(session)
        raise
    except BaseException:
        abandon(session)
        raise
    close_quietly(session)  # everything was consumed; a failing goodbye changes nothing


def abandon(session) -> None:
    """Drop a session whose connection was interrupted mid-message: its socket is closed
    without a goodbye (the server rolls back the open transaction), never reused, and
    nothing is sent on it (a rollback on a half-read connection could wait forever)."""
    if session is None:
        return
    with contextlib.suppress(BaseException):
        cancel = getattr(session, "_handle_cancellation", None)
        if cancel is not None:
            cancel(message="graphrec interrupt")
            session._closed = True
        else:
            session.close()


@contextlib.contextmanager
def translate(cfg: Neo4jConfig, during: str | None = None) -> Iterator[None]:
    """Turn driver exceptions into one-line errors that name the server (``during``: what
    was going on, e.g. ``reading [:RATED]``)."""
    import neo4j.exceptions as ne

    where = f"neo4j at {server(cfg)}"
    tail = f" (while {during})" if during else ""
    try:
        yield
    except ne.AuthError:
        raise Neo4jError(
            f"{where}: authentication failed for user {cfg.user!r} "
            f"(check {cfg.password_file or '$' + cfg.password_env})"
        ) from None
    except ne.ClientError as exc:
        if exc.code == "Neo.ClientError.Database.DatabaseNotFound":
            raise Neo4jError(
                f"{where} has no database {cfg.database!r} (check neo4j.database)"
            ) from None
        raise Neo4jError(f"{where}: {exc.code}: {scrub(_text(exc), cfg)}{tail}") from None
    except ne.Neo4jError as exc:  # transient after retries, or a database-side failure
        raise Neo4jFault(f"{where}: {exc.code}: {scrub(_text(exc), cfg)}{tail}") from None
    except ne.UnsupportedServerProduct:
        raise Neo4jError(
            f"{where} is not a Neo4j server: what answers there does not speak Bolt "
            "(check the host and port; Bolt is usually port 7687)"
        ) from None
    except ne.ConfigurationError as exc:
        raise ConfigError(f"neo4j uri {server(cfg)!r}: {scrub(_text(exc), cfg)}") from None
    except (ne.ServiceUnavailable, ne.SessionExpired) as exc:
        text = scrub(_text(exc), cfg)
        if "looks like HTTP" in text:
            raise Neo4jError(
                f"{where} is not a Bolt server: it answers HTTP (is this the browser port "
                "7474? Bolt is usually port 7687)"
            ) from None
        raise Neo4jFault(f"{where} is unreachable: {text}{tail}") from None
    except ne.DriverError as exc:  # a broken record, a result or transaction misuse
        name = type(exc).__name__
        raise Neo4jFault(f"{where}: {name}: {scrub(_text(exc), cfg)}{tail}") from None


def _text(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text if text.strip() else type(exc).__name__


def labels(session) -> set[str]:
    return {r["label"] for r in session.run("CALL db.labels() YIELD label RETURN label")}


def relationship_types(session) -> set[str]:
    rows = session.run("CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType")
    return {r["relationshipType"] for r in rows}
