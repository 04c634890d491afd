"""The test Gremlin Server answers gremlinpython bytecode traversals (with bindings): three
labelled vertices and an edge written, read back with their ids and properties, dropped."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gremlin

LABEL = "graphrec_test_item"


def test_write_read_drop(gremlin_g):
    from gremlin_python.process.graph_traversal import __
    from gremlin_python.process.traversal import Bindings, T

    g = gremlin_g
    b = Bindings()
    ids = []
    for name in ("a", "b", "c"):
        v = g.addV(LABEL).property("name", b.of("name", name)).property("rank", ord(name)).next()
        assert isinstance(v.id, int)  # LONG id manager: Python ints
        ids.append(v.id)
    assert len(set(ids)) == 3
    e = g.V(ids[0]).addE("likes").to(__.V(ids[1])).property("w", 0.5).next()
    assert isinstance(e.id, int)

    rows = g.V().hasLabel(LABEL).order().by("name").elementMap().toList()
    assert [(r[T.id], r[T.label], r["name"], r["rank"]) for r in rows] == [
        (ids[0], LABEL, "a", 97),
        (ids[1], LABEL, "b", 98),
        (ids[2], LABEL, "c", 99),
    ]
    assert g.V(ids[0]).out("likes").values("name").toList() == ["b"]
    assert g.E(e.id).values("w").next() == 0.5
    # a vertex looked up by a Python int id, and one that does not exist
    assert g.V(ids[2]).values("name").toList() == ["c"]
    assert g.V(max(ids) + 1000).toList() == []

    g.V().hasLabel(LABEL).drop().iterate()
    assert g.V().hasLabel(LABEL).count().next() == 0
    assert g.E(e.id).toList() == []
