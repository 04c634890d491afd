"""Node2Vec: walks with node2vec's transition weights, embeddings that find planted
communities, training edges only, and one-line errors for projections that cannot work."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from graphrec.config import Node2VecConfig
from graphrec.errors import ConfigError, DataError
from graphrec.graph.hetero import Graph
from graphrec.graph.node2vec import adjacency, node2vec, random_walks


def _graph(edges: dict[tuple[str, str, str], torch.Tensor], sizes: dict[str, int]) -> Graph:
    return Graph(
        node_ids={t: pa.array(range(n)) for t, n in sizes.items()},
        x={},
        edge_index=edges,
        target=next(iter(edges)),
    )


def _planted(seed: int = 0, n: int = 40, per_user: int = 8, cross: int = 1) -> Graph:
    """Users and items in two planted halves: every user rates ``per_user - cross`` items
    of its own half and ``cross`` of the other; items also carry a tag of their half."""
    gen = torch.Generator().manual_seed(seed)
    half = n // 2
    src, dst = [], []
    for u in range(n):
        own = u // half
        mine = torch.randperm(half, generator=gen)[: per_user - cross] + own * half
        other = torch.randperm(half, generator=gen)[:cross] + (1 - own) * half
        for i in torch.cat([mine, other]).tolist():
            src.append(u)
            dst.append(i)
    items = torch.arange(n)
    return _graph(
        {
            ("user", "rates", "item"): torch.tensor([src, dst]),
            ("item", "tagged", "tag"): torch.stack([items, items // half]),
        },
        {"user": n, "item": n, "tag": 2},
    )


def _community_margin(z: torch.Tensor, half: int) -> tuple[float, float]:
    """Mean cosine within the planted halves minus across them, and the share of nodes
    whose nearest other node is in their own half."""
    z = torch.nn.functional.normalize(z, dim=1)
    sim = z @ z.t()
    group = torch.arange(len(z)) // half
    same = group[:, None] == group[None, :]
    off = ~torch.eye(len(z), dtype=torch.bool)
    margin = sim[same & off].mean() - sim[~same].mean()
    nearest = sim.masked_fill(~off, -2).argmax(1)
    return float(margin), float((group[nearest] == group).float().mean())


def test_embeddings_separate_planted_communities():
    g = _planted()
    cfg = Node2VecConfig(dim=16, seed=3, epochs=15)
    emb = node2vec(g, None, cfg)
    assert emb["user"].shape == (40, 16) and emb["tag"].shape == (2, 16)
    for t in ("user", "item"):
        margin, hit = _community_margin(emb[t], 20)
        assert margin > 0.2, (t, margin)
        assert hit >= 0.9, (t, hit)
    # a shuffled graph with the same degrees plants nothing: no margin to find
    shuffled = _planted()
    ei = shuffled.edge_index[("user", "rates", "item")]
    ei[1] = ei[1][torch.randperm(ei.shape[1], generator=torch.Generator().manual_seed(1))]
    shuffled.edge_index[("item", "tagged", "tag")][1] = torch.randint(
        0, 2, (40,), generator=torch.Generator().manual_seed(2)
    )
    margin, hit = _community_margin(node2vec(shuffled, None, cfg)["user"], 20)
    assert margin < 0.05 and hit < 0.75, (margin, hit)


def test_seeded_and_deterministic():
    g = _planted()
    cfg = Node2VecConfig(dim=8, walks_per_node=2, epochs=1, seed=5)
    a, b = node2vec(g, None, cfg), node2vec(g, None, cfg)
    assert all(torch.equal(a[t], b[t]) for t in a)
    c = node2vec(g, None, Node2VecConfig(dim=8, walks_per_node=2, epochs=1, seed=6))
    assert not torch.equal(a["user"], c["user"])


def _star():
    """Walks that go 1 -> 0 then choose among 0's neighbours: 1 (back, weight 1/p), 2
    (a neighbour of 1, weight 1), 3 and 4 (two steps from 1, weight 1/q each)."""
    edges = torch.tensor([[0, 0, 0, 0, 1], [1, 2, 3, 4, 2]])
    return adjacency(edges, 5)


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0), (4.0, 0.25)])
def test_second_step_follows_node2vec_weights(p, q):
    colptr, col, keys = _star()
    starts = torch.full((60_000,), 1)
    walks = random_walks(colptr, col, keys, starts, 2, p, q, torch.Generator().manual_seed(0))
    via0 = walks[walks[:, 1] == 0][:, 2]
    assert len(via0) > 25_000  # node 1's neighbours are 0 and 2
    w = torch.tensor([1 / p, 1.0, 1 / q, 1 / q])
    want = w / w.sum()
    got = torch.stack([(via0 == x).float().mean() for x in (1, 2, 3, 4)])
    assert torch.allclose(got, want, atol=0.012), (got, want)
    # every step is along an edge
    steps = walks[:, 1:] + 5 * walks[:, :-1]
    assert torch.isin(steps.flatten(), keys).all()


def _grid(side: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    idx = torch.arange(side * side).view(side, side)
    right = torch.stack([idx[:, :-1].flatten(), idx[:, 1:].flatten()])
    down = torch.stack([idx[:-1, :].flatten(), idx[1:, :].flatten()])
    return adjacency(torch.cat([right, down], 1), side * side)


def test_p_and_q_make_walks_bfs_or_dfs_like():
    """Small q: walks move outward (DFS-like, far from the start); large q and small p:
    they stay near it (BFS-like) and return often."""
    side = 41
    colptr, col, keys = _grid(side)
    centre = (side // 2) * side + side // 2
    starts = torch.full((4000,), centre)

    def run(p, q):
        w = random_walks(colptr, col, keys, starts, 12, p, q, torch.Generator().manual_seed(1))
        r, c = w // side, w % side
        dist = ((r[:, -1] - r[:, 0]).abs() + (c[:, -1] - c[:, 0]).abs()).float().mean()
        back = (w[:, 2:] == w[:, :-2]).float().mean()
        return float(dist), float(back)

    dfs, uniform, bfs = run(1.0, 0.25), run(1.0, 1.0), run(0.25, 4.0)
    assert dfs[0] > uniform[0] + 0.5 > bfs[0] + 2.0, (dfs, uniform, bfs)
    assert bfs[1] > uniform[1] + 0.2 > dfs[1] + 0.3, (dfs, uniform, bfs)


def test_held_out_target_edges_are_not_walked():
    g = _planted()
    n = g.target_index.shape[1]
    keep = torch.arange(0, n, 2)
    cfg = Node2VecConfig(dim=8, walks_per_node=2, epochs=1, seed=1)
    a = node2vec(g, keep, cfg)
    g.edge_index[g.target][1, 1] = (g.edge_index[g.target][1, 1] + 7) % 40  # not kept
    b = node2vec(g, keep, cfg)
    assert torch.equal(a["item"], b["item"])
    g.edge_index[g.target][1, 0] = (g.edge_index[g.target][1, 0] + 7) % 40  # kept
    assert not torch.equal(node2vec(g, keep, cfg)["item"], a["item"])


def test_projection_without_users_embeds_items_only():
    """The tutorial's projection: items and tags, no users (and no target edges)."""
    g = _planted()
    cfg = Node2VecConfig(
        dim=8, walks_per_node=4, batch_size=16, epochs=20, node_types=["item", "tag"]
    )
    emb = node2vec(g, None, cfg)
    assert set(emb) == {"item", "tag"}
    # only the tag edges: an item's neighbours are its tag, so the halves separate
    margin, hit = _community_margin(emb["item"], 20)
    assert margin > 0.2 and hit == 1.0, (margin, hit)


