"""Aggregation as a sparse product and per-layer trimming give PyG's SAGE results."""

import itertools

import pytest
import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.nn import SAGEConv

from graphrec.config import ModelConfig
from graphrec.models import build_model
from graphrec.models.aggregate import KERNELS, _order, aggregate, layer_sizes
from graphrec.samplers import make_neighbor_sampler

ET, REV = ("user", "rates", "item"), ("item", "rev_rates", "user")


def test_aggregate_equals_sage_propagation_with_gradients():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 6, generator=g)
    ei = torch.stack([torch.randint(0, 30, (200,), generator=g), torch.randint(0, 12, (200,))])
    ei = ei[:, ei[1] != 5]  # destination 5 receives nothing: 0, as PyG gives
    # every kernel on the CPU ("messages" is the GPU's auto, "bag" the CPU's)
    for aggr, kernel in itertools.product(("mean", "sum"), KERNELS):
        conv = SAGEConv((6, 6), 6, aggr=aggr)
        ours_x, ref_x = x.clone().requires_grad_(), x.clone().requires_grad_()
        ours = aggregate(ours_x, ei, 15, aggr, kernel)  # unsorted destinations, 15 > max id
        ref = conv.propagate(ei, x=(ref_x, None), size=(30, 15))
        torch.testing.assert_close(ours, ref)
        assert ours[5].abs().sum() == 0 and ours.shape == (15, 6)
        w = torch.randn(15, 6, generator=g)
        (ours * w).sum().backward()
        (ref * w).sum().backward()
        torch.testing.assert_close(ours_x.grad, ref_x.grad)
        with torch.no_grad():  # no transpose built, same values
            torch.testing.assert_close(aggregate(x, ei, 15, aggr, kernel), ref.detach())
    for kernel in KERNELS:
        empty = aggregate(x, ei[:, :0], 4, kernel=kernel)
        assert empty.shape == (4, 6) and not empty.any()
    with pytest.raises(ValueError, match="kernel='dense'"):
        aggregate(x, ei, 15, kernel="dense")


def test_the_narrow_sort_keys_give_the_stable_order_of_the_ids():
    g = torch.Generator().manual_seed(1)
    for bound in (1, 300, 1 << 15, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 1 << 20):
        ids = torch.randint(0, bound, (5000,), generator=g)
        ids[:3] = torch.tensor([0, bound - 1, bound // 2])  # both ends of the key range
        assert torch.equal(_order(ids, bound), torch.argsort(ids, stable=True)), bound


def test_layer_sizes_trim_one_more_hop_per_layer():
    nodes = {"user": [3, 5, 7], "item": [2, 4, 0]}
    edges = {ET: [10, 20], REV: [6, 30]}
    sizes = layer_sizes(2, nodes, edges)
    assert sizes[0] == ({"user": 8, "item": 6}, {ET: 30, REV: 36})
    assert sizes[1] == ({"user": 3, "item": 2}, {ET: 10, REV: 6})
    assert layer_sizes(3, nodes, edges) is None  # a sample with other hops: no trimming
    assert layer_sizes(2, None, None) is None


def test_counts_for_only_some_edge_types_trim_nothing():
    data = _graph()
    model = build_model(
        ModelConfig(hidden=8, embedding_dim=4), {"user": 40, "item": 25}, {"item": 3},
        data.edge_types, ET, num_layers=2,
    )  # fmt: skip
    enc = model.encoder
    x, n_id = {"item": data["item"].x}, {"user": torch.arange(40), "item": torch.arange(25)}
    nodes = {"user": [5, 10, 25], "item": [4, 6, 15]}
    full = enc(x, n_id, data.edge_index_dict)
    partial = enc(x, n_id, data.edge_index_dict, nodes, {ET: [50, 100]})  # no REV counts
    for t in full:
        torch.testing.assert_close(partial[t], full[t])


def _graph():
    g = torch.Generator().manual_seed(1)
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = 40, 25
    data["item"].x = torch.randn(25, 3, generator=g)
    ei = torch.stack([torch.randint(0, 40, (300,)), torch.randint(0, 25, (300,))])
    ei = torch.unique(ei, dim=1)
    ei = ei[:, torch.argsort(ei[1] * 40 + ei[0])]  # CSC order, as message_graph makes it
    data[ET].edge_index = ei
    rev = ei.flip(0)
    data[REV].edge_index = rev[:, torch.argsort(rev[1] * 25 + rev[0])]
    return data


def test_a_trimmed_batch_gives_the_untrimmed_seed_embeddings_and_gradients():
    torch.manual_seed(0)
    data = _graph()
    model = build_model(
        ModelConfig(hidden=8, embedding_dim=4), {"user": 40, "item": 25}, {"item": 3},
        data.edge_types, ET, num_layers=2,
    )  # fmt: skip
    sampler = make_neighbor_sampler(data, [3, 2], "graphrec", is_sorted=True)
    loader = LinkNeighborLoader(
        data, [3, 2], edge_label_index=(ET, data[ET].edge_index[:, :16]), batch_size=16,
        neighbor_sampler=sampler, neg_sampling_ratio=1.0,
    )  # fmt: skip
    batch = next(iter(loader))
    seeds = {t: batch[t].num_sampled_nodes[0] for t in batch.node_types}
    assert all(batch[t].num_nodes > seeds[t] for t in batch.node_types)  # something to trim
    trimmed = model.encode(batch)
    assert {t: len(v) for t, v in trimmed.items()} == seeds
    plain = batch.clone()
    for store in plain.stores:  # without the per-hop counts: every layer updates every node
        for key in ("num_sampled_nodes", "num_sampled_edges"):
            if key in store:
                del store[key]
    full = model.encode(plain)
    for t in seeds:
        torch.testing.assert_close(trimmed[t], full[t][: seeds[t]])
    # and the untrimmed sparse product equals PyG's HeteroConv on the same weights
    enc = model.encoder
    h = {
        t: enc.inp[t](torch.cat([enc.embedding[t](batch[t].n_id)]
                                + ([batch[t].x] if "x" in batch[t] else []), -1))
        for t in batch.node_types
    }  # fmt: skip
    for i, conv in enumerate(enc.convs):
        h = conv(h, batch.edge_index_dict)
        if i == 0:
            h = {t: v.relu() for t, v in h.items()}
    for t in seeds:
        torch.testing.assert_close(full[t], h[t], rtol=1e-4, atol=1e-5)
    grads = []
    for z in (trimmed, {t: v[: seeds[t]] for t, v in model.encode(plain).items()}):
        model.zero_grad()
        sum((v * torch.arange(v.numel()).view_as(v).sin()).sum() for v in z.values()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], rtol=1e-4, atol=1e-5)
