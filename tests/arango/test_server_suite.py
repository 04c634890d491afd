"""The ArangoDB server suite (``pytest -m arango``): only the client API, so it runs
unchanged against a real ArangoDB 3.11/3.12 (``ARANGO_URL``, ``ARANGO_PASSWORD``,
optional ``ARANGO_DATABASE``) or, in CI (``GRAPHREC_ARANGO=standin``), against the protocol
STAND-IN; without either it skips. Its collections and graph have names of their own per
test (a random suffix) and are dropped afterwards; nothing else in the database is touched.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter

import pytest

from graphrec.config import ArangoConfig, ExtractConfig, from_dict
from graphrec.connectors.arango import connect
from graphrec.errors import Interrupted
from graphrec.inspect_arango import SAMPLE
from graphrec.job import run_job
from graphrec.loaders import FileSource, extract, make_source
from graphrec.loaders.arango_load import load_graph
from tests.arango.standin import ArangoStandIn
from tests.conftest import make_config, tiny_config_dict

pytestmark = pytest.mark.arango


@pytest.fixture
def server(monkeypatch):
    """``(url, database)`` of a real server or the stand-in."""
    url = os.environ.get("ARANGO_URL")
    if url:
        yield url, os.environ.get("ARANGO_DATABASE", "_system")
    elif os.environ.get("GRAPHREC_ARANGO") == "standin":
        monkeypatch.setenv("ARANGO_PASSWORD", "pw")
        with ArangoStandIn(database="_system") as s:
            yield s.url, "_system"
    else:
        pytest.skip(
            "ArangoDB server suite: set ARANGO_URL (and ARANGO_PASSWORD) to run it against a "
            "server; CI runs it against the protocol stand-in (GRAPHREC_ARANGO=standin)"
        )


@pytest.fixture
def job_data(server, tiny_root, tmp_path):
    """A tiny job reading from and writing to collections of its own; dropped afterwards."""
    url, database = server
    sfx = secrets.token_hex(3)
    data = tiny_config_dict(tiny_root, tmp_path)
    data["name"] = f"tiny_{sfx}"
    data["model"]["name"] = "lightgcn"
    data["train"].update(objective="link", loss="bpr")
    data["extract"].update(source="arango", parallelism=3, snapshot_dir=None,
                           arango={"url": url, "database": database, "fetch_rows": 7})  # fmt: skip
    data["extract"]["nodes"]["user"]["label"] = f"User_{sfx}"
    data["extract"]["nodes"]["movie"]["label"] = f"Movie_{sfx}"
    data["extract"]["edges"]["rates"]["type"] = f"Rates_{sfx}"
    data["write"].update(sink="arango", collection=f"Recs_{sfx}")
    yield data
    db = connect(ArangoConfig(url=url, database=database))
    if db.has_graph(data["name"]):
        db.delete_graph(data["name"])
    for name in (f"User_{sfx}", f"Movie_{sfx}", f"Rates_{sfx}", f"Recs_{sfx}"):
        if db.has_collection(name):
            db.delete_collection(name)


def recommendations(data) -> Counter:
    a = data["extract"]["arango"]
    db = connect(ArangoConfig(url=a["url"], database=a["database"]))
    rows = db.aql.execute(SAMPLE, bind_vars={"@c": data["write"]["collection"], "n": 10**6})
    return Counter(e["_from"] for e in rows)


def test_load_extract_run_rerun_and_an_interrupted_write(
    job_data, tiny_root, tmp_path, monkeypatch
):
    files_cfg = from_dict(
        ExtractConfig, tiny_config_dict(tiny_root, tmp_path)["extract"], "extract"
    )
    tables = extract(FileSource(files_cfg), progress=False)
    cfg = make_config(job_data)
    load_graph(tables, cfg.extract, cfg.extract.arango, job_data["name"], batch_rows=13)
    got = extract(make_source(cfg.extract), progress=False)
    by = [("src", "ascending"), ("dst", "ascending")]
    assert got.edges["rates"].sort_by(by).equals(tables.edges["rates"].sort_by(by))
    # the whole job, from the database and back: the file source's split and metrics
    files_job = {**job_data, "extract": tiny_config_dict(tiny_root, tmp_path)["extract"],
                 "write": {"run_dir": str(tmp_path / "files")}}  # fmt: skip
    want = run_job(make_config(files_job), progress=False).metrics
    m = run_job(cfg, progress=False).metrics
    assert m["ndcg@20"] == pytest.approx(want["ndcg@20"], abs=1e-9)
    users = sorted({f"{job_data['extract']['nodes']['user']['label']}/{u}" for u in range(1, 13)})
    assert recommendations(job_data) == {u: 3 for u in users}
    # a rerun replaces; a write interrupted after two batches, rerun, leaves exactly k
    import graphrec.sinks.arango as mod

    batch = mod.ArangoSink._batch
    calls = {"n": 0}

    def interrupted(self, *args):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return batch(self, *args)

    job_data["write"].update(run_dir=str(tmp_path / "run2"), batch_size=4)
    monkeypatch.setattr(mod.ArangoSink, "_batch", interrupted)
    with pytest.raises(Interrupted):
        run_job(make_config(job_data), progress=False)
    assert recommendations(job_data) == {u: 3 for u in users}
    monkeypatch.setattr(mod.ArangoSink, "_batch", batch)
    job_data["write"]["run_dir"] = str(tmp_path / "run3")
    run_job(make_config(job_data), progress=False)
    assert recommendations(job_data) == {u: 3 for u in users}
