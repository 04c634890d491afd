"""Friend recommendation from a real Gremlin Server (TinkerGraph) and back: the extracted
graph equals the file source's, every person gets exactly k recommended friends (never
themselves, never a friend), a rerun replaces, and bad input ends in one line."""

from __future__ import annotations

import dataclasses

import pytest

from graphrec.cli import main
from graphrec.config import GremlinConfig, load_config
from graphrec.connectors.gremlin import Gremlin
from graphrec.errors import GraphRecError
from graphrec.job import run_job
from graphrec.loaders import extract, make_source
from graphrec.loaders.files import FileSource
from graphrec.loaders.gremlin_load import load_graph
from tests.conftest import make_config
from tests.graph.test_undirected import friends_config, write_friends

pytestmark = pytest.mark.gremlin


def _config(tmp_path, url: str) -> dict:
    root = tmp_path / "social"
    write_friends(root)
    data = friends_config(root, tmp_path)
    data["extract"].update(source="gremlin", snapshot_dir=None, gremlin={"url": url})
    data["extract"]["nodes"]["person"]["label"] = "Person"
    data["extract"]["edges"]["friend"]["type"] = "FRIEND"
    data["write"] = {"run_dir": str(tmp_path / "run"), "sink": "gremlin"}
    return data


@pytest.fixture
def loaded(gremlin_url, tmp_path):
    """The friends graph loaded into the server; the server emptied afterwards."""
    cfg = make_config(_config(tmp_path, gremlin_url))
    conn = Gremlin(cfg.extract.gremlin)
    conn.run(conn.g.V().drop())
    files = dataclasses.replace(cfg.extract, source="files")
    tables = extract(FileSource(files), progress=False)
    stats = load_graph(tables, cfg.extract, cfg.extract.gremlin)
    try:
        yield cfg, conn, stats, tables
    finally:
        conn.run(conn.g.V().drop())
        conn.close()


def test_the_graph_read_from_gremlin_equals_the_file_source(loaded):
    cfg, conn, stats, files = loaded
    assert stats["counts"] == {"person": 30, "friend": files.edges["friend"].num_rows}
    source = make_source(cfg.extract)
    try:
        got = extract(source, progress=False)
    finally:
        source.close()
    assert got.nodes["person"].sort_by("id").equals(files.nodes["person"].sort_by("id"))
    key = [("src", "ascending"), ("dst", "ascending")]
    assert got.edges["friend"].sort_by(key).equals(files.edges["friend"].sort_by(key))


def test_friends_from_gremlin_and_back_rerun_replaces(loaded, tmp_path):
    from gremlin_python.process.graph_traversal import __

    cfg, conn, _, _ = loaded
    k = cfg.recommend.k
    run_job(dataclasses.replace(cfg, mode="final"), progress=False)

    def recs():
        t = (
            conn.g.V().has_label("Person").project("p", "r")
            .by(__.values("personId"))
            .by(__.out_e("RECOMMENDED").in_v().values("personId").fold())
        )  # fmt: skip
        return {row["p"]: row["r"] for row in conn.all(t)}

    def friends():
        t = (
            conn.g.V()
            .has_label("Person")
            .project("p", "f")
            .by(__.values("personId"))
            .by(__.both("FRIEND").values("personId").fold())
        )
        return {row["p"]: set(row["f"]) for row in conn.all(t)}

    got, known = recs(), friends()
    assert len(got) == 30 and all(len(r) == k for r in got.values())
    assert all(p not in r and not (set(r) & known[p]) for p, r in got.items())
    again = dataclasses.replace(
        cfg, mode="final", write=dataclasses.replace(cfg.write, run_dir=str(tmp_path / "b"))
    )
    run_job(again, progress=False)
    assert sum(len(r) for r in recs().values()) == 30 * k  # replaced, never duplicated
    models = conn.all(conn.g.E().has_label("RECOMMENDED").values("model").dedup())
    assert models == [cfg.name]


def test_bad_gremlin_input_ends_in_one_line(loaded, tmp_path, capsys):
    cfg, conn, _, _ = loaded
    path = tmp_path / "c.yaml"
    import yaml

    data = _config(tmp_path, cfg.extract.gremlin.url)
    path.write_text(yaml.safe_dump(data))

    def err(*overrides) -> str:
        code = main(["train", "--config", str(path), "--quiet", *overrides])
        text = capsys.readouterr().err.strip()
        assert code in (1, 2) and len(text.splitlines()) == 1, text
        return text

    assert "no vertex has label 'Nobody'" in err("extract.nodes.person.label=Nobody")
    # a vertex without its key property
    conn.run(conn.g.add_v("Person").property("name", "keyless"))
    text = err()
    assert "has no key property 'personId'" in text and "label 'Person'" in text
    conn.run(conn.g.V().has_label("Person").has_not("personId").drop())
    # injection text in a label or a property name is refused before anything is sent
    assert "not a valid database name" in err("extract.nodes.person.label=Person').drop()//")
    assert "not a valid database name" in err("extract.nodes.person.id=person).drop(")
    # nobody listening
    text = err("extract.gremlin.url=ws://127.0.0.1:9/gremlin")
    assert "gremlin at ws://127.0.0.1:9/gremlin" in text and "cannot connect" in text
    assert conn.all(conn.g.V().has_label("Person").count()) == [30]  # nothing dropped


