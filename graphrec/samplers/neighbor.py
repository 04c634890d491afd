"""A vectorized PyTorch neighbour sampler that plugs into PyG's loaders.

PyG's :class:`~torch_geometric.sampler.NeighborSampler` keeps the graph in CSC form and calls
a compiled routine (pyg-lib or torch-sparse) in ``_sample``. Neither is on PyPI as a wheel
(torch-sparse builds from source for ~25 minutes), so :class:`GraphRecNeighborSampler`
overrides only ``_sample`` with plain tensor ops and returns the same
:class:`~torch_geometric.sampler.SamplerOutput` / ``HeteroSamplerOutput``; the loaders,
negative sampling and subgraph filtering stay PyG's. :func:`make_neighbor_sampler` uses
PyG's compiled library only when ``sampler.backend=pyg`` asks for it.

Semantics are pyg-lib's ``neighbor_sample`` / ``hetero_neighbor_sample`` (directional): at
hop ``h`` every node first reached at hop ``h-1`` draws up to ``fanout`` incoming edges per
edge type; new endpoints join the next frontier, nodes seen before are not expanded again
but their edges are kept. Seeds come first in each node type's list. Within a hop, new
nodes are in id order (pyg-lib: in the order found); nothing downstream depends on it.

Cost per hop, for ``S`` frontier nodes and fan-out ``f`` (vectorised over all of them):
uniform without replacement is Floyd's algorithm, ``O(S f^2)`` independent of degree;
with replacement ``O(S f)``; weighted without replacement ``O(f log E)`` per node of degree
above ``4f`` (``2f`` draws with replacement, the first ``f`` distinct kept: pyg-lib's
distribution) and Efraimidis-Spirakis keys, as pyg-lib, ``O(D log D)`` over the ``D`` edges
of the other nodes above ``f`` (and of a wide node whose draws repeat too often); weighted
with replacement ``O(S f log E)`` (inverse CDF on prefix sums kept with the sampler);
temporal adds a binary search per frontier node, ``O(S log deg)``.
Non-disjoint relabelling uses a per-type lookup buffer that lives with the sampler and is
reset after each batch (no ``O(num_nodes)`` allocation per batch; one sampler instance is
single-threaded, DataLoader workers are processes with their own copy); disjoint
relabelling keys nodes by ``(seed, node)`` in sorted arrays, ``O(n log n)`` per hop.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor
from torch_geometric import typing as pyg_typing
from torch_geometric.sampler import HeteroSamplerOutput, NeighborSampler, SamplerOutput

from graphrec.errors import ConfigError
from graphrec.graph.csr import sort_ids


def compiled_sampler_available() -> bool:
    """Whether pyg-lib or torch-sparse provides PyG's compiled neighbour sampling."""
    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)


def sample_adjacent(
    colptr: Tensor,
    row: Tensor,
    nodes: Tensor,
    fanout: int,
    gen: torch.Generator | None = None,
    replace: bool = False,
) -> tuple[Tensor, Tensor]:
    """Sample up to ``fanout`` distinct in-edges of each of ``nodes`` (``-1``: all).

    Args:
        colptr: ``[N_dst + 1]`` CSC pointers; ``row``: ``[E]`` source ids in CSC order.
        nodes: ``[S]`` destination node ids to expand.
        replace: draw exactly ``fanout`` in-edges of every node that has one, uniformly
            and independently (an edge may repeat); ``fanout=-1`` still takes each once.
    Returns:
        ``(owner, edge_pos)``: for each sampled edge, the position in ``nodes`` it belongs
        to and its position in CSC order (``row[edge_pos]`` is the neighbour).
    """
    # index_select / index_copy_ rather than ``a[b]`` / ``a[b] = c``: for 1-D tensors
    # torch's advanced indexing runs 2-6x slower on CPU (TensorIterator over the indices)
    start = colptr.index_select(0, nodes)
    end = colptr.index_select(0, nodes + 1)
    return sample_segments(start, end, fanout, gen, replace)


