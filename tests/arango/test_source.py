"""The ArangoDB source against the protocol STAND-IN (tests/arango/standin.py, not a real
ArangoDB server), driven by the real python-arango client: the same tables as the file
source, several partitions and cursor batches, and every fault in one line."""

from __future__ import annotations

import csv
import time
from collections import Counter

import pyarrow as pa
import pytest

from graphrec.config import ExtractConfig, from_dict
from graphrec.errors import ConfigError, DataError, GraphRecError
from graphrec.loaders import FileSource, extract, make_source
from tests.arango.standin import ArangoStandIn
from tests.conftest import tiny_config_dict


def load_tiny(standin: ArangoStandIn, root) -> None:
    movies = list(csv.DictReader(open(root / "movies.csv")))
    ratings = list(csv.DictReader(open(root / "ratings.csv")))
    standin.add("Movie", [
        {"_key": m["movieId"], "movieId": int(m["movieId"]), "title": m["title"],
         "genres": m["genres"]} for m in movies
    ])  # fmt: skip
    users = sorted({int(r["userId"]) for r in ratings})
    standin.add("User", [{"_key": str(u), "userId": u} for u in users])
    standin.add("Rates", [
        {"_key": str(i), "_from": f"User/{r['userId']}", "_to": f"Movie/{r['movieId']}",
         "rating": float(r["rating"]), "timestamp": int(r["timestamp"])}
        for i, r in enumerate(ratings)
    ], edge=True)  # fmt: skip


def arango_extract_cfg(tiny_root, tmp_path, url: str, **arango) -> ExtractConfig:
    data = tiny_config_dict(tiny_root, tmp_path)["extract"]
    data["source"] = "arango"
    data["parallelism"] = 3
    data["nodes"]["user"]["label"] = "User"
    data["nodes"]["movie"]["label"] = "Movie"
    data["edges"]["rates"]["type"] = "Rates"
    data["arango"] = {"url": url, "database": "graphrec", "fetch_rows": 7, **arango}
    return from_dict(ExtractConfig, data, "extract")


@pytest.fixture
def standin(tiny_root, monkeypatch):
    monkeypatch.setenv("ARANGO_PASSWORD", "pw")
    with ArangoStandIn() as s:
        load_tiny(s, tiny_root)
        yield s


def sorted_table(t: pa.Table, by: list[str]) -> pa.Table:
    return t.sort_by([(c, "ascending") for c in by])


def test_the_same_tables_as_the_file_source(standin, tiny_root, tmp_path):
    cfg = arango_extract_cfg(tiny_root, tmp_path, standin.url)
    source = make_source(cfg)
    got = extract(source, progress=False)
    file_cfg = from_dict(ExtractConfig, tiny_config_dict(tiny_root, tmp_path)["extract"], "extract")
    want = extract(FileSource(file_cfg), progress=False)
    for name in ("rates",):
        by = ["src", "dst"]
        assert sorted_table(got.edges[name], by).equals(sorted_table(want.edges[name], by))
    assert sorted_table(got.nodes["movie"], ["id"]).equals(
        sorted_table(want.nodes["movie"], ["id"])
    )
    # three key ranges per collection, each read as several cursor batches of 7 rows
    assert len(source.partitions("edge", "rates")) == 3
    assert any(
        m == "POST" and p.startswith("/_db/graphrec/_api/cursor/") for m, p in standin.requests
    )


