"""graphrec's sampler in PyG's other modes: disjoint trees, temporal and weighted sampling,
checked against trees built by hand and against the distributions pyg-lib samples from."""

import itertools

import pytest
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import LinkNeighborLoader, NeighborLoader

from graphrec.errors import ConfigError
from graphrec.samplers import GraphRecNeighborSampler
from graphrec.samplers.neighbor import _segment_upper_bound, _weighted_keys, sample_segments

ET = ("user", "rates", "item")
REV = ("item", "rev_rates", "user")


def graph(n=40, n_edges=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    key = torch.unique(torch.randint(0, n * n, (n_edges,), generator=g))
    key = key[key // n != key % n]
    data = Data(edge_index=torch.stack([key // n, key % n]), num_nodes=n)
    data.time = torch.randint(0, 100, (n,), generator=g)  # node-level
    data.edge_time = torch.randint(0, 100, (data.num_edges,), generator=g)  # edge-level
    return data


def tree_by_hand(ei, seed, hops, ok=lambda e: True):
    """The full ``hops``-hop in-tree of ``seed`` (every in-edge ``ok`` allows), as sets:
    the nodes first reached at each hop, and the edges (src, dst) sampled."""
    seen, frontier, edges, per_hop = {seed}, {seed}, set(), [{seed}]
    for _ in range(hops):
        new = set()
        for e in range(ei.shape[1]):
            s, d = int(ei[0, e]), int(ei[1, e])
            if d in frontier and ok(e):
                edges.add((s, d))
                if s not in seen:
                    new.add(s)
        seen |= new
        frontier = new
        per_hop.append(new)
    return per_hop, edges


def trees(out, n_seeds):
    """Per seed, the sampled tree's nodes by hop and its edges (global ids)."""
    node, batch = out.node, out.batch
    hops = torch.repeat_interleave(
        torch.arange(len(out.num_sampled_nodes)), torch.tensor(out.num_sampled_nodes)
    )
    got = []
    for b in range(n_seeds):
        mine = batch == b
        per_hop = [set(node[mine & (hops == h)].tolist()) for h in range(hops.max() + 1)]
        pick = batch[out.row] == b
        assert torch.equal(batch[out.col][pick], batch[out.row][pick])  # within a tree
        edges = set(zip(node[out.row[pick]].tolist(), node[out.col[pick]].tolist(), strict=True))
        got.append((per_hop, edges))
    return got


def test_disjoint_gives_each_seed_its_own_full_tree():
    data = graph()
    seeds = torch.tensor([3, 7, 3, 11])  # a repeated seed gets a tree of its own too
    sampler = GraphRecNeighborSampler(data, [-1, -1], disjoint=True)
    out = sampler._sample(seeds)
    assert torch.equal(out.node[:4], seeds) and torch.equal(out.batch[:4], torch.arange(4))
    e_id = sampler.perm[out.edge]  # CSC positions -> edge ids
    ends = torch.stack([out.node[out.row], out.node[out.col]])
    assert torch.equal(data.edge_index[:, e_id], ends)
    for b, (per_hop, edges) in enumerate(trees(out, 4)):
        want_hops, want_edges = tree_by_hand(data.edge_index, int(seeds[b]), 2)
        assert per_hop == want_hops and edges == want_edges, b


def test_disjoint_with_a_fanout_keeps_trees_apart_and_within_the_fanout():
    data = graph(n_edges=600)
    seeds = torch.arange(0, 40, 3)
    out = GraphRecNeighborSampler(data, [3, 2], disjoint=True)._sample(seeds)
    key = out.batch * data.num_nodes + out.node
    assert len(torch.unique(key)) == len(key)  # a node once per tree
    first = out.row[: out.num_sampled_edges[0]], out.col[: out.num_sampled_edges[0]]
    per_seed = torch.bincount(first[1], minlength=len(seeds))
    in_deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
    assert torch.equal(per_seed, in_deg[seeds].clamp(max=3))


@pytest.mark.parametrize("level", ["node", "edge"])
def test_temporal_sampling_sees_only_what_is_not_later_than_the_seed(level):
    data = graph()
    if level == "node":
        data = Data(edge_index=data.edge_index, num_nodes=data.num_nodes, time=data.time)
        ok_time = lambda e, t: int(data.time[data.edge_index[0, e]]) <= t  # noqa: E731
    else:
        data = Data(edge_index=data.edge_index, num_nodes=data.num_nodes, time=data.edge_time)
        ok_time = lambda e, t: int(data.time[e]) <= t  # noqa: E731
    sampler = GraphRecNeighborSampler(data, [-1, -1], time_attr="time")
    assert sampler.disjoint  # temporal is always disjoint (PyG)
    seeds = torch.tensor([1, 5, 9, 13, 17])
    seed_time = torch.tensor([20, 50, 80, 100, 0])
    out = sampler._sample(seeds, seed_time)
    for b, (per_hop, edges) in enumerate(trees(out, len(seeds))):
        t = int(seed_time[b])
        want_hops, want_edges = tree_by_hand(
            data.edge_index, int(seeds[b]), 2, lambda e, t=t: ok_time(e, t)
        )
        assert per_hop == want_hops and edges == want_edges, (level, b)


def test_temporal_last_takes_the_latest_allowed_neighbours():
    ei = torch.tensor([[1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]])
    data = Data(edge_index=ei, num_nodes=7, time=torch.tensor([0, 10, 20, 30, 40, 50, 60]))
    for strategy, want in (("last", {3, 4}), ("uniform", None)):
        sampler = GraphRecNeighborSampler(data, [2], time_attr="time", temporal_strategy=strategy)
        seen = set()
        for i in range(40):
            sampler.generator = torch.Generator().manual_seed(i)
            out = sampler._sample(torch.tensor([0]), torch.tensor([45]))
            got = set(out.node[1:].tolist())
            assert len(got) == 2 and got <= {1, 2, 3, 4}  # 5 and 6 are after the seed
            seen |= got
        if want is not None:
            assert seen == want
        else:
            assert seen == {1, 2, 3, 4}  # uniform: every allowed one comes up


def test_temporal_link_loader_keeps_each_edge_from_seeing_its_future():
    g = torch.Generator().manual_seed(4)
    n_users, n_items, n = 30, 20, 400
    key = torch.unique(torch.randint(0, n_users * n_items, (n,), generator=g))
    ei = torch.stack([key // n_items, key % n_items])
    t = torch.randint(0, 1000, (ei.shape[1],), generator=g)
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = n_users, n_items
    data[ET].edge_index, data[ET].time = ei, t
    data[REV].edge_index, data[REV].time = ei.flip(0), t
    sampler = GraphRecNeighborSampler(data, [4, 2], time_attr="time")
    loader = LinkNeighborLoader(
        data, num_neighbors=[4, 2], edge_label_index=(ET, ei), edge_label_time=t, batch_size=16,
        time_attr="time", neighbor_sampler=sampler, shuffle=True,
    )  # fmt: skip
    checked = 0
    for batch in loader:
        seed_t = batch[ET].edge_label_time
        for et in (ET, REV):
            e_id = batch[et].e_id
            dst_batch = batch[et[2]].batch[batch[et].edge_index[1]]
            # each sampled edge belongs to one labelled edge's tree, never after its time
            assert (data[et].time[e_id] <= seed_t[dst_batch]).all()
            checked += len(e_id)
    assert checked > 500


def test_weighted_draws_follow_the_weights_with_and_without_replacement():
    w = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0])
    start, end = torch.tensor([0]), torch.tensor([5])
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), w.double().cumsum(0)])
    gen = torch.Generator().manual_seed(0)
    first = torch.zeros(5)
    with_rep = torch.zeros(5)
    for _ in range(3000):
        _, pos = sample_segments(start, end, 1, gen, weight=w.double())
        first[pos] += 1  # one draw without replacement: P(i) = w_i / sum(w)
        _, pos = sample_segments(start, end, 3, gen, True, w.double(), cum)
        with_rep += torch.bincount(pos, minlength=5)
    assert first[4] == 0 and with_rep[4] == 0  # weight 0: never
    p = w / w.sum()
    assert ((first / 3000 - p).abs() < 0.03).all(), first
    assert ((with_rep / 9000 - p).abs() < 0.02).all(), with_rep
    for _ in range(50):  # without replacement: distinct, the zero weight only when needed
        _, pos = sample_segments(start, end, 4, gen, weight=w.double())
        assert sorted(pos.tolist()) == [0, 1, 2, 3]


def test_weighted_sampling_through_the_loader_and_bad_weights_refused():
    data = graph()
    data.w = torch.rand(data.num_edges)
    data.w[data.edge_index[1] == 0] = 0.0  # node 0's in-edges all weigh nothing
    sampler = GraphRecNeighborSampler(data, [2, 2], weight_attr="w", replace=True)
    loader = NeighborLoader(data, [2, 2], batch_size=8, neighbor_sampler=sampler)
    for batch in loader:
        assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])
        assert (data.w[batch.e_id] > 0).all()
    data.w[3] = -1.0
    with pytest.raises(ConfigError, match="negative or non-finite weights") as e:
        GraphRecNeighborSampler(data, [2], weight_attr="w")
    assert "\n" not in str(e.value)


