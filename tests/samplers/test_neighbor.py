"""graphrec's sampler inside PyG's LinkNeighborLoader: fan-out, real neighbours, no leaks."""

import pytest
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import LinkNeighborLoader, NeighborLoader

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
        ({"subgraph_type": "induced"}, "subgraph_type='induced'"),
        ({"directed": False}, "directed=False"),
        ({"time_attr": "t", "weight_attr": "w"}, "temporal and weighted sampling together"),
        ({"temporal_strategy": "first"}, "temporal_strategy='first'"),
        ({"sample_direction": "sideways"}, "sample_direction='sideways'"),
    ],
)
@pytest.mark.parametrize("homogeneous", [False, True])
def test_modes_it_does_not_implement_are_refused_in_one_line(option, words, homogeneous):
    """Accepted silently, an induced subgraph would be the directional sample."""
    ei, n_users, n_items = random_bipartite()
    data = Data(edge_index=ei, num_nodes=n_users) if homogeneous else hetero(ei, n_users, n_items)
    if homogeneous:
        data.t, data.w = torch.arange(n_users), torch.ones(ei.shape[1])
    else:
        data["user"].t, data["item"].t = torch.arange(n_users), torch.arange(n_items)
        data[ET].w, data[REV].w = torch.ones(ei.shape[1]), torch.ones(ei.shape[1])
    with pytest.raises(ConfigError) as e:
        GraphRecNeighborSampler(data, [5, 5], **option)
    assert words in str(e.value) and "\n" not in str(e.value)
    # the modes it implements are accepted as PyG spells them
    for direction in ("forward", "backward"):
        GraphRecNeighborSampler(
            data, [5, 5], subgraph_type="directional", sample_direction=direction, replace=True
        )


