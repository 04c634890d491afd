"""sampler.temporal: a training edge's subgraph holds only target edges older than itself."""

import math

import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.models.registry import check_model
from graphrec.train.batches import TrainInputs, make_loader
from graphrec.train.loop import new_model, train_loop
from tests.train.test_loop import graph_and_split

ET = ("user", "rates", "movie")
REV = ("movie", "rev_rates", "user")


@pytest.mark.parametrize("objective", ["rating", "link"])
def test_each_edge_sees_only_older_edges(tiny_cfg, objective):
    tiny_cfg.sampler.temporal = True
    tiny_cfg.sampler.num_neighbors = [-1, -1]  # everything allowed is taken: exact check
    tiny_cfg.train.objective = objective
    tiny_cfg.train.loss = "mse" if objective == "rating" else "bce"
    tiny_cfg.build.split.kind = "temporal"
    g, s = graph_and_split(tiny_cfg)
    inputs = TrainInputs.of(g, s, tiny_cfg)
    data = inputs.data
    assert torch.equal(data[ET].time.sort().values, g.time[s.train].sort().values)
    loader = make_loader(data, g, None, tiny_cfg)
    batches = checked = cut = 0
    for batch in loader:
        batches += 1
        # the edge's time - 1 (repeated for its negatives); PyG numbers each labelled
        # edge's subgraph (its user's and its movie's trees, merged) by the edge
        seed_time = batch[ET].edge_label_time
        for et in (ET, REV):
            tree = batch[et[2]].batch[batch[et].edge_index[1]]
            e_time = data[et].time[batch[et].e_id]
            assert (e_time <= seed_time[tree]).all()  # strictly older than the edge
            checked += len(e_time)
        # and every older edge of a seed's user is there (fan-out -1): the exact cut
        users = batch["user"]
        for b in range(4):
            u = int(users.n_id[(users.batch == b).nonzero()[0]])
            older = (data[ET].edge_index[0] == u) & (data[ET].time <= seed_time[b])
            into = batch[REV].edge_index[1]
            mine = (users.batch[into] == b) & (users.n_id[into] == u)
            got = data[REV].edge_index[:, batch[REV].e_id[mine]].flip(0)  # (user, movie)
            want = data[ET].edge_index[:, older]
            assert set(map(tuple, got.t().tolist())) == set(map(tuple, want.t().tolist()))
            cut += 0 < int(older.sum()) < int((data[ET].edge_index[0] == u).sum())
    assert batches == math.ceil(len(s.train) / tiny_cfg.sampler.batch_size)
    assert checked > 0 and cut > 0  # some seeds saw part of their user's edges, not all


def test_a_temporal_run_trains_and_ranks(tiny_cfg):
    tiny_cfg.sampler.temporal = True
    tiny_cfg.build.split.kind = "temporal"
    g, s = graph_and_split(tiny_cfg)
    torch.manual_seed(0)
    model = new_model(g, s, tiny_cfg)
    result = train_loop(model, g, s, tiny_cfg, progress=False)
    assert len(result.history) == 2
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["val_rmse"]) for r in result.history)


def test_temporal_sampling_is_refused_where_it_cannot_apply(tiny_cfg):
    tiny_cfg.sampler.temporal = True
    tiny_cfg.model.name = "lightgcn"
    tiny_cfg.train.objective, tiny_cfg.train.loss = "link", "bpr"
    with pytest.raises(ConfigError, match="not neighbour-sampled.*model.name=sage") as e:
        check_model(tiny_cfg)
    assert "\n" not in str(e.value)
    tiny_cfg.model.name, tiny_cfg.train.loss = "sage", "bce"
    tiny_cfg.build.timestamp = None
    with pytest.raises(ConfigError, match="needs build.timestamp"):
        check_model(tiny_cfg)
