"""ArangoDB connections for the source and the sink: the client, the password, and every
server or network fault turned into one line that names the server and never the secret.

python-arango raises a different exception class per operation (a wrong password is
``AQLQueryExecuteError`` on a query, ``DocumentCountError`` on a count); :func:`translate`
maps them by HTTP status and ArangoDB error number instead (401/11: credentials; 1203: a
collection that does not exist; 1600: a lost cursor).

Authentication (``arango.auth``): ``basic`` sends the user and password with every request;
``jwt`` exchanges them once at ``/_open/auth`` for a token the client renews when the server
answers 401; ``token`` sends a JWT issued for the user (the secret is the token).
"""

from __future__ import annotations

import contextlib

from graphrec.config import ArangoConfig
from graphrec.connectors.neo4j import password as _password
from graphrec.errors import ConfigError, GraphRecError
from graphrec.redact import redact_uri

LOOKUP = "FOR d IN @@c FILTER d.@k IN @ids RETURN [d.@k, d._id]"
"""The documents of some key attribute values: the sink resolves ids to ``_id`` with it,
the source names the documents of a duplicated id."""


class ArangoError(GraphRecError):
    """The server refused something (credentials, a missing collection): one line."""


def server(cfg: ArangoConfig) -> str:
    return redact_uri(cfg.url)


def connect(cfg: ArangoConfig, parallelism: int = 1):
    """The database handle (python-arango), checked against the server once: a wrong
    password, an unreachable host or a missing database fails here in one line."""
    from arango import ArangoClient
    from arango.http import DefaultHTTPClient

    secret = _password(cfg)  # the same rules as Neo4j's: env or a mounted file, never YAML
    http = DefaultHTTPClient(
        request_timeout=60, retry_attempts=0, backoff_factor=0, pool_maxsize=max(10, parallelism)
    )
    client = ArangoClient(hosts=cfg.url, http_client=http, resolver_max_tries=1)
    if cfg.auth == "token":
        login = {"user_token": secret}
    else:
        login = {"username": cfg.username, "password": secret, "auth_method": cfg.auth}
    with translate(cfg):
        db = client.db(cfg.database, **login)
        if cfg.auth == "jwt":
            # python-arango renews a token on 401 only while its own clock says the token
            # is still valid; a token that expired during a long read or write would end
            # the job instead. Renew whenever the server refuses it.
            db.conn.exp_leeway = 2**31
        db.version()
    return db


def _secret_source(cfg: ArangoConfig) -> str:
    return f"${cfg.password_env} or arango.password_file"


@contextlib.contextmanager
def translate(cfg: ArangoConfig, doing: str = ""):
    """Server and network faults inside the block as one-line graphrec errors."""
    import jwt
    from arango.exceptions import (
        ArangoClientError,
        ArangoServerError,
        JWTExpiredError,
        JWTRefreshError,
    )

    where = f"arango at {server(cfg)}" + (f", {doing}" if doing else "")
    try:
        yield
    except ArangoServerError as exc:
        if exc.http_code == 401 or exc.error_code == 11:
            who = "the token" if cfg.auth == "token" else f"user {cfg.username!r}"
            what = "token" if cfg.auth == "token" else "password"
            raise ConfigError(
                f"{where}: {who} was refused (wrong {what} in {_secret_source(cfg)}, "
                f"or no access to database {cfg.database!r})"
            ) from None
        if exc.error_code == 1228:
            raise ArangoError(f"{where}: database {cfg.database!r} does not exist") from None
        raise ArangoError(f"{where}: {exc.error_message or exc} (error {exc.error_code})") from None
    except JWTExpiredError:
        raise ConfigError(
            f"{where}: the token in {_secret_source(cfg)} has expired; issue a new one"
        ) from None
    except JWTRefreshError:  # the server refused a user token, which cannot be renewed
        raise ConfigError(
            f"{where}: the token in {_secret_source(cfg)} was refused (expired, or not "
            f"signed for this server, or no access to database {cfg.database!r})"
        ) from None
    except jwt.PyJWTError as exc:  # only its class: the text could quote the token
        raise ConfigError(
            f"{where}: the token in {_secret_source(cfg)} is not a JWT the client accepts "
            f"({type(exc).__name__}; it needs iss=arangodb, iat and exp)"
        ) from None
    except (ArangoClientError, ConnectionError, OSError) as exc:
        raise ArangoError(f"{where}: cannot reach the server ({type(exc).__name__})") from None
    except Exception as exc:  # requests' own errors (RetryError, ConnectionError)
        if type(exc).__module__.startswith(("requests", "urllib3")):
            raise ArangoError(f"{where}: cannot reach the server ({type(exc).__name__})") from None
        raise