def test_segment_upper_bound_is_a_binary_search_per_segment():
    times = torch.tensor([1, 3, 3, 7, 2, 2, 9, 5])
    start, end = torch.tensor([0, 4, 7, 3]), torch.tensor([4, 7, 8, 3])
    for t, want in ((3, [3, 6, 7, 3]), (0, [0, 4, 7, 3]), (10, [4, 7, 8, 3])):
        got = _segment_upper_bound(times, start, end, torch.full((4,), t))
        assert got.tolist() == want, t


def _successive(w: list[float], k: int) -> dict[tuple, float]:
    """Exact probabilities of each k-set under successive sampling (pyg-lib's weighted
    sampling without replacement), by enumerating the ordered draws."""
    probs: dict[tuple, float] = {}
    for seq in itertools.permutations(range(len(w)), k):
        p, left = 1.0, sum(w)
        for i in seq:
            p *= w[i] / left
            left -= w[i]
        key = tuple(sorted(seq))
        probs[key] = probs.get(key, 0.0) + p
    return probs


@pytest.mark.parametrize(
    "w, k",
    [
        # wide segment, mixed weights with zeros: the draws almost always find k distinct
        ([5, 1, 1, 0, 2, 3, 1, 1, 0.5, 4, 1, 6], 2),
        # one edge takes nearly every draw: the keys finish almost every segment
        ([300, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 3),
    ],
)
def test_weighted_draws_without_replacement_match_successive_sampling(w, k):
    n = 40_000  # the same segment n times, after a prefix of other edges
    pre = torch.rand(7, dtype=torch.float64)
    weight = torch.cat([pre, torch.tensor(w, dtype=torch.float64)])
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), weight.cumsum(0)])
    start = torch.full((n,), 7)
    end = start + len(w)
    gen = torch.Generator().manual_seed(1)
    for cumulative in (cum, None):  # the draws (with the keys' fallback), the keys alone
        owner, pos = sample_segments(start, end, k, gen, False, weight, cumulative)
        assert (torch.bincount(owner, minlength=n) == k).all()
        sets = (pos - 7).view(n, k).sort(1).values
        assert (sets[:, 1:] > sets[:, :-1]).all()  # distinct
        seen: dict[tuple, int] = {}
        for row in sets.tolist():
            seen[tuple(row)] = seen.get(tuple(row), 0) + 1
        exact = _successive(w, k)
        assert set(seen) <= {s for s, p in exact.items() if p > 0}
        worst = max(abs(seen.get(s, 0) / n - p) for s, p in exact.items())
        assert worst < 0.012, (cumulative is None, worst)


