"""Arrow -> HeteroData: id mapping, features, reverse edges, leak-free splits."""

import pyarrow as pa
import torch

from graphrec.config import SplitConfig
from graphrec.graph import build_graph, message_graph, split_edges
from graphrec.graph.split import random_split, temporal_split
from graphrec.loaders import extract, make_source


def tiny_graph(cfg):
    tables = extract(make_source(cfg.extract), progress=False)
    return tables, build_graph(tables, cfg, progress=False)


def test_ids_are_contiguous_and_map_back(tiny_cfg):
    tables, g = tiny_graph(tiny_cfg)
    assert g.num_nodes == {"user": 12, "movie": 20}
    ei = g.target_index
    assert ei.shape == (2, 96)
    assert int(ei[0].max()) < 12 and int(ei[1].max()) < 20 and int(ei.min()) >= 0
    # original ids survive the round trip for every edge
    src = g.node_ids["user"].take(pa.array(ei[0].numpy()))
    dst = g.node_ids["movie"].take(pa.array(ei[1].numpy()))
    # edges come in canonical (src, dst) order, whatever order the source gave
    rates = tables.edges["rates"].sort_by([("src", "ascending"), ("dst", "ascending")])
    assert src.to_pylist() == rates.column("src").to_pylist()
    assert dst.to_pylist() == rates.column("dst").to_pylist()
    assert torch.equal(g.label, torch.tensor(rates.column("rating").to_pylist()))


def test_features_and_reverse_edges(tiny_cfg):
    _, g = tiny_graph(tiny_cfg)
    assert "user" not in g.x  # users: learnable embedding only
    assert g.x["movie"].shape == (20, 5)  # 4 genres + "(none)"
    data = message_graph(g)
    rev = data["movie", "rev_rates", "user"].edge_index
    assert torch.equal(rev, g.target_index.flip(0))


def test_random_split_is_seeded_disjoint_and_complete():
    a, b = random_split(1000, 0.1, 0.1, seed=3), random_split(1000, 0.1, 0.1, seed=3)
    assert torch.equal(a.test, b.test)
    assert (len(a.train), len(a.val), len(a.test)) == (800, 100, 100)
    allidx = torch.cat([a.train, a.val, a.test]).sort().values
    assert torch.equal(allidx, torch.arange(1000))
    assert not torch.equal(a.test, random_split(1000, 0.1, 0.1, seed=4).test)


def test_temporal_split_holds_out_each_users_latest():
    user = torch.tensor([0] * 10 + [1] * 10 + [2])
    time = torch.tensor(list(range(10, 0, -1)) + list(range(10)) + [5])
    s = temporal_split(user, time, 0.1, 0.2)
    for u in (0, 1):
        mine = (user == u).nonzero().flatten()
        test = [i for i in s.test.tolist() if user[i] == u]
        train = [i for i in s.train.tolist() if user[i] == u]
        assert len(test) == 2 and len([i for i in s.val.tolist() if user[i] == u]) == 1
        assert min(time[test]) > max(time[train])
        assert len(mine) == 10
    assert 20 in s.train.tolist()  # a user with one edge keeps it for training


def test_leave_last_out_holds_out_each_users_last_edges(capsys):
    """kind last: the latest ``last`` edges of each user are test, the ``last`` before them
    validation; a user with too few edges fills test first and keeps one for training."""
    user = torch.tensor([0] * 6 + [1] * 3 + [2] * 2 + [3])
    time = torch.tensor([6, 1, 5, 2, 4, 3] + [9, 7, 8] + [1, 1] + [5])
    s = split_edges(SplitConfig(kind="last", last=2), 12, user, time)
    # user 0: times 6, 5; user 1 (3 edges): 9, 8; user 2 (a tie in time): the later row
    assert s.test.tolist() == [0, 2, 6, 8, 10]
    assert s.val.tolist() == [4, 5]  # user 0: times 4, 3; users 1 and 2 have none left
    assert s.train.tolist() == [1, 3, 7, 9, 11]  # everyone keeps one, the one-edge user too
    one = split_edges(SplitConfig(kind="last"), 12, user, time)
    assert one.test.tolist() == [0, 6, 10] and one.val.tolist() == [2, 8]
    assert (
        capsys.readouterr().err.count(
            "graphrec: warning: build.split.kind=last: 1 of 4 users have a single edge, which "
            "they keep for training: they have no test edge and are not evaluated\n"
        )
        == 2
    )


