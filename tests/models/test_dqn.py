"""The DQN recommender: states and rewards by hand, a replay memory that wraps, a planted
sequential world where looking forward pays (it must beat popularity there), seeded runs,
the job end to end with its per-episode plot, and one-line refusals."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from graphrec.compare.baselines import VectorRanker
from graphrec.compare.runner import Protocol, run_baseline
from graphrec.config import DQNConfig, SplitConfig
from graphrec.errors import ConfigError
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit, split_edges
from graphrec.models.dqn import Sequences
from graphrec.train.batches import TrainInputs
from graphrec.train.episodes import Replay
from graphrec.train.loop import train_loop_per_worker
from tests.conftest import make_config, tiny_config_dict
from tests.test_job import check_recommendations, tiny_ratings


def _graph(users, items, times, n_users, n_items) -> Graph:
    return Graph(
        node_ids={"user": pa.array(range(n_users)), "item": pa.array(range(n_items))},
        x={},
        edge_index={("user", "rents", "item"): torch.tensor([users, items])},
        target=("user", "rents", "item"),
        time=torch.tensor(times),
    )


def test_states_are_means_of_the_last_items_and_rewards_look_forward():
    # user 0 rents items 2, 0, 1, 3 (in time order, given shuffled); user 1 rents 1 only
    g = _graph([0, 0, 1, 0, 0], [0, 2, 1, 3, 1], [20, 10, 5, 40, 30], 2, 4)
    vec = torch.eye(4)
    seq = Sequences(g, torch.arange(5), vec, window=2)
    assert seq.items.tolist() == [2, 0, 1, 3, 1] and seq.start.tolist() == [0, 4, 5]
    want = torch.stack(
        [vec[2], (vec[2] + vec[0]) / 2, (vec[0] + vec[1]) / 2, (vec[1] + vec[3]) / 2]
    )
    assert torch.allclose(seq.states[:4], want)
    assert torch.equal(seq.final_states(2, 4), torch.stack([want[3], vec[1]]))
    # at position 0 (after item 2) the next two items are 0 and 1: only they earn a reward,
    # never the item already rented, nor one beyond the horizon or of another user
    j = torch.tensor([0, 0, 0, 0, 2, 3])
    acts = torch.tensor([0, 1, 2, 3, 3, 1])
    assert seq.future_hits(j, acts, horizon=2).tolist() == [1, 1, 0, 0, 1, 0]


def test_replay_memory_wraps_and_samples_what_it_holds():
    r = Replay(5)
    r.push(torch.arange(3), torch.arange(3), torch.ones(3))
    assert r.filled == 3
    r.push(torch.arange(10, 17), torch.arange(7), torch.zeros(7))  # longer than the memory
    assert r.filled == 5 and sorted(r.j.tolist()) == [12, 13, 14, 15, 16]
    j, _, _ = r.sample(100, torch.Generator().manual_seed(0))
    assert set(j.tolist()) <= {12, 13, 14, 15, 16}


def _planted(n_items: int = 30, n_users: int = 60, length: int = 12) -> Graph:
    """Every user walks the same cycle of items: from a random start, items s, s+1, ...;
    whoever has rented items up to k rents k+1 next. Popularity is flat by design."""
    gen = torch.Generator().manual_seed(0)
    users, items, times = [], [], []
    for u in range(n_users):
        s = int(torch.randint(n_items, (1,), generator=gen))
        for t in range(length):
            users.append(u)
            items.append((s + t) % n_items)
            times.append(1000 * u + t)
    return _graph(users, items, times, n_users, n_items)


def _cfg(tmp_path, **dqn):
    data = tiny_config_dict(tmp_path, tmp_path)
    data["build"].update(label=None, timestamp="timestamp")
    data["model"] = {"name": "dqn", "dqn": {"horizon": 3, "state_window": 3, **dqn}}
    data["train"] = {"objective": "link", "loss": "bce", "epochs": 8, "lr": 0.01,
                     "patience": 0, "seed": 0}  # fmt: skip
    data["build"]["node2vec"] = {"dim": 16, "window": 3}
    data["evaluate"] = {"k": 10, "positive_threshold": 0.0}
    return make_config(data)


def test_dqn_learns_what_comes_next_and_beats_popularity(tmp_path):
    g = _planted()
    ei = g.target_index
    split = split_edges(SplitConfig(kind="last"), ei.shape[1], ei[0], g.time)
    cfg = _cfg(tmp_path)
    inputs = TrainInputs.of(g, split, cfg)
    model, result = train_loop_per_worker({"cfg": cfg, "inputs": inputs, "progress": False})
    proto = Protocol(g, split, 0.0)
    uv, iv = model.vectors(inputs.data)
    dqn = proto.rank(VectorRanker(uv, iv), "test")
    pop = run_baseline("popularity", proto, 0)
    assert dqn["ndcg@10"] > pop["ndcg@10"] + 0.2, (dqn["ndcg@10"], pop["ndcg@10"])
    assert dqn["hit@10"] >= 0.8  # the item that comes next is in most users' top 10
    # the chosen epoch beat the first policy (popularity) on validation beyond the noise
    assert result.best_epoch > 0
    assert result.history[result.best_epoch - 1]["val_gain_low"] > 0
    # per-episode records for the plot: one per user with two training items, per epoch
    ep = result.stats["episodes"]
    assert len(ep["loss"]) == len(ep["epsilon"]) == len(ep["mean_reward"])
    assert (
        len(ep["loss"]) % 60 == 0
        and ep["epsilon"][0] == 1.0
        and ep["epsilon"][-1] == pytest.approx(0.05)
    )
    assert all(torch.isfinite(torch.tensor(ep["loss"])))
    # greedy play earns more than random play did at the start: it learned the order
    early = sum(ep["mean_reward"][:60]) / 60
    late = sum(ep["mean_reward"][-60:]) / 60
    assert late > early + 0.2, (early, late)


def test_seeded_runs_are_identical(tmp_path):
    g = _planted(length=6)
    split = EdgeSplit(torch.arange(g.target_index.shape[1]), torch.empty(0, dtype=torch.long),
                      torch.empty(0, dtype=torch.long))  # fmt: skip
    cfg = _cfg(tmp_path, replay=50)
    cfg.train.epochs = 2
    inputs = TrainInputs.of(g, split, cfg)
    a, _ = train_loop_per_worker({"cfg": cfg, "inputs": inputs, "progress": False})
    b, _ = train_loop_per_worker({"cfg": cfg, "inputs": inputs, "progress": False})
    assert all(torch.equal(x, y) for x, y in zip(a.vectors(None), b.vectors(None), strict=True))


def test_the_job_writes_recommendations_and_the_episode_plot(tiny_root, tmp_path, capsys):
    from graphrec.job import run_job

    data = tiny_config_dict(tiny_root, tmp_path)
    data["model"] = {"name": "dqn", "dqn": {"batch_size": 16}}
    data["train"].update(objective="link", loss="bce", epochs=2)
    data["build"]["split"] = {"kind": "last"}
    data["build"]["node2vec"] = {"dim": 8, "walks_per_node": 2, "epochs": 1}
    result = run_job(make_config(data), progress=False)
    assert (result.run_dir / "dqn_episodes.png").stat().st_size > 10_000
    check_recommendations(result.run_dir, tiny_ratings(tiny_root), k=3, n_users=12)
    assert result.metrics["ndcg@20"] is not None


@pytest.mark.parametrize(
    "change,message",
    [
        ({"build": {"timestamp": None}}, "model.name=dqn needs build.timestamp"),
        ({"distributed": {"workers": 2}}, "model.name=dqn trains in one process"),
        ({"train": {"objective": "rating", "loss": "mse"}}, "model.name=dqn ranks items"),
    ],
)
def test_settings_it_cannot_use_are_refused(tiny_root, tmp_path, change, message):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["model"] = {"name": "dqn"}
    data["train"].update(objective="link", loss="bce")
    for section, values in change.items():
        data.setdefault(section, {}).update(values)
    from graphrec.models import check_model

    with pytest.raises(ConfigError, match=message):
        check_model(make_config(data))


def test_a_user_with_one_item_is_warned_and_still_ranked(tmp_path, capsys):
    g = _planted(length=6)
    # user 0 keeps only its first item
    keep = torch.tensor([i for i in range(g.target_index.shape[1]) if not (0 < i < 6)])
    g = _graph(g.target_index[0, keep].tolist(), g.target_index[1, keep].tolist(),
               g.time[keep].tolist(), 60, 30)  # fmt: skip
    split = EdgeSplit(torch.arange(g.target_index.shape[1]), torch.empty(0, dtype=torch.long),
                      torch.empty(0, dtype=torch.long))  # fmt: skip
    cfg = _cfg(tmp_path)
    cfg.train.epochs = 1
    model, _ = train_loop_per_worker(
        {"cfg": cfg, "inputs": TrainInputs.of(g, split, cfg), "progress": False}
    )
    assert "model.name=dqn: 1 users have a single training item" in capsys.readouterr().err
    uv, _ = model.vectors(None)
    assert torch.isfinite(uv).all() and uv[0, :-1].abs().sum() > 0


def test_bad_dqn_settings_are_refused():
    with pytest.raises(ConfigError, match="model.dqn.gamma"):
        DQNConfig(gamma=1.0)
    with pytest.raises(ConfigError, match="epsilon_end must not be above"):
        DQNConfig(epsilon_start=0.1, epsilon_end=0.5)


def test_the_first_policy_is_popularity_in_units_of_reward():
    # user 0: 0, 1, 2, 1 ; user 1: 2, 0 -> counts 2, 2, 2 of 6 edges; item 3 never rented
    g = _graph([0, 0, 0, 0, 1, 1], [0, 1, 2, 1, 2, 0], [1, 2, 3, 4, 1, 2], 2, 4)
    seq = Sequences(g, torch.arange(6), torch.eye(4), window=1)
    assert seq.popularity_prior(4, 1).tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])
    assert seq.popularity_prior(4, 6).tolist() == [1.0, 1.0, 1.0, 0.0]  # at most 1


def test_without_sequential_signal_it_keeps_the_first_policy(tmp_path):
    """Items drawn at random (a skewed popularity, no order): nothing the agent learns
    beats its first policy beyond validation noise, so that policy, popularity, is what it
    recommends."""
    gen = torch.Generator().manual_seed(3)
    weights = 1.0 / torch.arange(1, 31).double()
    users, items, times = [], [], []
    for u in range(80):
        for t, i in enumerate(torch.multinomial(weights, 10, False, generator=gen).tolist()):
            users.append(u)
            items.append(i)
            times.append(100 * u + t)
    g = _graph(users, items, times, 80, 30)
    ei = g.target_index
    split = split_edges(SplitConfig(kind="last"), ei.shape[1], ei[0], g.time)
    cfg = _cfg(tmp_path)
    cfg.train.epochs = 3
    inputs = TrainInputs.of(g, split, cfg)
    model, result = train_loop_per_worker({"cfg": cfg, "inputs": inputs, "progress": False})
    assert result.best_epoch == 0
    assert all(r["val_gain_low"] <= 0 for r in result.history)
    seq = Sequences(g, split.train, torch.zeros(30, 16), 3)
    _, iv = model.vectors(inputs.data)
    assert torch.equal(iv[:, -1], seq.popularity_prior(30, cfg.model.dqn.horizon))