def test_weighted_keys_keep_what_the_draws_found():
    weight = torch.ones(10, dtype=torch.float64)
    found = (torch.tensor([[7, 7, 2, 0]]), torch.tensor([[True, False, True, False]]))
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        out = _weighted_keys(torch.tensor([0]), torch.tensor([10]), 4, weight, gen, found)
        assert {7, 2} <= set(out.flatten().tolist()) and len(set(out.flatten().tolist())) == 4


def test_weighted_draws_take_every_positive_weight_before_a_zero_one():
    w = torch.zeros(13, dtype=torch.float64)
    w[[3, 9]] = torch.tensor([1.0, 2.0], dtype=torch.float64)
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), w.cumsum(0)])
    gen = torch.Generator().manual_seed(0)
    start, end = torch.zeros(500, dtype=torch.long), torch.full((500,), 13)
    owner, pos = sample_segments(start, end, 3, gen, False, w, cum)
    sets = pos.view(500, 3)
    assert ((sets == 3).any(1) & (sets == 9).any(1)).all()


def test_weighted_sampling_without_replacement_through_the_loader():
    data = graph(n=40, n_edges=900, seed=3)  # in-degrees up to ~40: the draws' path too
    data.w = torch.rand(data.num_edges)
    data.w[torch.rand(data.num_edges, generator=torch.Generator().manual_seed(1)) < 0.3] = 0.0
    deg = torch.bincount(data.edge_index[1], minlength=40)
    positive = torch.bincount(data.edge_index[1], data.w > 0, minlength=40).long()
    assert int(deg.max()) > 4 * 3  # some seed is wide for a fan-out of 3
    sampler = GraphRecNeighborSampler(data, [3, 2], weight_attr="w")
    loader = NeighborLoader(data, [3, 2], batch_size=40, neighbor_sampler=sampler)
    for _ in range(5):
        (batch,) = list(loader)
        assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])
        hop1 = batch.e_id[: batch.num_sampled_edges[0]]
        dst = data.edge_index[1, hop1]
        assert torch.equal(torch.bincount(dst, minlength=40), deg.clamp(max=3))
        for v in range(40):  # distinct; a zero weight only once the positive ones ran out
            mine = hop1[dst == v]
            assert len(mine.unique()) == len(mine)
            assert int((data.w[mine] > 0).sum()) == min(3, int(positive[v]))