def test_held_out_edges_are_not_in_the_message_graph(tiny_cfg):
    _, g = tiny_graph(tiny_cfg)
    s = split_edges(SplitConfig(val=0.2, test=0.2, seed=1), 96, g.target_index[0], g.time)
    data = message_graph(g, s.train)
    present = {tuple(e) for e in data["user", "rates", "movie"].edge_index.t().tolist()}
    held = {tuple(e) for e in g.target_index[:, torch.cat([s.val, s.test])].t().tolist()}
    assert len(present) == len(s.train) and not present & held
    rev = {tuple(e) for e in data["movie", "rev_rates", "user"].edge_index.flip(0).t().tolist()}
    assert rev == present
    # the kept edges carry their own labels, in the message graph's (CSC) edge order
    truth = {tuple(g.target_index[:, e].tolist()): float(g.label[e]) for e in s.train.tolist()}
    store = data["user", "rates", "movie"]
    got = dict(zip(map(tuple, store.edge_index.t().tolist()), store.label.tolist(), strict=True))
    assert got == truth


def _rental_tables(rows):
    import pyarrow as pa

    from graphrec.loaders.extract import GraphTables

    src, dst, when = zip(*rows, strict=True)
    return GraphTables(
        nodes={"c": pa.table({"id": [1, 2]}), "f": pa.table({"id": [10, 11, 12]})},
        edges={"r": pa.table({"src": list(src), "dst": list(dst), "t": list(when)})},
        stats={},
    )


def _rental_config(duplicates):
    from graphrec.config import JobConfig, from_dict

    return from_dict(
        JobConfig,
        {
            "extract": {
                "nodes": {"c": {"id": "cid"}, "f": {"id": "fid"}},
                "edges": {
                    "r": {
                        "src": "c",
                        "dst": "f",
                        "src_id": "cid",
                        "dst_id": "fid",
                        "properties": {"t": "string"},
                    },
                },
            },
            "build": {
                "target": "r",
                "label": None,
                "timestamp": "t",
                "duplicate_edges": duplicates,
            },
            "train": {"objective": "link", "loss": "bce"},
        },
        "",
    )


def test_repeat_edges_keep_the_latest_and_text_times_parse():
    from graphrec.graph import build_graph

    rows = [
        (1, 10, "2022-05-24 22:53:30+01"),
        (1, 10, "2022-06-01 10:00:00+00"),  # the later rental of the same film
        (2, 11, "2022-02-14 15:16:03+00"),
        (1, 12, "2022-05-24T21:53:30Z"),
    ]
    g = build_graph(_rental_tables(rows), _rental_config("latest"), progress=False)
    assert g.stats["duplicate_edges_merged"] == 1
    assert g.target_index.tolist() == [[0, 0, 1], [0, 2, 1]]
    # 2022-06-01 10:00 UTC; 21:53:30Z equals 22:53:30+01
    assert g.time.tolist() == [1654077600, 1653429210, 1644851763]


def test_repeat_edges_are_an_error_by_default_and_bad_times_name_the_row():
    import pytest

    from graphrec.errors import DataError
    from graphrec.graph import build_graph

    rows = [(1, 10, "2022-05-24 22:53:30+01"), (1, 10, "2022-06-01 10:00:00+00")]
    with pytest.raises(DataError, match="duplicate_edges=latest"):
        build_graph(_rental_tables(rows), _rental_config("error"), progress=False)
    rows = [(2, 11, "2022-01-01"), (1, 10, "2022-01-02"), (1, 12, "2022-01-03")]
    rows.append((1, 10, "2022-01-04"))  # the input's 4th row repeats its 2nd
    with pytest.raises(DataError, match=r"row 4: duplicate edge 1 -> 10"):
        build_graph(_rental_tables(rows), _rental_config("error"), progress=False)
    rows = [(1, 10, "2022-05-24 22:53:30+01"), (2, 11, "yesterday")]
    with pytest.raises(DataError, match=r"row 2: t='yesterday' is not a time"):
        build_graph(_rental_tables(rows), _rental_config("latest"), progress=False)
