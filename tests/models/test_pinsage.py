"""The PinSage-style model on the tiny graph: shapes, importance-based neighbourhoods from
random walks over the message graph, the mini-batch computation graph against the full
one, a few training steps, and its registry entry's checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphrec.config import PinSageConfig
from graphrec.errors import ConfigError
from graphrec.graph import build_graph, message_graph, split_edges
from graphrec.loaders import extract, make_source
from graphrec.models import MODELS, check_model
from graphrec.models.pinsage import PinSageRecommender, build_pinsage
from graphrec.models.registry import LINK_LOSSES, build, ranks_items
from graphrec.samplers.random_walk import item_neighbourhoods

T = ("user", "rates", "movie")
USERS, ITEMS, DIM = 12, 20, 8


@pytest.fixture
def tiny(tiny_cfg):
    """(config for pinsage, graph, split, training message graph) of the tiny graph."""
    cfg = tiny_cfg
    cfg.model.name = "pinsage"
    cfg.train.objective, cfg.train.loss = "link", "bpr"
    g = build_graph(extract(make_source(cfg.extract), progress=False), cfg, False)
    s = split_edges(cfg.build.split, g.target_index.shape[1], g.target_index[0], g.time)
    return cfg, g, s, message_graph(g, s.train)


def model_of(cfg, g, s, **pinsage) -> PinSageRecommender:
    for key, value in pinsage.items():
        setattr(cfg.model.pinsage, key, value)
    torch.manual_seed(0)
    return build_pinsage(g, s, cfg)


def co_rated(data) -> set[tuple[int, int]]:
    """Item pairs that share a user in ``data`` (one item -> user -> item walk)."""
    ei = data[T].edge_index
    by_user: dict[int, set[int]] = {}
    for u, i in ei.t().tolist():
        by_user.setdefault(u, set()).add(i)
    return {(i, j) for items in by_user.values() for i in items for j in items if i != j}


def test_built_from_the_config(tiny):
    cfg, g, s, _ = tiny
    m = model_of(cfg, g, s, top_t=4, walks=7, walk_length=3)
    assert (m.top_t, m.walks, m.walk_length, m.seed) == (4, 7, 3, cfg.train.seed)
    assert m.user_emb.weight.shape == (USERS, DIM) and m.item_emb.weight.shape == (ITEMS, DIM)
    assert m.inp is not None and m.inp.in_features == g.x["movie"].shape[1]  # genres
    assert len(m.w) == len(cfg.sampler.num_neighbors) == 2  # one layer per hop


def test_forward_encode_and_vectors_shapes_agree(tiny):
    cfg, g, s, data = tiny
    m = model_of(cfg, g, s)
    z = m.encode(data)
    assert z["user"].shape == (USERS, DIM) and z["movie"].shape == (ITEMS, DIM)
    pairs = g.target_index[:, s.test]
    scores = m(data, pairs)
    assert scores.shape == (pairs.shape[1],) and torch.isfinite(scores).all()
    cand = torch.tensor([0, 5, 19])
    both, per_cand = m(data, pairs, cand)
    assert per_cand.shape == (pairs.shape[1], 3)
    assert torch.allclose(both, scores)
    uv, iv = m.vectors(data)
    assert uv.shape == (USERS, DIM + 1) and iv.shape == (ITEMS, DIM + 1)
    assert m.training  # vectors() leaves the mode as it was
    # ranking vectors give the pair scores exactly (user . item + item bias)
    assert torch.allclose((uv @ iv.t())[pairs[0], pairs[1]], scores, atol=1e-5)
    assert torch.allclose((uv @ iv.t())[pairs[0]][:, cand], per_cand, atol=1e-5)


def test_a_mini_batch_computes_the_same_items_as_the_full_graph(tiny):
    cfg, g, s, data = tiny
    m = model_of(cfg, g, s, top_t=3)
    full = m.encode(data)["movie"]
    ids = torch.tensor([7, 2, 11])
    assert torch.allclose(m.items(data, ids), full[ids], atol=1e-6)
    pairs = torch.tensor([[0, 3, 9], [7, 2, 11]])
    want = (full[ids] * m.user_emb.weight[pairs[0]]).sum(-1) + m.item_bias.weight[ids, 0]
    assert torch.allclose(m(data, pairs), want, atol=1e-6)
    assert torch.allclose(m.score(data, m.encode(data), pairs), want, atol=1e-6)


def test_neighbourhoods_are_the_random_walks_over_the_message_graph(tiny):
    cfg, g, s, data = tiny
    m = model_of(cfg, g, s, top_t=5, walks=20, walk_length=1)
    nbr, w = m.neighbourhoods(data)
    ei = data[T].edge_index
    want = item_neighbourhoods(ei[0], ei[1], USERS, ITEMS, 20, 1, 5, cfg.train.seed)
    assert torch.equal(nbr, want[0]) and torch.allclose(w, want[1])
    # one item -> user -> item step: every neighbour shares a user with its item
    pairs = co_rated(data)
    for i in range(ITEMS):
        got = nbr[i][nbr[i] >= 0].tolist()
        assert got and i not in got
        assert all((i, j) in pairs for j in got), (i, got)
        assert float(w[i].sum()) == pytest.approx(1.0)
        assert torch.all(w[i, :-1] >= w[i, 1:])  # most visited first
    # the training edges only: the walks never cross a held-out edge's new co-rating
    held_out_only = co_rated(message_graph(g, None)) - pairs
    assert held_out_only  # the tiny split does hold some out
    assert not any((i, j) in held_out_only for i in range(ITEMS) for j in nbr[i].tolist())


def test_neighbourhoods_are_reproducible_cached_and_follow_the_graph(tiny):
    cfg, g, s, data = tiny
    first = model_of(cfg, g, s, walks=10)
    again = model_of(cfg, g, s, walks=10)
    a, b = first.neighbourhoods(data), again.neighbourhoods(data)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # same seed, same walks
    assert first.neighbourhoods(data)[0] is a[0]  # cached for the same graph
    cfg.train.seed = 1
    other = model_of(cfg, g, s, walks=10).neighbourhoods(data)
    assert not torch.equal(other[1], a[1])  # another seed, other walks
    full = first.neighbourhoods(message_graph(g, None))  # more edges: walked again
    assert not torch.equal(full[1], a[1])


@pytest.mark.parametrize("top_t", [1, 3])
def test_top_t_bounds_the_neighbours_and_keeps_the_most_visited(tiny, top_t):
    cfg, g, s, data = tiny
    wide = model_of(cfg, g, s, top_t=12, walks=30).neighbourhoods(data)
    nbr, w = model_of(cfg, g, s, top_t=top_t, walks=30).neighbourhoods(data)
    assert nbr.shape == w.shape == (ITEMS, top_t)
    assert ((nbr >= 0).sum(1) <= top_t).all()
    # the same walks: the first top_t of the wider list, weights renormalized over them
    assert torch.equal(nbr, wide[0][:, :top_t])
    kept = wide[1][:, :top_t]
    assert torch.allclose(w, kept / kept.sum(1, keepdim=True))
    # a wider top_t than the distinct visited items pads with -1 and weight 0
    assert (wide[0] == -1).any() and (wide[1][wide[0] == -1] == 0).all()


def test_an_item_depends_only_on_its_neighbourhood(tiny):
    """One layer: item i's embedding reads its own state and its top_t neighbours', no
    other item's."""
    cfg, g, s, data = tiny
    cfg.model.layers = 1
    m = model_of(cfg, g, s, top_t=2)
    nbr, _ = m.neighbourhoods(data)
    i = 4
    near = set(nbr[i][nbr[i] >= 0].tolist())
    far = next(j for j in range(ITEMS) if j != i and j not in near)
    before = m.encode(data)["movie"].detach()
    with torch.no_grad():
        m.item_emb.weight[far] += 5.0
    after = m.encode(data)["movie"].detach()
    assert torch.allclose(after[i], before[i])
    assert not torch.allclose(after[far], before[far])
    with torch.no_grad():
        m.item_emb.weight[next(iter(near))] += 5.0
    assert not torch.allclose(m.encode(data)["movie"][i], before[i])


