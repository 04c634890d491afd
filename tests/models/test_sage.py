"""The HeteroConv-based SAGE encoder on the installed torch / torch-geometric versions."""

import torch
from torch_geometric.data import HeteroData

from graphrec.config import ModelConfig
from graphrec.models import build_model

ET, REV = ("user", "rates", "item"), ("item", "rev_rates", "user")


def tiny_data():
    g = torch.Generator().manual_seed(0)
    data = HeteroData()
    data["user"].num_nodes = 7
    data["item"].num_nodes = 5
    data["item"].x = torch.randn(5, 3, generator=g)
    ei = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    data[ET].edge_index = ei
    data[REV].edge_index = ei.flip(0)
    return data


def test_forward_shapes_and_scores():
    data = tiny_data()
    model = build_model(
        ModelConfig(hidden=8, embedding_dim=4),
        {"user": 7, "item": 5},
        {"item": 3},
        data.edge_types,
        ET,
        num_layers=2,
        init_mean=3.5,
    )
    z = model.encode(data)
    assert z["user"].shape == (7, 8) and z["item"].shape == (5, 8)
    s = model.score(data, z, data[ET].edge_index)
    assert s.shape == (20,) and torch.isfinite(s).all()
    uv, iv = model.vectors(data)
    assert uv.shape == (7, 9) and iv.shape == (5, 9)
    # ranking vectors agree with pairwise scores up to the per-user constant (b_u + mu)
    full = uv @ iv.t()
    u, i = data[ET].edge_index
    model.eval()
    s = model.score(data, model.encode(data), data[ET].edge_index).detach()
    const = model.decoder.user_bias.weight[u, 0] + model.decoder.mean
    assert torch.allclose(full[u, i] + const.detach(), s, atol=1e-5)


