"""Stage 4, ``recommend_all``: top-k unseen items per user, with the original ids, against a
brute-force ranking of a stand-in model's fixed vectors."""

from __future__ import annotations

import csv

import pytest
import torch

from graphrec.graph import build_graph
from graphrec.loaders import extract, make_source
from graphrec.recommend import recommend_all
from tests.conftest import make_config, tiny_config_dict, write_tiny_graph

MOVIES = 20
FEW_UNSEEN = {1: [101, 102]}  # user 1 rates every movie but these two
NONE_UNSEEN = 13  # a 13th user who rates every movie


class FixedVectors:
    """A stand-in for a trained model (no training): fixed random user and item vectors,
    so the expected top-k is a brute-force sort. It keeps the message graph it was given."""

    device = torch.device("cpu")

    def __init__(self, num_users: int, num_items: int, dim: int = 5, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.users = torch.randn(num_users, dim, generator=gen)
        self.items = torch.randn(num_items, dim, generator=gen)
        self.data = None

    def vectors(self, data):
        self.data = data
        return self.users, self.items


def rated(root) -> set[tuple[int, int]]:
    with open(root / "ratings.csv") as f:
        return {(int(r["userId"]), int(r["movieId"])) for r in csv.DictReader(f)}


@pytest.fixture
def heavy(tmp_path):
    """The tiny graph (12 users x 8 of 20 movies) plus user 1 rating all but two movies and
    user 13 rating every movie: (config, graph, the (user id, movie id) pairs rated)."""
    root = tmp_path / "data"
    write_tiny_graph(root, movies=MOVIES)
    have = rated(root)
    with open(root / "ratings.csv", "a", newline="") as f:
        w = csv.writer(f)
        for m in range(101, 101 + MOVIES):
            if (1, m) not in have and m not in FEW_UNSEEN[1]:
                w.writerow([1, m, 4.5, 2_000_000 + m])
            w.writerow([NONE_UNSEEN, m, 3.0, 3_000_000 + m])
    cfg = make_config(tiny_config_dict(root, tmp_path))
    graph = build_graph(extract(make_source(cfg.extract), progress=False), cfg, False)
    return cfg, graph, rated(root)


def brute_force(model: FixedVectors, graph, k: int) -> list[tuple]:
    """One user at a time: score every item, drop the ones the user has an edge to, sort."""
    ei = graph.target_index
    user_ids = graph.node_ids[graph.user_type].to_pylist()
    item_ids = graph.node_ids[graph.item_type].to_pylist()
    rows = []
    for u in range(len(user_ids)):
        seen = set(ei[1, ei[0] == u].tolist())
        scores = (model.items.double() @ model.users[u].double()).tolist()
        unseen = sorted(
            (i for i in range(len(item_ids)) if i not in seen), key=lambda i: -scores[i]
        )
        for rank, i in enumerate(unseen[:k], start=1):
            rows.append((user_ids[u], item_ids[i], rank, scores[i]))
    return rows


def table_rows(table) -> list[tuple]:
    return [(r["user_id"], r["item_id"], r["rank"], r["score"]) for r in table.to_pylist()]


def test_columns_ids_ranks_and_order(heavy):
    cfg, graph, have = heavy
    model = FixedVectors(graph.num_nodes["user"], graph.num_nodes["movie"])
    table = recommend_all(model, graph, cfg, progress=False)
    assert table.column_names == ["user_id", "item_id", "rank", "score"]
    assert str(table.schema.field("rank").type) == "int32"
    assert str(table.schema.field("score").type) == "float"
    rows = table.to_pylist()
    # original ids (users 1..13, movies 101..120), not the contiguous 0..N-1 positions
    assert {r["user_id"] for r in rows} <= set(range(1, 14))
    assert {r["item_id"] for r in rows} <= set(range(101, 101 + MOVIES))
    assert min(r["item_id"] for r in rows) > MOVIES
    per_user: dict[int, list[dict]] = {}
    for r in rows:
        per_user.setdefault(r["user_id"], []).append(r)
        assert (r["user_id"], r["item_id"]) not in have  # never an item the user rated
    k = cfg.recommend.k
    for user, got in per_user.items():
        want = min(k, len(FEW_UNSEEN.get(user, range(k))))
        assert [r["rank"] for r in got] == list(range(1, want + 1)), user
        assert len({r["item_id"] for r in got}) == want
        scores = [r["score"] for r in got]
        assert scores == sorted(scores, reverse=True)


def test_users_with_fewer_than_k_unseen_items_get_fewer_rows(heavy):
    cfg, graph, _ = heavy
    assert cfg.recommend.k == 3
    model = FixedVectors(graph.num_nodes["user"], graph.num_nodes["movie"])
    rows = recommend_all(model, graph, cfg, progress=False).to_pylist()
    counts: dict[int, int] = {}
    for r in rows:
        counts[r["user_id"]] = counts.get(r["user_id"], 0) + 1
    assert counts[1] == 2  # two unseen movies: two rows
    assert sorted(r["item_id"] for r in rows if r["user_id"] == 1) == FEW_UNSEEN[1]
    assert NONE_UNSEEN not in counts  # every movie rated: no rows at all
    assert all(counts[u] == 3 for u in range(2, 13))
    assert len(rows) == 2 + 11 * 3


@pytest.mark.parametrize("batch_users", [1, 5, 2048])
@pytest.mark.parametrize("method", ["exact", "approximate"])
def test_equals_a_brute_force_per_user_ranking(heavy, batch_users, method):
    """``approximate`` at target recall 1 ranks as exact does, and reports its recall."""
    cfg, graph, _ = heavy
    cfg.recommend.k, cfg.recommend.batch_users = 4, batch_users
    cfg.recommend.method, cfg.recommend.target_recall = method, 1.0
    model = FixedVectors(graph.num_nodes["user"], graph.num_nodes["movie"], seed=7)
    report = {}
    got = table_rows(recommend_all(model, graph, cfg, progress=False, report=report))
    if method == "approximate":
        assert report["index"]["recall_at_k"] == 1.0
        assert report["index"]["sample_users"] == graph.num_nodes["user"]
    else:
        assert "index" not in report
    want = brute_force(model, graph, 4)
    assert [r[:3] for r in got] == [r[:3] for r in want]
    assert [r[3] for r in got] == pytest.approx([r[3] for r in want], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("method", ["exact", "approximate"])
def test_k_larger_than_the_catalogue_lists_every_unseen_item(heavy, method):
    cfg, graph, have = heavy
    cfg.recommend.k, cfg.recommend.method, cfg.recommend.target_recall = 50, method, 1.0
    model = FixedVectors(graph.num_nodes["user"], graph.num_nodes["movie"], seed=3)
    got = table_rows(recommend_all(model, graph, cfg, progress=False))
    assert [r[:3] for r in got] == [r[:3] for r in brute_force(model, graph, 50)]
    # every (user, unseen item) pair exactly once
    pairs = {(u, i) for u, i, _, _ in got}
    assert len(pairs) == len(got)
    every = {(u, m) for u in range(1, 14) for m in range(101, 101 + MOVIES)}
    assert pairs == every - have


def test_the_model_scores_on_the_full_graph(heavy):
    """Recommendation passes messages over every target edge (nothing is held out) and the
    reverse edges."""
    cfg, graph, _ = heavy
    model = FixedVectors(graph.num_nodes["user"], graph.num_nodes["movie"])
    recommend_all(model, graph, cfg, progress=False)
    data = model.data
    got = data["user", "rates", "movie"].edge_index
    assert got.shape == graph.target_index.shape
    as_set = lambda ei: set(map(tuple, ei.t().tolist()))  # noqa: E731
    assert as_set(got) == as_set(graph.target_index)
    assert as_set(data["movie", "rev_rates", "user"].edge_index) == as_set(
        graph.target_index.flip(0)
    )


@pytest.mark.parametrize("reverse", [True, False], ids=["reverse-edges", "forward-only"])
@pytest.mark.parametrize("subset", [False, True], ids=["everyone", "some-users-and-items"])
def test_seen_lists_each_users_linked_items(heavy, reverse, subset):
    """The exclusion CSR: read off the message graph's reverse edges for the whole batch
    job, built from the edge list otherwise; the same rows either way."""
    from graphrec.graph.hetero import message_graph
    from graphrec.recommend.batch import seen

    _, graph, _ = heavy
    n_users, n_items = graph.num_nodes["user"], graph.num_nodes["movie"]
    users = torch.arange(0, n_users, 2) if subset else torch.arange(n_users)
    items = torch.arange(1, n_items, 3) if subset else torch.arange(n_items)
    data = message_graph(graph, None, reverse)
    indptr, indices = seen(graph, data, users, items)
    assert len(indptr) == len(users) + 1
    ei = graph.target_index
    for r, u in enumerate(users.tolist()):
        want = {
            c for c, i in enumerate(items.tolist()) if bool(((ei[0] == u) & (ei[1] == i)).any())
        }
        got = indices[indptr[r] : indptr[r + 1]].tolist()
        assert sorted(got) == sorted(want) and len(got) == len(want), u