def test_a_few_bpr_steps_lower_the_loss(tiny):
    cfg, g, s, data = tiny
    m = model_of(cfg, g, s)
    ei = g.target_index[:, s.train]
    have = set(map(tuple, ei.t().tolist()))
    gen = torch.Generator().manual_seed(0)
    neg = []
    for u in ei[0].tolist():  # one fixed unseen item per training edge
        j = int(torch.randint(ITEMS, (1,), generator=gen))
        while (u, j) in have:
            j = int(torch.randint(ITEMS, (1,), generator=gen))
        neg.append(j)
    pairs = torch.cat([ei, torch.stack([ei[0], torch.tensor(neg)])], 1)
    n = ei.shape[1]

    def loss():
        scores = m(data, pairs)
        return -F.logsigmoid(scores[:n] - scores[n:]).mean()

    before = [p.detach().clone() for p in m.parameters()]
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    start = loss().item()
    for _ in range(15):
        opt.zero_grad()
        step = loss()
        step.backward()
        opt.step()
    end = loss().item()
    assert start == pytest.approx(0.693, abs=0.05)  # untrained: about log 2
    assert end < 0.5 * start, (start, end)
    changed = [not torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True)]
    assert all(changed)  # every parameter takes part (embeddings, Q, W, G, bias, inputs)


def test_registry_entry_and_its_check(tiny):
    cfg, g, s, _ = tiny
    spec = MODELS["pinsage"]
    assert spec.build is build_pinsage and spec.batches == "user"
    assert spec.losses == LINK_LOSSES and spec.options == ("hard_negatives",)
    assert spec.check is ranks_items
    assert check_model(cfg) is spec
    cfg.train.objective, cfg.train.loss = "rating", "mse"
    with pytest.raises(ConfigError, match="model.name=pinsage ranks items"):
        check_model(cfg)
    with pytest.raises(ConfigError, match="ranks items"):
        build(g, s, cfg)  # the registry's build checks first
    cfg.train.objective = "link"  # a link objective, but a loss pinsage does not train with
    with pytest.raises(ConfigError, match="train.loss=mse is not a loss of model.name=pinsage"):
        check_model(cfg)


@pytest.mark.parametrize("key", ["top_t", "walks", "walk_length"])
def test_a_neighbourhood_setting_below_one_is_refused(key):
    with pytest.raises(ConfigError, match=rf"model.pinsage.{key}=0: must be >= 1"):
        PinSageConfig(**{key: 0})