def test_learns_a_rating_pattern():
    torch.manual_seed(0)
    data = tiny_data()
    model = build_model(
        ModelConfig(hidden=8, embedding_dim=8),
        {"user": 7, "item": 5},
        {"item": 3},
        data.edge_types,
        ET,
        num_layers=2,
        init_mean=3.0,
    )
    pairs = data[ET].edge_index
    y = (pairs[0] % 3).float() + (pairs[1] % 2).float() + 2
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = ((model.score(data, model.encode(data), pairs) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


import pytest  # noqa: E402


@pytest.mark.parametrize("aggr", ["mean", "max", "sum"])
@pytest.mark.parametrize(
    "batch_nodes,batch_edges", [(1, 100), (2, 100), (3, 5), (1000, 1), (1000, 100)]
)
def test_layerwise_inference_equals_the_full_graph_forward(aggr, batch_nodes, batch_edges):
    """Batched layer-wise inference gives ``forward``'s embeddings in eval mode, whatever
    the batch (a node with no incoming edge, an item type with features, three layers)."""
    torch.manual_seed(1)
    data = tiny_data()
    data["user"].num_nodes = 9  # users 7 and 8 have no edge: they keep their input state
    model = build_model(
        ModelConfig(hidden=8, embedding_dim=4, aggr=aggr, dropout=0.3),
        {"user": 9, "item": 5},
        {"item": 3},
        data.edge_types,
        ET,
        num_layers=3,
    ).eval()
    full = model.encode(data)
    x = {"item": data["item"].x}
    got = model.encoder.inference(
        x, {"user": 9, "item": 5}, data.edge_index_dict, batch_nodes, batch_edges
    )
    for t in ("user", "item"):
        assert torch.allclose(got[t], full[t], atol=1e-5), t
    model.train()  # vectors() runs in eval mode (no dropout) and restores the mode
    uv, iv = model.vectors(data)
    assert model.training
    assert torch.allclose(uv[:, :-1], full["user"], atol=1e-5)


def test_batches_bound_nodes_and_edges():
    from graphrec.models.sage import _batches

    ptr = torch.tensor([0, 2, 3, 10, 10, 11, 12])  # node 2 has 7 incoming edges
    assert _batches(ptr, 100, 3) == [(0, 2), (2, 3), (3, 6)]
    assert _batches(ptr, 2, 100) == [(0, 2), (2, 4), (4, 6)]
    assert _batches(torch.tensor([0]), 4, 4) == []


def test_the_direct_input_and_an_older_checkpoints_input_layer_are_the_same_function():
    """embedding_dim == hidden: a node's input is its embedding (+ a map of its features),
    no matrix product over the embedding; a checkpoint of the older layout (a linear layer
    over [embedding, features] for every type) loads into it and encodes the same."""
    data = tiny_data()
    args = ({"user": 7, "item": 5}, {"item": 3}, data.edge_types, ET)
    new = build_model(ModelConfig(hidden=6, embedding_dim=6), *args, num_layers=2)
    enc = new.encoder
    assert set(enc.inp) == {"item"} and enc.inp["item"].in_features == 3
    # the older layout's parameters, drawn at random, and its input computed by hand
    g = torch.Generator().manual_seed(1)
    old = {k: v.clone() for k, v in new.state_dict().items()}
    for t, d in (("user", 6), ("item", 6 + 3)):
        old[f"encoder.inp.{t}.weight"] = torch.randn(6, d, generator=g)
        old[f"encoder.inp.{t}.bias"] = torch.randn(6, generator=g)
        old[f"encoder.embedding.{t}.weight"] = torch.randn(args[0][t], 6, generator=g)
    want = {}
    for t in ("user", "item"):
        z = old[f"encoder.embedding.{t}.weight"]
        if t == "item":
            z = torch.cat([z, data["item"].x], 1)
        want[t] = z @ old[f"encoder.inp.{t}.weight"].t() + old[f"encoder.inp.{t}.bias"]
    new.load_state_dict(old)  # strict: every key placed
    for t in ("user", "item"):
        n_id = torch.arange(args[0][t])
        got = enc._input(t, n_id, data[t].x if t == "item" else None)
        torch.testing.assert_close(got, want[t])
    # and the whole encoder agrees with a model that keeps the older layer explicitly
    wide = build_model(ModelConfig(hidden=6, embedding_dim=6), *args, num_layers=2)
    wide.encoder.direct = False
    wide.encoder.inp = torch.nn.ModuleDict(
        {t: torch.nn.Linear(d, 6) for t, d in (("user", 6), ("item", 9))}
    )
    wide.load_state_dict(old)
    new.eval(), wide.eval()
    for t, z in new.encode(data).items():
        torch.testing.assert_close(z, wide.encode(data)[t])


def test_rows_give_the_embeddings_values_and_dense_gradient():
    from graphrec.models.sage import _lookup

    emb = torch.nn.Embedding(30, 4)
    index = torch.tensor([3, 29, 0, 3, 7])  # a repeat: its gradients add
    w = torch.randn(5, 4)
    ours = _lookup(emb, index)
    (ours * w).sum().backward()
    ours_grad, emb.weight.grad = emb.weight.grad.clone(), None
    ref = emb(index)
    (ref * w).sum().backward()
    assert torch.equal(ours, ref) and not ours_grad.is_sparse
    torch.testing.assert_close(ours_grad, emb.weight.grad)
    freq = torch.nn.Embedding(30, 4, scale_grad_by_freq=True)  # nn.Embedding's own gradient
    (_lookup(freq, index) * w).sum().backward()
    scaled, freq.weight.grad = freq.weight.grad.clone(), None
    (freq(index) * w).sum().backward()
    torch.testing.assert_close(scaled, freq.weight.grad)
    assert not torch.allclose(scaled[3], (w[0] + w[3]))  # row 3, drawn twice, is scaled


@pytest.mark.parametrize("aggr", ["mean", "sum"])
@pytest.mark.parametrize("n_src,n_dst", [(4, 9), (9, 4)])  # transform first / aggregate first
def test_one_sage_is_sageconv_with_gradients(aggr, n_src, n_dst):
    from torch_geometric.nn import SAGEConv

    from graphrec.models.sage import _sage

    g = torch.Generator().manual_seed(n_src)
    conv = SAGEConv((6, 6), 5, aggr=aggr)
    x_src, x_dst = torch.randn(n_src, 6, generator=g), torch.randn(n_dst + 2, 6, generator=g)
    ei = torch.stack([torch.randint(0, n_src, (25,), generator=g), torch.randint(0, n_dst, (25,))])
    ei = ei[:, ei[1] != 1]  # a destination without messages: lin_l's bias alone
    grads = []
    for ours in (True, False):
        a, b = x_src.clone().requires_grad_(), x_dst.clone().requires_grad_()
        conv.zero_grad()
        if ours:
            y = _sage(conv, a, b[:n_dst], ei, aggr)
        else:
            y = conv((a, b[:n_dst]), ei)
        (y * torch.arange(y.numel()).view_as(y).cos()).sum().backward()
        grads.append([y, a.grad, b.grad, *(p.grad.clone() for p in conv.parameters())])
    for ours, ref in zip(*grads, strict=True):
        torch.testing.assert_close(ours, ref)
