"""An undirected target between one node type (friendships): pairs kept once, messages
both ways, a held-out pair hidden in both directions, nobody recommended to themselves or
to a friend they already have."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.graph import build_graph, message_graph, split_target
from graphrec.job import run_job
from graphrec.loaders import extract, make_source
from tests.conftest import make_config, tiny_config_dict


def write_friends(root, people: int = 30) -> list[tuple[int, int]]:
    """Three circles of ten friends each (every other pair), a few links between them, one
    self-loop and one friendship listed in both directions."""
    pairs = []
    for c in range(3):
        members = [c * 10 + i for i in range(10)]
        pairs += [(a, b) for a in members for b in members if a < b and (a + b) % 2 == 0]
    pairs += [(0, 10), (10, 20), (5, 25)]
    rows = [*pairs, (7, 7), (10, 0)]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "friends.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b"])
        w.writerows(rows)
    return pairs


def friends_config(root, tmp_path, **build) -> dict:
    data = tiny_config_dict(root, tmp_path)
    data["extract"]["nodes"] = {"person": {"id": "personId"}}
    data["extract"]["edges"] = {
        "friend": {"src": "person", "dst": "person", "src_id": "a", "dst_id": "b",
                   "file": "friends.csv"}
    }  # fmt: skip
    data["build"].update(target="friend", label=None, timestamp=None, features={}, **build)
    data["evaluate"] = {"k": 5}
    data["train"].update(objective="link", loss="bpr")
    return data


@pytest.fixture
def friends(tmp_path):
    root = tmp_path / "social"
    return root, write_friends(root)


def test_pairs_are_kept_once_and_split_together(friends, tmp_path):
    root, pairs = friends
    cfg = make_config(friends_config(root, tmp_path))
    g = build_graph(extract(make_source(cfg.extract), progress=False), cfg, progress=False)
    assert g.undirected and g.same_type
    assert g.num_pairs == len(pairs) and g.target_index.shape[1] == 2 * len(pairs)
    assert g.stats["self_loops_dropped"] == 1 and g.stats["repeated_pairs_merged"] == 1
    ei = g.target_index
    assert torch.equal(ei[:, g.num_pairs :], ei[:, : g.num_pairs].flip(0))
    split = split_target(cfg.build.split, g)
    for part in (split.train, split.val, split.test):
        first = part[part < g.num_pairs]
        assert torch.equal(part[part >= g.num_pairs] - g.num_pairs, first)  # both ways
    assert len(split.test) > 0
    data = message_graph(g, split.train)
    assert data.edge_types == [("person", "friend", "person")]  # no rev_ copy
    msg = {tuple(p) for p in data["person", "friend", "person"].edge_index.t().tolist()}
    for j in split.test[:5].tolist():
        a, b = ei[:, j].tolist()
        assert (a, b) not in msg and (b, a) not in msg


@pytest.mark.parametrize("model", ["lightgcn", "sage"])
def test_friend_recommendations_skip_oneself_and_existing_friends(friends, tmp_path, model):
    root, pairs = friends
    data = friends_config(root, tmp_path)
    data["mode"] = "final"
    data["model"]["name"] = model
    if model == "lightgcn":  # as the default config: multinomial, blended with EASE
        data["train"].update(loss="multinomial", low_label_weight=1.0)
        data["model"]["blend"] = "auto"
    result = run_job(make_config(data), progress=False)
    recs = pq.read_table(result.run_dir / "recommendations.parquet").to_pylist()
    known = {(a, b) for a, b in pairs} | {(b, a) for a, b in pairs}
    assert recs and all(r["user_id"] != r["item_id"] for r in recs)
    assert not any((r["user_id"], r["item_id"]) in known for r in recs)
    assert len({r["user_id"] for r in recs}) == 30


def test_evaluation_counts_held_out_friends_from_both_ends(friends, tmp_path):
    root, _ = friends
    result = run_job(make_config(friends_config(root, tmp_path)), progress=False)
    m = result.metrics
    assert m["ndcg@5"] is not None and 0 <= m["ndcg@5"] <= 1
    assert m["stages"]["build"]["test_edges"] % 2 == 0  # both directions of each pair


def test_undirected_true_needs_one_node_type(tiny_root, tmp_path):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["build"]["undirected"] = True
    with pytest.raises(ConfigError, match="build.undirected=true: the target 'rates' joins user"):
        make_config(data)