def test_a_wrong_password_is_one_line(standin, tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ARANGO_PASSWORD", "not-it")
    source = make_source(arango_extract_cfg(tiny_root, tmp_path, standin.url))
    with pytest.raises(ConfigError, match="user 'root' was refused") as info:
        source.partitions("node", "movie")
    assert "not-it" not in str(info.value)


def test_jwt_auth_exchanges_the_password_and_renews_an_expired_token(standin, tiny_root, tmp_path):
    standin.jwt_lifetime = 1
    source = make_source(arango_extract_cfg(tiny_root, tmp_path, standin.url, auth="jwt"))
    source.partitions("node", "movie")
    time.sleep(3.1)  # the token has expired on the server; the next request must renew it
    got = extract(source, progress=False)
    assert got.edges["rates"].num_rows == sum(1 for _ in open(tiny_root / "ratings.csv")) - 1
    assert [p for m, p in standin.requests if p == "/_open/auth"].count("/_open/auth") >= 2
    assert not any(p == "/_open/auth" for m, p in standin.requests[-3:])  # renewed, then read


def test_jwt_auth_with_a_wrong_password_is_one_line(standin, tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ARANGO_PASSWORD", "not-it")
    source = make_source(arango_extract_cfg(tiny_root, tmp_path, standin.url, auth="jwt"))
    with pytest.raises(ConfigError, match="user 'root' was refused") as info:
        source.partitions("node", "movie")
    assert "not-it" not in str(info.value)


def test_a_user_token_is_sent_as_a_bearer_token(standin, tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ARANGO_TOKEN", standin.token())
    cfg = arango_extract_cfg(
        tiny_root, tmp_path, standin.url, auth="token", password_env="ARANGO_TOKEN"
    )
    assert make_source(cfg).partitions("node", "movie")
    assert not any(p == "/_open/auth" for m, p in standin.requests)


@pytest.mark.parametrize(
    "token, message",
    [
        ("expired", "has expired"),
        ("foreign", "was refused"),
        ("not-a-jwt", "is not a JWT the client accepts"),
    ],
)
def test_a_bad_user_token_is_one_line_without_the_token(
    standin, tiny_root, tmp_path, monkeypatch, token, message
):
    import jwt

    value = {
        "expired": standin.token(lifetime=-10),
        "foreign": jwt.encode(
            {"iss": "arangodb", "iat": int(time.time()), "exp": int(time.time()) + 60},
            "another-servers-secret-also-32-bytes-long",
            algorithm="HS256",
        ),
        "not-a-jwt": "s3cr3t-but-not-a-token",
    }[token]
    monkeypatch.setenv("ARANGO_TOKEN", value)
    cfg = arango_extract_cfg(
        tiny_root, tmp_path, standin.url, auth="token", password_env="ARANGO_TOKEN"
    )
    with pytest.raises(ConfigError, match=message) as info:
        make_source(cfg).partitions("node", "movie")
    assert value not in str(info.value) and "\n" not in str(info.value)


def test_an_unknown_auth_method_is_a_config_error(tiny_root, tmp_path):
    with pytest.raises(ConfigError, match="arango.auth='kerberos': must be one of basic, jwt"):
        arango_extract_cfg(tiny_root, tmp_path, "http://127.0.0.1:1", auth="kerberos")


def test_an_unreachable_host_is_one_line(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ARANGO_PASSWORD", "pw")
    source = make_source(arango_extract_cfg(tiny_root, tmp_path, "http://127.0.0.1:9"))
    with pytest.raises(GraphRecError, match="cannot reach the server"):
        source.partitions("node", "movie")


def test_a_missing_collection_is_named(standin, tiny_root, tmp_path):
    del standin.collections["Movie"]
    source = make_source(arango_extract_cfg(tiny_root, tmp_path, standin.url))
    with pytest.raises(
        GraphRecError, match=r"collection 'Movie' \(extract.nodes.movie\) does not exist"
    ):
        source.partitions("node", "movie")


def test_a_document_without_its_key_attribute_is_named(standin, tiny_root, tmp_path):
    del standin.collections["Movie"]["docs"]["105"]["movieId"]
    source = make_source(arango_extract_cfg(tiny_root, tmp_path, standin.url))
    with pytest.raises(DataError, match="document Movie/105 has no key attribute 'movieId'"):
        extract(source, progress=False)


def test_an_attribute_of_the_wrong_type_names_the_document(standin, tiny_root, tmp_path):
    standin.collections["Rates"]["docs"]["3"]["rating"] = "five"
    source = make_source(arango_extract_cfg(tiny_root, tmp_path, standin.url))
    with pytest.raises(
        DataError,
        match=r"arango collection 'Rates' \(keys .*\), column 'rating', document Rates/3 "
        r"\(row \d+\): 'five' is not a number \(float\)",
    ):
        extract(source, progress=False)


def test_a_duplicate_key_attribute_names_both_documents(standin, tiny_root, tmp_path):
    standin.add("Movie", [{"_key": "again", "movieId": 105, "title": "x", "genres": "y"}])
    source = make_source(arango_extract_cfg(tiny_root, tmp_path, standin.url))
    with pytest.raises(
        DataError,
        match=r"duplicate movie id 105 \(documents Movie/105, Movie/again hold movieId 105\)",
    ):
        extract(source, progress=False)


def test_an_edge_to_a_missing_document_is_named(standin, tiny_root, tmp_path):
    standin.add("Rates", [{"_key": "bad", "_from": "User/1", "_to": "Movie/999"}], edge=True)
    source = make_source(arango_extract_cfg(tiny_root, tmp_path, standin.url))
    with pytest.raises(DataError, match=r"edge Rates/bad: _to 'Movie/999' points to no document"):
        extract(source, progress=False)


def test_an_injection_attempt_in_a_collection_name_is_refused_before_any_request(
    standin, tiny_root, tmp_path
):
    cfg = arango_extract_cfg(tiny_root, tmp_path, standin.url)
    cfg.nodes["movie"].label = "Movie RETURN 1 //"
    with pytest.raises(ConfigError, match="not a valid database name"):
        make_source(cfg)
    assert standin.requests == []


def test_load_then_extract_round_trips_and_a_second_load_is_refused(
    tiny_root, tmp_path, monkeypatch
):
    from graphrec.loaders.arango_load import load_graph

    monkeypatch.setenv("ARANGO_PASSWORD", "pw")
    file_cfg = from_dict(ExtractConfig, tiny_config_dict(tiny_root, tmp_path)["extract"], "extract")
    tables = extract(FileSource(file_cfg), progress=False)
    with ArangoStandIn() as s:
        cfg = arango_extract_cfg(tiny_root, tmp_path, s.url)
        stats = load_graph(tables, cfg, cfg.arango, "tiny", batch_rows=13)
        assert stats["documents"] == {"User": 12, "Movie": 20, "Rates": 96}
        assert s.graphs["tiny"]["edgeDefinitions"] == [
            {"collection": "Rates", "from": ["User"], "to": ["Movie"]}
        ]
        got = extract(make_source(cfg), progress=False)
        by = ["src", "dst"]
        assert sorted_table(got.edges["rates"], by).equals(sorted_table(tables.edges["rates"], by))
        with pytest.raises(ConfigError, match="'Rates' already holds edges.*nothing was written"):
            load_graph(tables, cfg, cfg.arango, "tiny")
        load_graph(tables, cfg, cfg.arango, "tiny", replace=True)  # nodes replaced, edges reloaded
        assert (
            len(s.collections["Rates"]["docs"]) == 96 and len(s.collections["User"]["docs"]) == 12
        )


def test_the_whole_job_from_arango_and_back_matches_the_file_source(
    tiny_root, tmp_path, monkeypatch
):
    """Load, then `graphrec run` from the stand-in and back: the same split and test metrics
    as the same job on the files, and exactly k recommendation edges per user."""
    from graphrec.job import run_job
    from graphrec.loaders.arango_load import load_graph
    from tests.conftest import make_config

    monkeypatch.setenv("ARANGO_PASSWORD", "pw")
    data = tiny_config_dict(tiny_root, tmp_path)
    data["model"]["name"] = "lightgcn"
    data["train"].update(objective="link", loss="bpr")
    files = run_job(make_config(data), progress=False).metrics
    file_cfg = from_dict(ExtractConfig, data["extract"], "extract")
    with ArangoStandIn() as s:
        cfg = arango_extract_cfg(tiny_root, tmp_path, s.url)
        load_graph(extract(FileSource(file_cfg), progress=False), cfg, cfg.arango, "tiny")
        data["extract"] = {
            **data["extract"], "source": "arango", "parallelism": 3,
            "arango": {"url": s.url, "database": "graphrec", "fetch_rows": 7},
        }  # fmt: skip
        data["extract"]["nodes"]["user"]["label"] = "User"
        data["extract"]["nodes"]["movie"]["label"] = "Movie"
        data["extract"]["edges"]["rates"]["type"] = "Rates"
        data["extract"]["snapshot_dir"] = None
        data["write"].update(sink="arango", run_dir=str(tmp_path / "run-arango"))
        arango = run_job(make_config(data), progress=False).metrics
        recs = [e for e in s.collections["Recommendation_Inferences"]["docs"].values()]
    for key in ("train_edges", "val_edges", "test_edges"):
        assert arango["stages"]["build"][key] == files["stages"]["build"][key]
    assert arango["ndcg@20"] == pytest.approx(files["ndcg@20"], abs=1e-9)
    assert arango["recall@20"] == pytest.approx(files["recall@20"], abs=1e-9)
    assert len(recs) == 12 * 3 and {e["model"] for e in recs} == {"tiny"}
    assert Counter(e["_from"] for e in recs) == {f"User/{u}": 3 for u in range(1, 13)}


def test_inspect_lists_collections_counts_attributes_and_endpoints(
    standin, tiny_root, tmp_path, capsys
):
    import yaml

    from graphrec.cli import main

    data = tiny_config_dict(tiny_root, tmp_path)
    data["extract"].update(source="arango", arango={"url": standin.url, "database": "graphrec"})
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["inspect", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"arango {standin.url} database 'graphrec'" in out
    assert "Rates  96 edges  {rating: float, timestamp: int}  User->Movie" in out
    assert "Movie  20 documents  {genres: string, movieId: int, title: string}" in out
    # the config names collections the database does not have: the listing still shows,
    # and the features part says why it could not read them
    assert "features (kind: auto would choose): not read: arango at" in out
    assert "collection 'movie' (extract.nodes.movie) does not exist" in out
    data["extract"]["nodes"]["movie"]["label"] = "Movie"
    data["extract"]["nodes"]["user"]["label"] = "User"
    data["extract"]["edges"]["rates"]["type"] = "Rates"
    path.write_text(yaml.safe_dump(data))
    assert main(["inspect", "--config", str(path)]) == 0
    assert "movie.genres: multi_hot (values joined by '|')" in capsys.readouterr().out
