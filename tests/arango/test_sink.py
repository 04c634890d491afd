"""The ArangoDB sink against the protocol STAND-IN (tests/arango/standin.py, not a real
ArangoDB server), driven by the real python-arango client: exactly k edges per user and
model after a write, a rerun and a rerun after a write that failed half-way; unknown ids
refused before anything is written."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from graphrec.config import ArangoConfig
from graphrec.errors import GraphRecError
from graphrec.sinks.arango import ArangoSink
from tests.arango.standin import ArangoStandIn


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.setenv("ARANGO_PASSWORD", "pw")
    with ArangoStandIn() as s:
        s.add("User", [{"_key": str(u), "userId": u} for u in range(1, 11)])
        s.add("Movie", [{"_key": str(m), "movieId": m} for m in range(100, 120)])
        yield s


def recs(shift: int = 0, users=range(1, 11), k: int = 3) -> pa.Table:
    rows = [(u, 100 + (u + j + shift) % 20, j + 1, float(k - j)) for u in users for j in range(k)]
    return pa.table(
        {n: [r[i] for r in rows] for i, n in enumerate(["user_id", "item_id", "rank", "score"])}
    )


def sink(standin, model: str = "m", batch_size: int = 3) -> ArangoSink:
    cfg = ArangoConfig(url=standin.url, database="graphrec")
    return ArangoSink(cfg, ("User", "userId"), ("Movie", "movieId"), "Recommendation_Inferences",
                      model, "run1", batch_size)  # fmt: skip


def edges(standin, model: str = "m") -> list[dict]:
    docs = standin.collections["Recommendation_Inferences"]["docs"].values()
    return [e for e in docs if e["model"] == model]


def test_a_rerun_replaces_and_never_duplicates(standin):
    stats = sink(standin).write(recs())
    assert stats["rows"] == 30 and stats["transactions"] == 4  # 10 users, 3 per transaction
    sink(standin).write(recs(shift=5))
    got = edges(standin)
    assert Counter(e["_from"] for e in got) == {f"User/{u}": 3 for u in range(1, 11)}
    assert {(e["_from"], e["_to"]) for e in got} == {
        (f"User/{u}", f"Movie/{i}")
        for u, i, _, _ in zip(*recs(shift=5).to_pydict().values(), strict=True)
    }
    sink(standin, model="other").write(recs())  # another model's edges are its own
    assert len(edges(standin)) == 30 and len(edges(standin, "other")) == 30


def test_a_write_failing_half_way_then_rerun_leaves_exactly_k(standin):
    sink(standin).write(recs())
    standin.fail_inserts_after, standin.inserts = 2, 0
    with pytest.raises(GraphRecError, match=r"2 of 4 batches were written to arango; rerun"):
        sink(standin).write(recs(shift=5))
    per_user = Counter(e["_from"] for e in edges(standin))
    assert set(per_user.values()) == {3}  # every user: the old or the new k, never a mix
    standin.fail_inserts_after = None
    sink(standin).write(recs(shift=5))
    assert Counter(e["_from"] for e in edges(standin)) == {f"User/{u}": 3 for u in range(1, 11)}


def test_an_unknown_user_is_refused_before_anything_is_written(standin):
    with pytest.raises(
        GraphRecError, match=r"1 of 11 user ids match no document of 'User'.*nothing was written"
    ):
        sink(standin).write(recs(users=range(1, 12)))
    assert edges(standin) == []


def test_a_bad_collection_name_is_a_config_error(tiny_root, tmp_path):
    from graphrec.errors import ConfigError
    from tests.conftest import make_config, tiny_config_dict

    data = tiny_config_dict(tiny_root, tmp_path)
    data["write"].update(sink="arango", collection="Recs; REMOVE")
    with pytest.raises(ConfigError, match="write.collection 'Recs; REMOVE' is not a valid"):
        make_config(data)
