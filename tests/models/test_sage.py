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