def homogeneous_graph(n=50, n_edges=400, seed=3):
    g = torch.Generator().manual_seed(seed)
    key = torch.unique(torch.randint(0, n * n, (n_edges,), generator=g))
    key = key[key // n != key % n]  # no self-loops
    return Data(edge_index=torch.stack([key // n, key % n]), num_nodes=n)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("replace", [False, True])
def test_a_homogeneous_graph_is_sampled_like_one_node_and_edge_type(replace, direction):
    data = homogeneous_graph()
    ei = data.edge_index
    fanout = [3, 2]
    sampler = GraphRecNeighborSampler(data, fanout, replace=replace, sample_direction=direction)
    loader = NeighborLoader(
        data, num_neighbors=fanout, batch_size=7, shuffle=True, neighbor_sampler=sampler
    )
    seed_end = 1 if direction == "forward" else 0  # in-edges, or out-edges (backward)
    deg = torch.bincount(ei[seed_end], minlength=data.num_nodes)
    batches = 0
    for batch in loader:
        batches += 1
        glob = batch.n_id[batch.edge_index]
        assert torch.equal(ei[:, batch.e_id], glob)  # real edges, e_id names them
        seeds = batch.n_id[: batch.batch_size]
        assert batch.num_sampled_nodes[0] == batch.batch_size
        assert len(batch.num_sampled_nodes) == 3 and len(batch.num_sampled_edges) == 2
        assert sum(batch.num_sampled_nodes) == batch.num_nodes == len(torch.unique(batch.n_id))
        assert sum(batch.num_sampled_edges) == batch.edge_index.shape[1]
        hop1 = batch.edge_index[:, : batch.num_sampled_edges[0]]
        assert (hop1[seed_end] < batch.batch_size).all()  # the first hop touches the seeds
        per_seed = torch.bincount(hop1[seed_end], minlength=batch.batch_size)
        # without replacement min(degree, fan-out) distinct edges; with it exactly the
        # fan-out of every seed with an edge
        want = (deg[seeds] > 0).long() * 3 if replace else deg[seeds].clamp(max=3)
        assert torch.equal(per_seed, want)
        if not replace:
            assert len(torch.unique(batch.e_id)) == len(batch.e_id)
    assert batches == 8


def test_replacement_draws_each_in_edge_uniformly():
    colptr = torch.tensor([0, 2, 7])  # degrees 2 and 5
    row = torch.arange(7)
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(7)
    for _ in range(300):
        owner, pos = sample_adjacent(colptr, row, torch.tensor([0, 1]), 4, gen, replace=True)
        assert torch.bincount(owner).tolist() == [4, 4]  # fan-out above the degree: repeats
        counts += torch.bincount(pos, minlength=7)
    want = torch.tensor([600.0] * 2 + [240.0] * 5)
    assert ((counts - want).abs() < 0.15 * want).all(), counts


def test_backward_sampling_follows_out_edges_and_keeps_forward_keys():
    """Only user -> item edges: forward sampling from users finds nothing (nobody points
    at a user); backward follows each user's out-edges, returned under the forward key
    with the user as the source."""
    ei, nu, ni = random_bipartite()
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = nu, ni
    data[ET].edge_index = ei
    users = torch.tensor([0, 5, 9])
    out = GraphRecNeighborSampler(data, [-1])._sample({"user": users})
    assert len(out.row[ET]) == 0
    back = GraphRecNeighborSampler(data, [-1], sample_direction="backward")
    out = back._sample({"user": users})
    assert set(out.row) == {ET}
    src = out.node["user"][out.row[ET]]
    dst = out.node["item"][out.col[ET]]
    got = sorted(zip(src.tolist(), dst.tolist(), strict=True))
    want = sorted(map(tuple, ei[:, torch.isin(ei[0], users)].t().tolist()))
    assert got == want
    assert out.num_sampled_edges[ET] == [len(want)]
    loader = NeighborLoader(
        data, num_neighbors=[-1], input_nodes=("user", users), batch_size=3,
        neighbor_sampler=back,
    )  # fmt: skip
    batch = next(iter(loader))
    glob = torch.stack(
        [batch["user"].n_id[batch[ET].edge_index[0]], batch["item"].n_id[batch[ET].edge_index[1]]]
    )
    assert sorted(map(tuple, glob.t().tolist())) == want
    assert torch.equal(data[ET].edge_index[:, batch[ET].e_id], glob)  # e_id: forward ids


def test_segments_that_all_draw_give_the_general_paths_sample():
    """Where every segment is wider than the fan-out, a shortcut builds the sample: the
    same positions, from the same draws, as the general path (a wider segment beside a
    narrow one there)."""
    from graphrec.samplers import neighbor

    start = torch.tensor([0, 40, 47, 300])
    end = torch.tensor([40, 47, 300, 306])  # degrees 40, 7, 253, 6: all above 5
    fast = neighbor.sample_segments(start, end, 5, torch.Generator().manual_seed(3))
    ref = neighbor.sample_segments(
        torch.cat([start, torch.tensor([306])]), torch.cat([end, torch.tensor([307])]),
        5, torch.Generator().manual_seed(3),
    )  # fmt: skip  # a segment of one: the general path, the same draws for the others
    assert torch.equal(fast[0], ref[0][:-1]) and torch.equal(fast[1], ref[1][:-1])
    assert (fast[1] >= start[fast[0]]).all() and (fast[1] < end[fast[0]]).all()


@pytest.mark.parametrize("within", [0, 1 << 30])
def test_unseen_ids_by_mark_or_by_sort_are_the_same(monkeypatch, within):
    from graphrec.samplers import neighbor

    monkeypatch.setattr(neighbor, "_MARK_WITHIN", within)  # 0: always sort; else mark
    buf = torch.full((1000,), -1, dtype=torch.long)
    ids = neighbor._BufferIds(buf)
    ids.seed(torch.tensor([5, 900, 17]))
    g = torch.Generator().manual_seed(4)
    seen = {5, 900, 17}
    for n in (50, 3000, 0):
        keys = torch.randint(0, 1000, (n,), generator=g)
        fresh = ids.add(keys)
        want = sorted(set(keys.tolist()) - seen)
        assert fresh.tolist() == want
        seen |= set(want)
        assert ids.count == len(seen)
        assert torch.equal(ids.local(fresh), torch.arange(ids.count - len(want), ids.count))
    ids.reset()
    assert (buf == -1).all()
