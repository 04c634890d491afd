"""The ArangoDB I/O benchmark against the protocol STAND-IN (not ArangoDB): it measures
every way on the same collections, checks that the rerun replaced, and drops only the
collections it created; it refuses to start where one of its names is taken."""

from __future__ import annotations

from argparse import Namespace

import pytest

from graphrec.benchmark.arango_io import measure
from tests.arango.standin import ArangoStandIn


def test_the_arango_benchmark_measures_each_way_and_drops_only_its_own(tiny_root, monkeypatch):
    monkeypatch.setenv("BENCH_ARANGO_PW", "pw")
    a = Namespace(graph="movielens", root=str(tiny_root), partitions="1,2", per_document=15)
    with ArangoStandIn(database="_system") as s:
        s.add("Keep", [{"_key": "1", "x": 1}])
        r = measure(a, s.url, "_system", "BENCH_ARANGO_PW", "stand-in")
        assert set(r["extract"]) == {"tutorial_pandas", "graphrec_p1", "graphrec_p2"}
        assert {v["edges"] for v in r["extract"].values()} == {r["edges"]}
        assert r["edges"] == sum(1 for _ in open(tiny_root / "ratings.csv")) - 1
        assert r["write"]["per_document"]["rows"] == 15
        assert r["write"]["graphrec_batched"]["rows"] == r["recommendations"]
        assert set(r["ratios"]) == {
            "graphrec_p1_vs_tutorial", "graphrec_p2_vs_tutorial", "write_batched_vs_per_document"
        }  # fmt: skip
        assert set(s.collections) == {"Keep"}  # its own collections dropped, no other

        s.add("GraphrecBenchRecs", [{"_key": "7"}])
        with pytest.raises(SystemExit, match="GraphrecBenchRecs already exist"):
            measure(a, s.url, "_system", "BENCH_ARANGO_PW", "stand-in")
        assert set(s.collections) == {"Keep", "GraphrecBenchRecs"}
        assert s.collections["GraphrecBenchRecs"]["docs"].keys() == {"7"}
