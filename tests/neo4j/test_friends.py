"""Friend recommendations through a real Neo4j: a person-FRIEND-person graph loaded, read
back, and written back as RECOMMENDED relationships between people: k per person, never to
themselves, never to a friend in either direction, and a rerun replaces."""

from __future__ import annotations

import dataclasses

import pytest

from graphrec.job import run_job
from graphrec.loaders import extract
from graphrec.loaders.files import FileSource
from graphrec.loaders.neo4j_load import load_graph
from graphrec.transform import transform_run
from tests.conftest import make_config
from tests.graph.test_undirected import friends_config, write_friends

pytestmark = pytest.mark.neo4j


def test_friends_from_neo4j_and_back(neo4j_cfg, neo4j_driver, tmp_path):
    root = tmp_path / "social"
    write_friends(root)
    data = friends_config(root, tmp_path)
    data["mode"] = "final"
    data["extract"].update(
        source="neo4j", snapshot_dir=None,
        neo4j={"uri": neo4j_cfg.uri, "password_env": neo4j_cfg.password_env},
    )  # fmt: skip
    data["extract"]["nodes"]["person"]["label"] = "Person"
    data["extract"]["edges"]["friend"]["type"] = "FRIEND"
    data["write"] = {"run_dir": str(tmp_path / "run"), "sink": "neo4j"}
    cfg = make_config(data)
    with neo4j_driver.session() as s:
        s.run("MATCH (n:Person) DETACH DELETE n").consume()
    tables = extract(FileSource(dataclasses.replace(cfg.extract, source="files")), progress=False)
    load_graph(tables, cfg.extract, cfg.extract.neo4j, progress=False)
    try:
        run_job(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train)), progress=False)
        k = cfg.recommend.k
        with neo4j_driver.session() as s:
            row = s.run(
                "MATCH (p:Person) OPTIONAL MATCH (p)-[r:RECOMMENDED]->(q:Person) "
                "WITH p, count(r) AS n RETURN min(n) AS lo, max(n) AS hi, count(p) AS people"
            ).single()
            assert (row["lo"], row["hi"], row["people"]) == (k, k, 30)
            own = "MATCH (p:Person)-[:RECOMMENDED]->(p) RETURN count(*) AS c"
            assert s.run(own).single()["c"] == 0
            known = "MATCH (p:Person)-[:RECOMMENDED]->(q:Person)-[:FRIEND]-(p) RETURN count(*) AS c"
            assert s.run(known).single()["c"] == 0
        again = dataclasses.replace(
            cfg,
            write=dataclasses.replace(cfg.write, run_dir=str(tmp_path / "b")),
            train=dataclasses.replace(cfg.train, run_id=None),
        )
        run_job(again, progress=False)
        with neo4j_driver.session() as s:
            total = s.run("MATCH (:Person)-[r:RECOMMENDED]->(:Person) RETURN count(r) AS c")
            assert total.single()["c"] == 30 * k  # the rerun replaced, never duplicated
        # two people join after training, each with friends: transform reads the database
        # as it is now, embeds them with the trained model and writes theirs back
        with neo4j_driver.session() as s:
            s.run(
                "UNWIND [[100, [0, 2, 4]], [101, [11, 13, 100]]] AS row "
                "MERGE (p:Person {personId: row[0]}) WITH p, row "
                "UNWIND row[1] AS f MATCH (q:Person {personId: f}) MERGE (p)-[:FRIEND]->(q)"
            ).consume()
        out = transform_run(
            tmp_path / "run", [f"write.run_dir={tmp_path / 't'}"], only_new=True, progress=False
        )
        assert out.metrics["nodes"]["person"] == {"known": 30, "new": 2, "gone": 0}
        with neo4j_driver.session() as s:
            new = s.run(
                "MATCH (p:Person)-[r:RECOMMENDED]->(q:Person) WHERE p.personId >= 100 "
                "RETURN p.personId AS p, collect(q.personId) AS qs ORDER BY p"
            ).data()
            assert [(r["p"], len(r["qs"])) for r in new] == [(100, k), (101, k)]
            assert not {0, 2, 4, 100} & set(new[0]["qs"])  # not a friend, not oneself
            assert not {11, 13, 100, 101} & set(new[1]["qs"])
            total = s.run("MATCH (:Person)-[r:RECOMMENDED]->(:Person) RETURN count(r) AS c")
            assert total.single()["c"] == 32 * k  # the others' recommendations untouched
    finally:  # leave the database as the other Neo4j tests expect it: no Person at all
        with neo4j_driver.session() as s:
            s.run("MATCH (n:Person) DETACH DELETE n").consume()
            for name in s.run(
                "SHOW CONSTRAINTS YIELD name, labelsOrTypes WHERE 'Person' IN labelsOrTypes "
                "RETURN name"
            ).value():
                s.run(f"DROP CONSTRAINT `{name}`").consume()
