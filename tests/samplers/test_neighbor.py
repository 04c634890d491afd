"""graphrec's sampler inside PyG's LinkNeighborLoader: fan-out, real neighbours, no leaks."""

import pytest
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import LinkNeighborLoader

from graphrec.errors import ConfigError
from graphrec.samplers import GraphRecNeighborSampler, sample_adjacent
from graphrec.samplers.neighbor import _floyd, _unique

ET = ("user", "rates", "item")
REV = ("item", "rev_rates", "user")


def random_bipartite(n_users=60, n_items=40, n_edges=900, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, n_users, (n_edges,), generator=g)
    i = (torch.rand(n_edges, generator=g) ** 2 * n_items).long()  # skewed item degrees
    key = torch.unique(u * n_items + i)
    return torch.stack([key // n_items, key % n_items]), n_users, n_items


def hetero(ei, n_users, n_items):
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = n_users, n_items
    data[ET].edge_index = ei
    data[REV].edge_index = ei.flip(0)
    return data


def test_floyd_gives_distinct_offsets_in_range():
    deg = torch.tensor([6, 7, 50, 1000])
    for _ in range(50):
        out = _floyd(deg, 5, None)
        assert (out >= 0).all() and (out < deg.unsqueeze(1)).all()
        assert all(len(set(row.tolist())) == 5 for row in out)


def test_floyd_is_uniform():
    counts = torch.zeros(8)
    for _ in range(400):
        counts += torch.bincount(_floyd(torch.tensor([8]), 3, None).flatten(), minlength=8)
    expected = 400 * 3 / 8
    assert ((counts - expected).abs() < 0.35 * expected).all()


def test_unique_by_narrow_keys_is_torch_unique():
    g = torch.Generator().manual_seed(2)
    for bound in (1, 100, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 1 << 24):
        for n in (0, 1, 50, 20_000):
            ids = torch.randint(0, bound, (n,), generator=g)
            if n:
                ids[0] = bound - 1  # the top of the key range
            assert torch.equal(_unique(ids, bound), torch.unique(ids)), (bound, n)


def _floyd_step_by_step(deg, k, gen):
    """Floyd's algorithm as written: one draw per row and step."""
    out = torch.empty(len(deg), k, dtype=torch.long)
    for t in range(k):
        j = deg - k + t
        r = (torch.rand(len(deg), generator=gen) * (j + 1).double()).long().clamp_(max=j)
        taken = (out[:, :t] == r.unsqueeze(1)).any(1)
        out[:, t] = torch.where(taken, j, r)
    return out


def test_floyd_gives_the_step_by_step_results_from_the_same_draws():
    for k in (1, 2, 5, 10, 25):
        for seed in range(3):
            deg = torch.randint(k + 1, k + 40, (2000,), generator=torch.Generator().manual_seed(9))
            deg[::7] = k + 1  # rows that collide often
            fast = _floyd(deg, k, torch.Generator().manual_seed(seed))
            ref = _floyd_step_by_step(deg, k, torch.Generator().manual_seed(seed))
            assert torch.equal(fast, ref), (k, seed)


def test_sample_adjacent_respects_fanout_and_takes_all_of_small_nodes():
    colptr = torch.tensor([0, 2, 2, 10])  # degrees 2, 0, 8
    row = torch.arange(10)
    owner, pos = sample_adjacent(colptr, row, torch.tensor([0, 1, 2]), fanout=3)
    assert torch.bincount(owner, minlength=3).tolist() == [2, 0, 3]
    assert sorted(pos[owner == 0].tolist()) == [0, 1]
    chosen = pos[owner == 2]
    assert len(set(chosen.tolist())) == 3 and ((chosen >= 2) & (chosen < 10)).all()
    owner, pos = sample_adjacent(colptr, row, torch.tensor([2, 0]), fanout=-1)
    assert torch.bincount(owner).tolist() == [8, 2]


def loader(data, train_ei, fanout, batch_size=32):
    sampler = GraphRecNeighborSampler(data, fanout)
    return LinkNeighborLoader(
        data,
        num_neighbors=fanout,
        edge_label_index=(ET, train_ei),
        batch_size=batch_size,
        shuffle=True,
        neighbor_sampler=sampler,
        neg_sampling="binary",
    )


def test_batches_hold_only_real_training_edges_within_fanout():
    ei, nu, ni = random_bipartite()
    perm = torch.randperm(ei.shape[1], generator=torch.Generator().manual_seed(1))
    train, held = ei[:, perm[:700]], ei[:, perm[700:]]
    data = hetero(train, nu, ni)  # held-out edges are not in the message graph
    train_set = {tuple(e) for e in train.t().tolist()}
    held_set = {tuple(e) for e in held.t().tolist()}
    fanout = [4, 3]
    n = 0
    for batch in loader(data, train, fanout):
        n += 1
        for et in (ET, REV):
            local = batch[et].edge_index
            src = batch[et[0]].n_id[local[0]]
            dst = batch[et[2]].n_id[local[1]]
            pairs = torch.stack([src, dst] if et == ET else [dst, src]).t().tolist()
            edges = {tuple(p) for p in pairs}
            assert edges <= train_set  # only real neighbours...
            assert not edges & held_set  # ...and never a held-out edge
            assert len(edges) == len(pairs)  # no edge sampled twice
            # e_id maps back to the same edge in the full graph
            assert torch.equal(data[et].edge_index[:, batch[et].e_id], torch.stack([src, dst]))
            # fan-out: each destination gets at most max(fanout) sampled in-edges per type
            per_dst = torch.bincount(local[1], minlength=batch[et[2]].num_nodes)
            assert int(per_dst.max()) <= max(fanout)
        # seeds come first: the labelled edges index real endpoints
        lab = batch[ET].edge_label_index
        assert lab[0].max() < batch["user"].num_nodes and lab[1].max() < batch["item"].num_nodes
        assert batch["user"].num_sampled_nodes[0] == len(torch.unique(batch["user"].n_id[lab[0]]))
    assert n == 22


def test_first_hop_matches_the_full_neighbourhood_when_fanout_is_large():
    ei, nu, ni = random_bipartite(n_edges=300)
    data = hetero(ei, nu, ni)
    batch = next(iter(loader(data, ei, [-1], batch_size=8)))
    seeds_item = batch["item"].n_id[: batch["item"].num_sampled_nodes[0]]
    local = batch[ET].edge_index
    got = torch.unique(
        batch["user"].n_id[local[0][torch.isin(batch["item"].n_id[local[1]], seeds_item)]]
    )
    want = torch.unique(ei[0][torch.isin(ei[1], seeds_item)])
    assert torch.equal(got, want)


def test_no_state_leaks_between_batches():
    ei, nu, ni = random_bipartite()
    data = hetero(ei, nu, ni)
    sampler = GraphRecNeighborSampler(data, [3, 2])
    seeds = {"user": torch.tensor([1, 2, 3]), "item": torch.tensor([0, 5])}
    sampler._sample(seeds)
    assert all((buf == -1).all() for buf in sampler._lookup.values())


@pytest.mark.parametrize(
    "option, words",
    [
        ({"sample_direction": "backward"}, "sample_direction='backward'"),
        ({"subgraph_type": "induced"}, "subgraph_type='induced'"),
        ({"subgraph_type": "bidirectional"}, "subgraph_type='bidirectional'"),
        ({"directed": False}, "directed=False"),
        ({"disjoint": True}, "disjoint=True"),
        ({"replace": True}, "replace=True"),
        ({"time_attr": "time"}, "temporal sampling (time_attr='time')"),
        ({"weight_attr": "w"}, "weighted sampling (weight_attr='w')"),
    ],
)
def test_modes_it_does_not_implement_are_refused_in_one_line(option, words):
    """Accepted silently, backward sampling returned reversed edges under the forward
    keys and an induced subgraph the directional sample."""
    data = hetero(*random_bipartite())
    with pytest.raises(ConfigError) as e:
        GraphRecNeighborSampler(data, [5, 5], **option)
    assert words in str(e.value) and "\n" not in str(e.value)
    # the modes it implements are accepted as PyG spells them
    GraphRecNeighborSampler(data, [5, 5], subgraph_type="directional", sample_direction="forward")


def test_a_homogeneous_graph_is_refused_when_the_sampler_is_built():
    ei, n_users, _ = random_bipartite()
    with pytest.raises(ConfigError, match="homogeneous Data graph"):
        GraphRecNeighborSampler(Data(edge_index=ei, num_nodes=n_users), [5])