def sample_segments(
    start: Tensor,
    end: Tensor,
    fanout: int,
    gen: torch.Generator | None = None,
    replace: bool = False,
    weight: Tensor | None = None,
    cumulative: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Sample from each segment ``[start, end)`` of CSC positions, as pyg-lib does: all of
    it when ``fanout < 0`` or (without replacement) ``fanout >=`` its length; else
    ``fanout`` positions, distinct unless ``replace``, uniform unless ``weight`` (``[E]``,
    non-negative; ``cumulative``: its ``[E + 1]`` prefix sums, for ``replace``).

    Returns ``(owner, pos)``: the segment each sampled position belongs to, and the position.
    """
    n = len(start)
    deg = end - start
    if replace and fanout >= 0:
        has = deg > 0
        if weight is not None:  # a segment of zero total weight has nothing to draw
            has &= cumulative.index_select(0, end) > cumulative.index_select(0, start)
        owner = torch.repeat_interleave(torch.arange(n), has.long() * fanout)
        draw = torch.rand(len(owner), generator=gen, dtype=torch.float64)
        lo, hi = start.index_select(0, owner), end.index_select(0, owner)
        if weight is None:
            return owner, lo + (draw * (hi - lo).double()).long().clamp_(max=hi - lo - 1)
        c_lo, c_hi = cumulative.index_select(0, lo), cumulative.index_select(0, hi)
        x = c_lo + draw * (c_hi - c_lo)
        pos = torch.searchsorted(cumulative, x, right=True) - 1
        return owner, torch.minimum(torch.maximum(pos, lo), hi - 1)
    if fanout >= 0 and weight is None and n and bool((deg > fanout).all()):
        # every segment draws: fanout offsets each, the same draws as the general path
        owner = torch.arange(n).unsqueeze(1).expand(n, fanout).reshape(-1)
        return owner, (start.unsqueeze(1) + _floyd(deg, fanout, gen)).reshape(-1)
    take = deg if fanout < 0 else deg.clamp(max=fanout)
    owner = torch.repeat_interleave(torch.arange(n), take)
    first = torch.cumsum(take, 0) - take
    offset = torch.arange(int(take.sum())) - first.index_select(0, owner)
    if fanout >= 0:
        big = (deg > fanout).nonzero().flatten()
        if len(big):
            if weight is None:
                chosen = _floyd(deg.index_select(0, big), fanout, gen)  # [B, fanout] distinct
            else:
                chosen = _weighted_top(
                    start.index_select(0, big),
                    deg.index_select(0, big),
                    fanout,
                    weight,
                    gen,
                    cumulative,
                )
            slots = first.index_select(0, big).unsqueeze(1) + torch.arange(fanout)
            offset.index_copy_(0, slots.flatten(), chosen.flatten())
    return owner, start.index_select(0, owner) + offset


_DRAWS = 2  # draws per wanted edge, without replacement, before the rest is keyed


def _weighted_top(
    start: Tensor, deg: Tensor, k: int, weight: Tensor, gen, cumulative: Tensor | None = None
) -> Tensor:
    """``[B, k]`` distinct offsets per segment drawn without replacement with probability
    proportional to ``weight`` (successive sampling, pyg-lib's distribution).

    Segments wider than ``2 * _DRAWS * k`` with ``cumulative`` (the weights' prefix sums)
    draw ``_DRAWS * k`` positions with replacement by inverse CDF and keep the first ``k``
    distinct, ``O(k log E)`` per segment instead of ``O(deg log deg)``: the first distinct
    draw is proportional to the weights, each next new one proportional to the weights of
    the rest, whenever it comes. A segment left with ``j < k`` distinct continues exactly
    (successive sampling is memoryless): Efraimidis-Spirakis keys over its other edges
    choose the remaining ``k - j``. Narrow segments take the keys directly."""
    if cumulative is None:
        return _weighted_keys(start, deg, k, weight, gen)
    end = start + deg
    c_lo, c_hi = cumulative.index_select(0, start), cumulative.index_select(0, end)
    # float64 prefix sums resolve a segment's draws only while its total is not tiny next
    # to the sum before it: else (and for a zero total) the keys decide alone
    wide = (deg > 2 * _DRAWS * k) & (c_hi - c_lo > c_hi * 2.0**-20)
    out = torch.empty(len(deg), k, dtype=torch.long)
    narrow = (~wide).nonzero().flatten()
    if len(narrow):
        out.index_copy_(0, narrow, _weighted_keys(
            start.index_select(0, narrow), deg.index_select(0, narrow), k, weight, gen
        ))  # fmt: skip
    wide = wide.nonzero().flatten()
    if len(wide) == 0:
        return out
    s, d = start.index_select(0, wide), deg.index_select(0, wide)
    lo, hi = c_lo.index_select(0, wide).unsqueeze(1), c_hi.index_select(0, wide).unsqueeze(1)
    u = torch.rand(len(wide), _DRAWS * k, generator=gen, dtype=torch.float64)
    x = torch.minimum(lo + u * (hi - lo), torch.nextafter(hi, lo))  # inside the segment
    pos = torch.searchsorted(cumulative, x.flatten(), right=True).view_as(x) - 1
    off = torch.minimum((pos - s.unsqueeze(1)).clamp_(min=0), d.unsqueeze(1) - 1)
    srt, order = torch.sort(off, dim=1, stable=True)  # stable: a value's first draw first
    new = torch.ones_like(srt, dtype=torch.bool)
    torch.ne(srt[:, 1:], srt[:, :-1], out=new[:, 1:])
    first = torch.zeros_like(new).scatter_(1, order, new)  # first draw of each value
    keep = first & (first.cumsum(1) <= k)
    done = keep.sum(1) == k
    ok = done.nonzero().flatten()
    chosen = off.index_select(0, ok).masked_select(keep.index_select(0, ok))
    out.index_copy_(0, wide.index_select(0, ok), chosen.view(-1, k))
    rest = (~done).nonzero().flatten()
    if len(rest):
        out.index_copy_(0, wide.index_select(0, rest), _weighted_keys(
            s.index_select(0, rest), d.index_select(0, rest), k, weight, gen,
            (off.index_select(0, rest), keep.index_select(0, rest)),
        ))  # fmt: skip
    return out


def _weighted_keys(start: Tensor, deg: Tensor, k: int, weight: Tensor, gen, found=None) -> Tensor:
    """``[B, k]`` offsets per segment: the ``k`` largest keys ``log(u) / w`` (Efraimidis
    and Spirakis, as pyg-lib). ``found``: ``(offsets [B, m], mask [B, m])`` already chosen
    per segment (fewer than ``k``); they are kept and the keys choose the rest."""
    owner = torch.repeat_interleave(torch.arange(len(deg)), deg)
    first = torch.cumsum(deg, 0) - deg
    offset = torch.arange(len(owner)) - first.index_select(0, owner)
    w = weight.index_select(0, start.index_select(0, owner) + offset).double()
    key = torch.rand(len(owner), generator=gen, dtype=torch.float64).log() / w
    width = int(deg.max()) if len(deg) else 0
    if found is None and width * len(deg) <= 4 * len(owner):  # near-equal degrees
        # one padded row per segment and a top-k along it, O(B width): zero weights keep
        # the lowest finite key so that they come before the padding
        pad = torch.full((len(deg), width), float("-inf"), dtype=torch.float64)
        key.clamp_(min=torch.finfo(torch.float64).min)
        pad.view(-1).index_copy_(0, owner * width + offset, key)
        return torch.topk(pad, k, dim=1, sorted=False).indices
    if found is not None:  # keys are <= 0: a positive key is taken first
        off, mask = found
        seg = torch.arange(len(deg)).unsqueeze(1).expand_as(off)[mask]
        key.index_fill_(0, first.index_select(0, seg) + off[mask], 1.0)
    order = torch.argsort(key, descending=True, stable=True)
    order = order.index_select(0, torch.argsort(owner.index_select(0, order), stable=True))
    rank = torch.arange(len(order)) - first.index_select(0, owner.index_select(0, order))
    return offset.index_select(0, order[rank < k]).view(len(deg), k)


def _segment_upper_bound(times: Tensor, start: Tensor, end: Tensor, t: Tensor) -> Tensor:
    """For each segment ``[start, end)`` of ``times`` (ascending within it), the first
    position whose time is above ``t`` (``end`` when none is): ``O(log deg)`` vector steps."""
    lo, hi = start.clone(), end.clone()
    if len(lo) == 0 or len(times) == 0:
        return lo
    last = len(times) - 1
    for _ in range(int((end - start).max()).bit_length() + 1):
        active = lo < hi
        if not bool(active.any()):
            break
        mid = (lo + hi) // 2
        right = times.index_select(0, mid.clamp(max=last)) <= t
        lo = torch.where(active & right, mid + 1, lo)
        hi = torch.where(active & ~right, mid, hi)
    return lo


def _floyd(deg: Tensor, k: int, gen: torch.Generator | None) -> Tensor:
    """For each row, ``k`` distinct integers in ``[0, deg)`` (requires ``deg > k``).

    Floyd's algorithm: step ``t`` draws ``r`` in ``[0, j]`` (``j = deg - k + t``) and takes
    ``j`` instead if ``r`` was taken before. The draws of all steps are made at once (the
    same numbers as one ``rand(n)`` per step); only the check against earlier steps runs
    step by step. Past the draws it runs in numpy (the same results as torch's ops in a
    third less time for a 1M-edge ``graphrec bench`` batch: these arrays are small and
    torch's per-op cost dominated)."""
    u = torch.rand(k, len(deg), generator=gen).numpy()
    j = deg.numpy() + np.arange(-k, 0)[:, None]  # [k, n] inclusive bounds
    r = (u * (j + 1)).astype(np.int64)  # float32 x int64: a float64 product, as torch's
    np.minimum(r, j, out=r)
    seen = np.empty(r.shape, dtype=bool)
    taken = np.empty(len(deg), dtype=bool)
    for t in range(1, k):
        np.equal(r[:t], r[t], out=seen[:t])
        np.logical_or.reduce(seen[:t], axis=0, out=taken)
        np.copyto(r[t], j[t], where=taken)
    return torch.from_numpy(r).t()


def _unique(ids: Tensor, bound: int) -> Tensor:
    """``torch.unique(ids)`` (sorted) for ids in ``[0, bound)``: a sort by
    :func:`~graphrec.graph.csr.sort_ids` (2-10x faster than ``torch.unique`` on a batch's
    20k-200k ids on a CPU), then the first of each run."""
    s = sort_ids(ids, bound)
    keep = torch.ones(len(s), dtype=torch.bool, device=s.device)
    torch.ne(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def _cat(parts: list[Tensor]) -> Tensor:
    """``torch.cat(parts)`` of int64 ids, without a copy of a single part."""
    if len(parts) == 1:
        return parts[0]
    return torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)


SUBGRAPHS = ("directional", "bidirectional")  # bidirectional: PyG mirrors our sample's edges


def _refuse_unsupported(kwargs: dict) -> None:
    """One line naming the option, before anything is built, for every mode of PyG's
    ``NeighborSampler`` this sampler does not implement: accepting one would return a
    sample of other semantics (``subgraph_type='induced'`` / ``directed=False`` the
    directional sample)."""
    what = None
    if kwargs.get("sample_direction", "forward") not in ("forward", "backward"):
        what = f"sample_direction={kwargs['sample_direction']!r} (forward or backward)"
    if kwargs.get("temporal_strategy", "uniform") not in ("uniform", "last"):
        what = f"temporal_strategy={kwargs['temporal_strategy']!r} (uniform or last)"
    if kwargs.get("time_attr") and kwargs.get("weight_attr"):
        what = "temporal and weighted sampling together (pyg-lib neither)"
    subgraph = str(getattr(kwargs.get("subgraph_type"), "value", kwargs.get("subgraph_type")))
    if kwargs.get("subgraph_type") is not None and subgraph not in SUBGRAPHS:
        what = f"subgraph_type={subgraph!r} (directional or bidirectional)"
    if kwargs.get("directed") is False:
        what = "directed=False (an induced subgraph; directional or bidirectional only)"
    if what:
        raise ConfigError(f"graphrec's sampler does not support {what}")


_HOMO = "_"  # the one node and edge type a homogeneous graph is sampled as


_MARK_WITHIN = 8
"""Unseen node ids are found by marking them in a ``[num_nodes]`` array (one pass over
it) when a hop's keys are at least ``1/_MARK_WITHIN`` of the node type, else by sorting
the keys: 0.17 ms against 0.42 ms for 19k keys of 20k nodes on 2 cores."""


class _BufferIds:
    """Local ids of one node type's sampled nodes, by node id, in a buffer of the
    sampler's (non-disjoint sampling)."""

    def __init__(self, buf: Tensor) -> None:
        self.buf, self.count, self.parts = buf, 0, []

    def seed(self, keys: Tensor) -> None:
        self.buf.index_copy_(0, keys, torch.arange(len(keys)))
        self.count, self.parts = len(keys), [keys]

    def add(self, keys: Tensor) -> Tensor:
        """Give unseen ``keys`` the next local ids; return the new ones (sorted)."""
        bound = len(self.buf)
        if bound <= _MARK_WITHIN * len(keys):  # a mark per node id: no sort
            mark = np.zeros(bound, dtype=bool)  # numpy: a third of torch's time here
            mark[keys.numpy()] = True
            mark &= self.buf.numpy() < 0
            fresh = torch.from_numpy(np.flatnonzero(mark))
        else:
            fresh = _unique(keys[self.buf.index_select(0, keys) < 0], bound)
        self.buf.index_copy_(0, fresh, torch.arange(self.count, self.count + len(fresh)))
        self.count += len(fresh)
        self.parts.append(fresh)
        return fresh

    def local(self, keys: Tensor) -> Tensor:
        return self.buf.index_select(0, keys)

    def reset(self) -> None:
        for p in self.parts:  # only what this batch touched
            self.buf.index_fill_(0, p, -1)


class _KeyIds:
    """Local ids keyed by ``seed * num_nodes + node`` in sorted arrays (disjoint sampling:
    each seed's tree has its own copy of a node)."""

    def __init__(self) -> None:
        self.keys = self.locals = torch.empty(0, dtype=torch.long)
        self.count, self.parts = 0, []

    def seed(self, keys: Tensor) -> None:
        self.keys, self.locals = torch.sort(keys)
        self.count, self.parts = len(keys), [keys]

    def add(self, keys: Tensor) -> Tensor:
        fresh = torch.unique(keys)
        if len(self.keys) and len(fresh):
            at = torch.searchsorted(self.keys, fresh).clamp_(max=len(self.keys) - 1)
            fresh = fresh[self.keys.index_select(0, at) != fresh]
        new_locals = torch.arange(self.count, self.count + len(fresh))
        self.keys, order = torch.sort(torch.cat([self.keys, fresh]))
        self.locals = torch.cat([self.locals, new_locals]).index_select(0, order)
        self.count += len(fresh)
        self.parts.append(fresh)
        return fresh

    def local(self, keys: Tensor) -> Tensor:
        return self.locals.index_select(0, torch.searchsorted(self.keys, keys))

    def reset(self) -> None:
        pass


class GraphRecNeighborSampler(NeighborSampler):
    """PyG's ``NeighborSampler`` with ``_sample`` done in vectorized PyTorch.

    Modes, each with pyg-lib's semantics (costs in the module docstring): heterogeneous
    ``HeteroData`` and homogeneous ``Data`` (sampled as one node and edge type);
    ``replace``; ``disjoint`` (a tree per seed: ``batch`` says whose); temporal sampling
    (``time_attr`` on nodes or edges, always disjoint: a seed sees neighbours with time
    ``<=`` its own, ``temporal_strategy`` ``uniform`` among them or ``last``, the latest
    ``fanout``); weighted sampling (``weight_attr``); ``sample_direction='backward'``
    (out-edges: PyG builds the transposed graph; edges come back under the forward keys,
    ends swapped back); ``subgraph_type='bidirectional'`` (PyG mirrors the sampled edges
    afterwards). Refused in ``__init__`` with one line: induced subgraphs
    (``subgraph_type='induced'``, ``directed=False``), temporal with weights.
    """

    def __init__(
        self,
        data,
        num_neighbors,
        subgraph_type="directional",
        replace: bool = False,
        disjoint: bool = False,
        temporal_strategy: str = "uniform",
        time_attr: str | None = None,
        weight_attr: str | None = None,
        is_sorted: bool = False,
        share_memory: bool = False,
        directed: bool = True,
        sample_direction: str = "forward",
    ) -> None:
        # PyG's signature: its BidirectionalNeighborSampler passes these by position
        kwargs = dict(
            subgraph_type=subgraph_type, replace=replace, disjoint=disjoint,
            temporal_strategy=temporal_strategy, time_attr=time_attr, weight_attr=weight_attr,
            is_sorted=is_sorted, share_memory=share_memory, directed=directed,
            sample_direction=sample_direction,
        )  # fmt: skip
        _refuse_unsupported(kwargs)
        # PyG refuses edge-level times and weights unless pyg-lib has them: we do
        flags = ("WITH_EDGE_TIME_NEIGHBOR_SAMPLE", "WITH_WEIGHTED_NEIGHBOR_SAMPLE")
        before = {f: getattr(pyg_typing, f) for f in flags}
        try:
            for f in flags:
                setattr(pyg_typing, f, True)
            with warnings.catch_warnings():  # "without pyg-lib is deprecated": we replace it
                warnings.simplefilter("ignore")
                super().__init__(data, num_neighbors, **kwargs)
        finally:
            for f, v in before.items():
                setattr(pyg_typing, f, v)
        self.homogeneous = not self.is_hetero  # Data, or a remote store of one edge type
        if self.sample_direction == "backward" and isinstance(self.perm, dict):
            # PyG (2.8.1) keys the transposed graph's edge permutation by the reversed
            # edge types, and the loader looks it up by the forward ones the sample is
            # returned under: without this, e_id would be positions in the transposed
            # order instead of edge ids
            self.perm = {self.to_restored_edge_type.get(k, k): v for k, v in self.perm.items()}
        self._lookup: dict[str, Tensor] = {}
        self.generator: torch.Generator | None = None
        self._times = self._csc_times()
        self._weights, self._cumulative = self._csc_weights(kwargs.get("weight_attr"))

    # the per-edge-type views of the graph, keyed as ``_expand`` reads them
    def _types(self):
        if self.homogeneous:
            et = (_HOMO, _HOMO, _HOMO)
            return (
                [_HOMO], {et: _HOMO}, {_HOMO: self.colptr}, {_HOMO: self.row},
                {_HOMO: list(self.num_neighbors.get_mapped_values())}, {_HOMO: self.num_nodes},
            )  # fmt: skip
        rel = {et: self.to_rel_type[et] for et in self.edge_types}
        fanouts = self.num_neighbors.get_mapped_values(self.edge_types)
        return self.node_types, rel, self.colptr_dict, self.row_dict, fanouts, self.num_nodes

    def _csc_times(self) -> dict[str, Tensor]:
        """Per edge type, the time of each CSC entry (the edge's, or its source node's),
        checked ascending within each node's in-edges (PyG sorts them so): what a seed's
        time cuts. Edge types without times are sampled uniformly (as pyg-lib)."""
        if not self.is_temporal:
            return {}
        _, rel, colptr, row, _, _ = self._types()
        times = {}
        for (src, _, _), r in rel.items():
            if self.homogeneous:
                t = self.edge_time
                node_t = self.node_time
            else:
                t = (self.edge_time or {}).get(r)
                node_t = (self.node_time or {}).get(src)
            if t is None and node_t is not None:
                t = node_t.index_select(0, row[r])
            if t is None:
                continue
            bad = t[1:] < t[:-1]
            ends = colptr[r][(colptr[r] > 0) & (colptr[r] < len(t))]
            bad[ends - 1] = False  # from one node's in-edges to the next node's
            if bool(bad.any()):
                raise ConfigError(
                    f"graphrec's sampler: the times of {r!r} are not ascending within a "
                    "node's neighbours (is_sorted=True with unsorted times?)"
                )
            times[r] = t
        return times

    def _csc_weights(self, attr) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Per edge type, the weights in CSC order and their prefix sums (float64)."""
        if self.edge_weight is None:
            return {}, {}
        raw = {_HOMO: self.edge_weight} if self.homogeneous else dict(self.edge_weight)
        weights, cumulative = {}, {}
        for r, w in raw.items():
            w = w.double().flatten()
            if len(w) and not bool((torch.isfinite(w) & (w >= 0)).all()):
                raise ConfigError(
                    f"graphrec's sampler: weight_attr={attr!r} of {r!r} has negative or "
                    "non-finite weights"
                )
            weights[r] = w
            cumulative[r] = torch.cat([torch.zeros(1, dtype=torch.float64), w.cumsum(0)])
        return weights, cumulative

    def _sample(self, seed, seed_time=None, **kwargs):
        backward = self.sample_direction == "backward"
        node_types, rel, colptr, row, fanouts, num_nodes = self._types()
        if self.homogeneous != (not isinstance(seed, dict)):
            raise ConfigError("graphrec's sampler: seeds do not match the graph's kind")
        if self.homogeneous:
            seed = {_HOMO: seed}
            seed_time = None if seed_time is None else {_HOMO: seed_time}
        node, batch, row_, col_, edge, n_nodes, n_edges = self._expand(
            node_types, rel, colptr, row, fanouts, num_nodes, seed, seed_time
        )
        if self.homogeneous:
            et = (_HOMO, _HOMO, _HOMO)
            r, c = (col_[et], row_[et]) if backward else (row_[et], col_[et])
            return SamplerOutput(
                node=node[_HOMO], row=r, col=c, edge=edge[et],
                batch=None if batch is None else batch[_HOMO],
                num_sampled_nodes=n_nodes[_HOMO], num_sampled_edges=n_edges[et],
            )  # fmt: skip
        if backward:  # sampled along reversed types: restore the forward keys and ends
            back = self.to_restored_edge_type
            row_, col_ = col_, row_
            row_, col_, edge, n_edges = (
                {back[k]: v for k, v in d.items()} for d in (row_, col_, edge, n_edges)
            )
        return HeteroSamplerOutput(
            node=node, row=row_, col=col_, edge=edge, batch=batch,
            num_sampled_nodes=n_nodes, num_sampled_edges=n_edges,
        )  # fmt: skip

    def _seed_times(self, seed: dict, seed_time) -> Tensor | None:
        """Each seed's time, in batch-id order (seed types in the seeds' order, as
        pyg-lib numbers them): given, or the seed node's own time."""
        if not self.is_temporal:
            return None
        parts = []
        for ntype, s in seed.items():
            t = None if seed_time is None else seed_time.get(ntype)
            if t is None:
                own = self.node_time if self.homogeneous else (self.node_time or {}).get(ntype)
                if own is None:
                    raise ConfigError(
                        f"graphrec's sampler: temporal sampling needs a time for the "
                        f"{ntype!r} seeds (seed_time, or a node-level time_attr)"
                    )
                t = own.index_select(0, s.long())
            parts.append(t.flatten())
        return torch.cat(parts) if parts else None

    def _expand(self, node_types, rel, colptr, row, fanouts, num_nodes, seed, seed_time):
        """The hops over edge types ``rel`` (``(src, _, dst)`` -> key of ``colptr``,
        ``row`` and ``fanouts``). A frontier is the keys first reached at the last hop
        (node ids, or ``seed * N + node`` when disjoint) and the local id of its first
        one (a hop's new nodes get consecutive local ids). Returns local node ids per
        type (seeds first), each node's seed (disjoint) or None, sampled edges in local
        ids and CSC positions, and the per-hop counts, keyed like PyG's outputs."""
        disjoint = bool(self.disjoint)
        num_hops = max((len(v) for v in fanouts.values()), default=0)
        ids = {
            t: _KeyIds() if disjoint else _BufferIds(self._buffer(t, num_nodes[t]))
            for t in node_types
        }
        batch_time = self._seed_times(seed, seed_time)
        frontier: dict[str, tuple[Tensor, int]] = {}
        base, offset = {}, 0
        for ntype, s in seed.items():
            base[ntype], offset = offset, offset + len(s)
        for ntype in node_types:
            s = seed.get(ntype, torch.empty(0, dtype=torch.long)).long()
            if disjoint:
                s = (torch.arange(len(s)) + base.get(ntype, 0)) * num_nodes[ntype] + s
            ids[ntype].seed(s)
            frontier[ntype] = (s, 0)
        num_sampled_nodes = {t: [ids[t].count] for t in node_types}
        rows: dict[str, list[Tensor]] = {r: [] for r in rel.values()}
        cols: dict[str, list[Tensor]] = {r: [] for r in rel.values()}
        edges: dict[str, list[Tensor]] = {r: [] for r in rel.values()}
        num_sampled_edges: dict[str, list[int]] = {r: [] for r in rel.values()}

        try:
            for hop in range(num_hops):
                found: dict[str, list[Tensor]] = {t: [] for t in node_types}
                hop_edges = []
                for (src, _, dst), r in rel.items():
                    fan = fanouts[r][hop] if hop < len(fanouts[r]) else 0
                    keys, first = frontier[dst]
                    if fan == 0 or len(keys) == 0:
                        num_sampled_edges[r].append(0)
                        continue
                    n_dst = num_nodes[dst]
                    node = keys % n_dst if disjoint else keys
                    start = colptr[r].index_select(0, node)
                    end = colptr[r].index_select(0, node + 1)
                    if r in self._times:  # only what is not later than the seed
                        t = batch_time.index_select(0, keys // n_dst)
                        end = _segment_upper_bound(self._times[r], start, end, t)
                        if self.temporal_strategy == "last" and fan >= 0:
                            start = torch.maximum(start, end - fan)
                    owner, pos = sample_segments(
                        start, end, fan, self.generator, self.replace,
                        self._weights.get(r), self._cumulative.get(r),
                    )  # fmt: skip
                    nbr = row[r].index_select(0, pos)
                    if disjoint:
                        nbr = keys.index_select(0, owner) // n_dst * num_nodes[src] + nbr
                    found[src].append(nbr)
                    hop_edges.append((r, src, nbr, owner + first, pos))
                new_frontier = {}
                for ntype in node_types:
                    ks = _cat(found[ntype])
                    first = ids[ntype].count
                    new_frontier[ntype] = (ids[ntype].add(ks), first)
                    num_sampled_nodes[ntype].append(len(new_frontier[ntype][0]))
                for r, src, nbr, col, pos in hop_edges:  # relabel once all nodes are known
                    rows[r].append(ids[src].local(nbr))
                    cols[r].append(col)
                    edges[r].append(pos)
                    num_sampled_edges[r].append(len(pos))
                frontier = new_frontier
            keys = {t: torch.cat(ids[t].parts) for t in node_types}
        finally:
            for i in ids.values():
                i.reset()
        if disjoint:
            node = {t: k % num_nodes[t] for t, k in keys.items()}
            batch = {t: k // num_nodes[t] for t, k in keys.items()}
        else:
            node, batch = keys, None

        def cat(d: dict[str, list[Tensor]]) -> dict:
            out = {}
            for et, r in rel.items():
                out[et] = _cat(d[r])
            return out

        n_edges = {et: num_sampled_edges[r] for et, r in rel.items()}
        return node, batch, cat(rows), cat(cols), cat(edges), num_sampled_nodes, n_edges

    def _buffer(self, ntype: str, n: int) -> Tensor:
        if ntype not in self._lookup:
            self._lookup[ntype] = torch.full((n,), -1, dtype=torch.long)
        return self._lookup[ntype]


def make_neighbor_sampler(
    data,
    num_neighbors: list[int],
    backend: str = "auto",
    is_sorted: bool = False,
    time_attr: str | None = None,
) -> NeighborSampler:
    """The sampler for ``backend``: ``pyg`` (compiled), or ``graphrec``/``auto`` (ours:
    3.3-7.6x the sampled edges/s of torch-sparse's in ``graphrec bench`` on this project's
    2-core machines; pyg-lib not measured).

    ``is_sorted``: ``data``'s edges are already in CSC order (as
    :func:`graphrec.graph.message_graph` makes them), so the sampler uses them without a
    sorted copy of its own. ``time_attr``: temporal sampling by that edge attribute.
    """
    if backend == "pyg":
        if not compiled_sampler_available():
            raise ConfigError(
                "sampler.backend=pyg needs pyg-lib or torch-sparse, and neither is installed: "
                "use sampler.backend=graphrec (or auto)"
            )
        return NeighborSampler(data, num_neighbors, is_sorted=is_sorted, time_attr=time_attr)
    return GraphRecNeighborSampler(data, num_neighbors, is_sorted=is_sorted, time_attr=time_attr)
