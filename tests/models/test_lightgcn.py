"""LightGCN's rating-weighted adjacency, item features and the weighted multinomial loss,
against hand computations on a 2-user, 3-item graph."""

import torch
from torch_geometric.data import HeteroData

from graphrec.models.lightgcn import LightGCNRecommender
from graphrec.samplers.users import UserBatch

T = ("user", "rates", "movie")


def graph(x_items: torch.Tensor | None = None) -> HeteroData:
    data = HeteroData()
    data["user"].num_nodes, data["movie"].num_nodes = 2, 3
    # user 0: movies 0 (rated 5), 1 (rated 2); user 1: movie 1 (rated 4), movie 2 (rated 1)
    data[T].edge_index = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 2]])
    data[T].label = torch.tensor([5.0, 2.0, 4.0, 1.0])
    if x_items is not None:
        data["movie"].x = x_items
    return data


def model(**kw) -> LightGCNRecommender:
    torch.manual_seed(0)
    return LightGCNRecommender(2, 3, dim=4, layers=2, target=T, **kw)


def test_unweighted_adjacency_is_the_symmetric_normalization():
    adj = model()._graph(graph()).to_dense()
    # node ids: users 0, 1; movies 2, 3, 4. Degrees: u0 2, u1 2, m0 1, m1 2, m2 1
    assert torch.isclose(adj[0, 2], torch.tensor(1 / (2 * 1) ** 0.5))
    assert torch.isclose(adj[0, 3], torch.tensor(1 / (2 * 2) ** 0.5))
    assert torch.equal(adj, adj.t()) and int((adj != 0).sum()) == 8


def test_edges_rated_below_the_threshold_get_the_low_weight():
    adj = model(low_label_weight=0.25, threshold=4.0)._graph(graph()).to_dense()
    # weighted degrees: u0 1 + .25, u1 1 + .25, m0 1, m1 .25 + 1, m2 .25
    d_u, d_m1 = 1.25, 1.25
    assert torch.isclose(adj[0, 2], torch.tensor(1.0 / (d_u * 1.0) ** 0.5))  # rated 5
    assert torch.isclose(adj[0, 3], torch.tensor(0.25 / (d_u * d_m1) ** 0.5))  # rated 2
    assert torch.isclose(adj[1, 4], torch.tensor(0.25 / (d_u * 0.25) ** 0.5))  # rated 1
    # weight 1 is the plain LightGCN adjacency
    plain = model(low_label_weight=1.0)._graph(graph()).to_dense()
    assert torch.allclose(plain, model()._graph(graph()).to_dense())


def test_item_features_reach_items_and_their_users_through_propagation():
    x = torch.randn(3, 5)
    m = model(item_features=5)
    z = m.encode(graph(x))
    x2 = x.clone()
    x2[2] += 1.0  # movie 2: rated by user 1 only
    z2 = m.encode(graph(x2))
    assert not torch.allclose(z["movie"][2], z2["movie"][2])
    assert not torch.allclose(z["user"][1], z2["user"][1])
    assert torch.allclose(z["movie"][0], z2["movie"][0])  # 3 hops away from movie 2
    plain = model()  # no feature map: features are ignored
    assert plain.inp is None
    assert torch.allclose(plain.encode(graph(x))["movie"], plain.encode(graph(x2))["movie"])


def test_edge_weights_scale_each_items_share_of_the_multinomial_loss():
    from pathlib import Path

    from graphrec.config import load_config
    from graphrec.train.losses import batch_loss

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs/movielens-link.yaml", ["train.embedding_l2=0"])
    m, data = model(), graph()
    users, owner, pos = torch.tensor([0, 1]), torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 2])
    empty = torch.empty(2, 0, dtype=torch.long)
    plain, n = batch_loss(m, UserBatch(users, pos, empty, data, owner), cfg)
    ones, _ = batch_loss(m, UserBatch(users, pos, empty, data, owner, torch.ones(4)), cfg)
    half, _ = batch_loss(m, UserBatch(users, pos, empty, data, owner, torch.full((4,), 0.5)), cfg)
    assert n == 4 and torch.isclose(plain, ones) and torch.isclose(half, plain / 2)
    # weight 0 on user 0's second item: only its first item counts (per-user mean over 2)
    w = torch.tensor([1.0, 0.0, 1.0, 1.0])
    got, _ = batch_loss(m, UserBatch(users, pos, empty, data, owner, w), cfg)
    z = m.encode(data)
    logp = torch.log_softmax(z["user"] @ z["movie"].t(), 1)
    want = -((logp[0, 0] + 0.0) / 2 + (logp[1, 1] + logp[1, 2]) / 2) / 2
    assert torch.isclose(got, want, atol=1e-6)