def test_gremlin_config_refuses_a_secret_in_the_url():
    with pytest.raises(Exception) as exc:
        GremlinConfig(url="ws://me:SECRET@host:8182/gremlin")
    assert "SECRET" not in str(exc.value) and "do not belong in the URL" in str(exc.value)
    assert load_config("configs/social-gremlin.yaml").extract.source == "gremlin"


def test_a_client_that_cannot_connect_is_closed(monkeypatch):
    """Its transport is not left to the garbage collector (which closed it inside another
    test's event loop: an 'event loop is already running' warning in CI)."""
    from gremlin_python.driver.client import Client

    closed, real = [], Client.close
    monkeypatch.setattr(Client, "close", lambda self: closed.append(self) or real(self))
    with pytest.raises(GraphRecError, match="cannot connect"):
        Gremlin(GremlinConfig(url="ws://127.0.0.1:9/gremlin"))
    assert len(closed) == 1


def test_inspect_lists_labels_counts_and_properties(loaded, tmp_path, capsys):
    import yaml

    cfg, _, _, files = loaded
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, cfg.extract.gremlin.url)))
    assert main(["inspect", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  Person  30 vertices  {personId: int}" in out
    n = files.edges["friend"].num_rows
    assert f"  FRIEND  {n} edges  {{}}  Person->Person" in out


def test_a_write_that_fails_midway_is_made_whole_by_the_rerun(loaded, tmp_path, monkeypatch):
    """The write-back dies after its first batch (a lost connection): the rerun ends with
    exactly k recommendations per person, the partial batch's edges replaced."""
    from graphrec.connectors import gremlin as connector
    from graphrec.connectors.gremlin import GremlinError

    cfg, conn, _, _ = loaded
    k = cfg.recommend.k
    cfg = dataclasses.replace(cfg, mode="final", write=dataclasses.replace(cfg.write, batch_size=7))
    real, calls = connector.Gremlin.run, []

    def dies_after_one_batch(self, t, what="writing"):
        if what.startswith("writing batch"):
            calls.append(what)
            if len(calls) == 2:
                raise GremlinError("gremlin at ws://test: connection lost (injected)")
        return real(self, t, what)

    monkeypatch.setattr(connector.Gremlin, "run", dies_after_one_batch)
    with pytest.raises(GremlinError):
        run_job(cfg, progress=False)
    partial = conn.all(conn.g.E().has_label("RECOMMENDED").count())[0]
    assert partial == 7 * k  # the first batch landed, the rest did not
    monkeypatch.setattr(connector.Gremlin, "run", real)
    rerun = dataclasses.replace(
        cfg, write=dataclasses.replace(cfg.write, run_dir=str(tmp_path / "b"))
    )
    run_job(rerun, progress=False)
    from gremlin_python.process.graph_traversal import __

    counts = conn.g.V().has_label("Person").local(__.out_e("RECOMMENDED").count()).dedup()
    assert conn.all(counts) == [k]
    assert conn.all(conn.g.E().has_label("RECOMMENDED").count()) == [30 * k]


def test_text_keys_are_split_at_sampled_quantiles_and_read_in_key_order(gremlin_url, tmp_path):
    """Text keys (no min/max to split) are partitioned at the quantiles of a server-side
    sample, into at least count / partition_rows ranges; every vertex and edge is read
    once, and two extractions give the same tables in the same order (cut points are
    random, the order is by key)."""
    import csv

    data = _config(tmp_path, gremlin_url)
    root = tmp_path / "social"
    rows = list(csv.reader(open(root / "friends.csv")))
    with open(root / "friends.csv", "w", newline="") as f:
        csv.writer(f).writerows(
            [rows[0], *([f"p{int(a):02d}", f"p{int(b):02d}"] for a, b in rows[1:])]
        )
    data["extract"]["nodes"]["person"]["properties"] = {"personId": "string"}
    data["extract"].update(parallelism=2)
    data["extract"]["gremlin"]["partition_rows"] = 8
    cfg = make_config(data)
    conn = Gremlin(cfg.extract.gremlin)
    conn.run(conn.g.V().drop())
    try:
        files = extract(FileSource(dataclasses.replace(cfg.extract, source="files")), False)
        load_graph(files, cfg.extract, cfg.extract.gremlin)
        source = make_source(cfg.extract)
        try:
            parts = source.partitions("node", "person")
            edge_parts = source.partitions("edge", "friend")
            first, second = extract(source, progress=False), extract(source, progress=False)
        finally:
            source.close()
    finally:
        conn.run(conn.g.V().drop())
        conn.close()
    assert len(parts) >= 30 // 8 and len(edge_parts) >= files.edges["friend"].num_rows // 8
    assert parts[0].payload[0] is None and parts[-1].payload[1] is None
    assert all(isinstance(b, str) for p in parts[1:] for b in p.payload[:1])
    assert "personId in [" in parts[1].location
    for got in (first, second):
        assert got.nodes["person"].equals(files.nodes["person"].sort_by("id"))
        key = [("src", "ascending"), ("dst", "ascending")]
        assert got.edges["friend"].sort_by(key).equals(files.edges["friend"].sort_by(key))
    assert first.nodes["person"].equals(second.nodes["person"])
    assert first.edges["friend"].equals(second.edges["friend"])
