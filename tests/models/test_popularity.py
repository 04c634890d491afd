"""The learned popularity model: registered from its own file, trained by the same loop,
and it learns the item popularity order."""

from __future__ import annotations

import torch

from graphrec.models import MODELS, check_model
from graphrec.train.loop import new_model, train_loop
from tests.train.test_loop import graph_and_split


def test_popularity_is_registered_from_its_own_file():
    spec = MODELS["popularity"]
    assert spec.batches == "user" and spec.build.__module__ == "graphrec.models.popularity"


def test_popularity_learns_the_popularity_order(tiny_cfg):
    tiny_cfg.model.name = "popularity"
    tiny_cfg.train.objective, tiny_cfg.train.loss = "link", "bpr"
    tiny_cfg.train.epochs, tiny_cfg.train.patience, tiny_cfg.train.lr = 30, 0, 0.1
    tiny_cfg.sampler.batch_size = 64
    check_model(tiny_cfg)
    g, s = graph_and_split(tiny_cfg)
    torch.manual_seed(0)
    model = new_model(g, s, tiny_cfg)
    result = train_loop(model, g, s, tiny_cfg, progress=False)
    assert result.val_metric == "val_ndcg@20"
    users, items = model.vectors(None)
    assert users.shape == (g.num_nodes["user"], 1) and torch.all(users == 1)
    counts = torch.bincount(g.target_index[1, s.train], minlength=g.num_nodes["movie"]).float()
    # the learned scores rank items as their training counts do
    corr = torch.corrcoef(torch.stack([items[:, 0], counts]))[0, 1]
    assert corr > 0.8, corr
