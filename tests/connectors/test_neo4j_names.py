"""Pure parts of the Neo4j connector: identifier checks and where the password comes from."""

import pytest

from graphrec.config import Neo4jConfig
from graphrec.connectors.neo4j import password, q
from graphrec.errors import ConfigError


@pytest.mark.parametrize("name", ["User", "RATED", "movie_id", "_x1"])
def test_valid_names_are_backtick_quoted(name):
    assert q(name) == f"`{name}`"


@pytest.mark.parametrize("name", ["", "1abc", "a b", "x`y", "Movie) DETACH DELETE (n", "a-b"])
def test_names_that_could_change_a_query_are_refused(name):
    with pytest.raises(ConfigError, match="not a valid Neo4j identifier"):
        q(name, "label")


def test_password_from_a_mounted_file_wins(tmp_path, monkeypatch):
    secret = tmp_path / "password"
    secret.write_text("from-the-secret\n")
    monkeypatch.setenv("PW_VAR", "from-the-env")
    assert (
        password(Neo4jConfig(password_env="PW_VAR", password_file=str(secret))) == "from-the-secret"
    )
    assert password(Neo4jConfig(password_env="PW_VAR")) == "from-the-env"


def test_missing_password_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PW_NONE", raising=False)
    with pytest.raises(ConfigError, match="set the environment variable PW_NONE"):
        password(Neo4jConfig(password_env="PW_NONE"))
    with pytest.raises(ConfigError, match="password_file .*missing"):
        password(Neo4jConfig(password_file=str(tmp_path / "missing")))