def test_an_item_without_edges_gets_zeros_and_a_warning(capsys):
    g = _planted()
    tagged = g.edge_index[("item", "tagged", "tag")]
    g.edge_index[("item", "tagged", "tag")] = tagged[:, 1:]  # item 0 loses its tag
    emb = node2vec(
        g, None, Node2VecConfig(dim=8, walks_per_node=2, epochs=1, node_types=["item", "tag"])
    )
    assert torch.equal(emb["item"][0], torch.zeros(8))
    assert emb["item"][1:].abs().sum(1).gt(0).all()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "graphrec: warning: build.node2vec: 1 of 40 'item' nodes have no edge in the "
        "projection (with training edges only, in evaluate mode): their vectors are zero"
    ]


@pytest.mark.parametrize(
    "kwargs,kind,message",
    [
        (
            {"node_types": ["user", "tag"]},
            DataError,
            "build.node2vec: node type 'user' has no edge in the projection (edge types []): "
            "leave it out of node_types or add an edge type that reaches it",
        ),
        (
            {"node_types": ["film"]},
            ConfigError,
            "build.node2vec.node_types: no node type 'film' in the graph "
            "(it has ['user', 'item', 'tag'])",
        ),
        (
            {"edge_types": ["acted_in"]},
            ConfigError,
            "build.node2vec.edge_types: no edge type 'acted_in' in the graph "
            "(it has ['rates', 'tagged'])",
        ),
        (
            {"node_types": ["item", "tag"], "edge_types": ["rates"]},
            ConfigError,
            "build.node2vec.edge_types: 'rates' joins 'user' and 'item', and node_types "
            "['item', 'tag'] leave one of them out",
        ),
    ],
)
def test_bad_projections_are_refused_in_one_line(kwargs, kind, message):
    with pytest.raises(kind) as e:
        node2vec(_planted(), None, Node2VecConfig(dim=4, **kwargs))
    assert str(e.value) == message


def test_a_node_type_without_nodes_is_refused():
    g = _planted()
    g.node_ids["tag"] = pa.array([], pa.int64())
    g.edge_index[("item", "tagged", "tag")] = torch.empty(2, 0, dtype=torch.int64)
    with pytest.raises(DataError, match="build.node2vec: node type 'tag' has no nodes"):
        node2vec(g, None, Node2VecConfig(dim=4))


@pytest.mark.parametrize(
    "field,value", [("p", 0.0), ("q", -1.0), ("lr", float("nan")), ("window", 0)]
)
def test_bad_settings_are_refused(field, value):
    with pytest.raises(ConfigError, match=f"build.node2vec.{field}="):
        Node2VecConfig(**{field: value})


def test_a_job_trains_on_node2vec_features(tiny_root, tmp_path):
    """build.node2vec end to end: the projected type's features grow by ``dim`` columns
    (from training edges only), the job trains and recommends on them."""
    from graphrec.job import run_job
    from graphrec.pipeline import extract_and_build
    from tests.conftest import make_config, tiny_config_dict

    data = tiny_config_dict(tiny_root, tmp_path)
    plain, _ = extract_and_build(make_config(data), progress=False)
    data["build"]["node2vec"] = {"dim": 6, "epochs": 1, "walks_per_node": 2}
    result = run_job(make_config(data), progress=False)
    dims = result.metrics["stages"]["build"]["feature_dims"]
    assert dims == {"movie": plain.x["movie"].shape[1] + 6, "user": 6}, dims
    assert (result.run_dir / "recommendations.parquet").is_file()
    # new nodes would have no such vectors: transform and serve refuse the run in one line
    from graphrec.transform import load_current, read_run, run_config

    run = read_run(result.run_dir)
    with pytest.raises(ConfigError, match=r"structural features \(build.node2vec\)"):
        load_current(run, run_config(run))
