"""Structural node embeddings: Node2Vec in PyTorch (no pyg-lib, no torch-cluster).

Node2Vec (Grover & Leskovec, "node2vec: Scalable Feature Learning for Networks", 2016):
second-order biased random walks, then skip-gram with negative sampling on the walks.

* **Projection.** The walks run on a chosen part of the graph: ``node_types`` and
  ``edge_types`` (by edge name), all of them by default, every edge followed both ways,
  repeated edges counted once. In evaluate mode the target edges are the training edges
  only, so no held-out edge shapes a feature. The DVD-rental tutorial projects films,
  actors and categories, without customers.
* **Walks.** From every node with an edge in the projection, ``walks_per_node`` walks of
  ``walk_length`` steps, all advanced together: a step is one vectorised draw for every
  walk. The first step is a uniform neighbour; after that, having come from ``t`` to
  ``v``, the next node ``x`` is a neighbour of ``v`` with weight ``1/p`` when ``x = t``,
  ``1`` when ``x`` is a neighbour of ``t`` and ``1/q`` otherwise, drawn by rejection
  (propose a uniform neighbour, accept with probability weight / max weight; the
  rejected walks draw again) as KnightKing and torch-cluster do, so no per-node
  transition table is built. ``x`` adjacent to ``t`` is one binary search in the sorted
  edge keys. Cost per step: O(walks x expected proposals x log E); memory O(walks x
  walk_length) for the walks plus the edge list.
* **Skip-gram.** Every pair of nodes at most ``window`` apart on a walk is a positive
  (both orders); ``negatives`` noise nodes per positive are drawn with probability
  proportional to degree^0.75 (a walk visits a node in proportion to its degree, so this
  is word2vec's unigram^0.75 without counting the walks); logistic loss on the dot products of an
  input and an output embedding, Adam (sparse rows on large graphs); every epoch walks again from
  every start (in a fresh random order, ``batch_size`` walks a step), so memory is
  bounded by a batch of walks, not by all of them. The input embedding is the result.

Everything is drawn from one seeded generator: the same graph and settings give the same
vectors. Nodes without an edge in the projection get zero vectors (they are named in a
warning); a projected node type without a single edge is refused.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from graphrec.config import Node2VecConfig
from graphrec.errors import ConfigError, DataError, warn
from graphrec.graph.hetero import Graph


def projection(graph: Graph, node_types, edge_types, where: str) -> tuple[list[str], list]:
    """The node types and edge types (full ``(src, name, dst)`` keys) a structural method
    walks on: ``node_types``/``edge_types`` (names; None: all), checked against the
    graph. Edge types default to those whose two ends are both projected."""
    known_nodes = list(graph.num_nodes)
    by_name = {key[1]: key for key in graph.edge_index}
    nodes = list(node_types) if node_types is not None else known_nodes
    for t in nodes:
        if t not in graph.num_nodes:
            raise ConfigError(
                f"{where}.node_types: no node type {t!r} in the graph (it has {known_nodes})"
            )
    if edge_types is None:
        edges = [k for k in graph.edge_index if k[0] in nodes and k[2] in nodes]
    else:
        edges = []
        for name in edge_types:
            if name not in by_name:
                raise ConfigError(
                    f"{where}.edge_types: no edge type {name!r} in the graph "
                    f"(it has {sorted(by_name)})"
                )
            key = by_name[name]
            if key[0] not in nodes or key[2] not in nodes:
                raise ConfigError(
                    f"{where}.edge_types: {name!r} joins {key[0]!r} and {key[2]!r}, and "
                    f"node_types {nodes} leave one of them out"
                )
            edges.append(key)
    touched = {t for k in edges for t in (k[0], k[2])}
    for t in nodes:
        if graph.num_nodes[t] == 0:
            raise DataError(f"{where}: node type {t!r} has no nodes")
        if t not in touched:
            raise DataError(
                f"{where}: node type {t!r} has no edge in the projection (edge types "
                f"{[k[1] for k in edges]}): leave it out of node_types or add an edge type "
                "that reaches it"
            )
    return nodes, edges


def _adjacency(graph: Graph, keep: Tensor | None, nodes, edges, offsets, total: int):
    """The projection's edges, numbered across node types, as :func:`adjacency`."""
    parts = []
    for key in edges:
        ei = graph.edge_index[key]
        if key == graph.target and keep is not None:
            ei = ei[:, keep]
        parts.append(torch.stack([ei[0] + offsets[key[0]], ei[1] + offsets[key[2]]]))
    return adjacency(torch.cat(parts, 1), total)


def adjacency(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Undirected, deduplicated CSR of ``edge_index``: ``(colptr, col, keys)``, ``keys``
    the sorted ``row * num_nodes + col`` of every directed edge (for adjacency tests)."""
    a, b = edge_index[0].long(), edge_index[1].long()
    keys = torch.unique(torch.cat([a * num_nodes + b, b * num_nodes + a]))  # sorted
    row, col = keys // num_nodes, keys % num_nodes
    colptr = torch.zeros(num_nodes + 1, dtype=torch.int64)
    colptr[1:] = torch.bincount(row, minlength=num_nodes).cumsum(0)
    return colptr, col, keys


def random_walks(
    colptr: Tensor,
    col: Tensor,
    keys: Tensor,
    starts: Tensor,
    length: int,
    p: float,
    q: float,
    gen: torch.Generator,
) -> Tensor:
    """``[len(starts), length + 1]`` node2vec walks (every start must have a neighbour)."""
    total = len(colptr) - 1
    deg = colptr[1:] - colptr[:-1]
    walks = torch.empty(len(starts), length + 1, dtype=torch.int64)
    walks[:, 0] = starts
    if length == 0:
        return walks

    def uniform(v: Tensor) -> Tensor:
        d = deg[v]
        pick = (torch.rand(len(v), generator=gen, dtype=torch.float64) * d).long()
        return col[colptr[v] + torch.minimum(pick, d - 1)]

    walks[:, 1] = uniform(starts)
    w_back, w_out = 1.0 / p, 1.0 / q
    top = max(w_back, 1.0, w_out)
    unbiased = p == 1.0 and q == 1.0
    for step in range(2, length + 1):
        t, v = walks[:, step - 2], walks[:, step - 1]
        if unbiased:
            walks[:, step] = uniform(v)
            continue
        nxt = torch.empty_like(v)
        todo = torch.arange(len(v))
        while len(todo):
            tt, vv = t[todo], v[todo]
            x = uniform(vv)
            k = tt * total + x
            at = torch.searchsorted(keys, k).clamp_(max=len(keys) - 1)
            near = keys[at] == k
            weight = torch.where(x == tt, w_back, torch.where(near, 1.0, w_out))
            ok = torch.rand(len(todo), generator=gen, dtype=torch.float64) * top < weight
            nxt[todo[ok]] = x[ok]
            todo = todo[~ok]
        walks[:, step] = nxt
    return walks


def skipgram_pairs(walks: Tensor, window: int) -> Tensor:
    """``[2, P]`` (centre, context) pairs: nodes at most ``window`` apart, both orders."""
    out = []
    for d in range(1, min(window, walks.shape[1] - 1) + 1):
        a, b = walks[:, :-d].reshape(-1), walks[:, d:].reshape(-1)
        out += [torch.stack([a, b]), torch.stack([b, a])]
    return torch.cat(out, 1)


def node2vec(graph: Graph, keep: Tensor | None, cfg: Node2VecConfig) -> dict[str, Tensor]:
    """Node2Vec embeddings ``{node type: [N_t, dim]}`` of the projected node types (target
    edges: ``keep``; None: all of them)."""
    where = "build.node2vec"
    nodes, edges = projection(graph, cfg.node_types, cfg.edge_types, where)
    offsets, total = {}, 0
    for t in nodes:
        offsets[t], total = total, total + graph.num_nodes[t]
    colptr, col, keys = _adjacency(graph, keep, nodes, edges, offsets, total)
    deg = colptr[1:] - colptr[:-1]
    alone = deg == 0
    for t in nodes:
        lost = int(alone[offsets[t] : offsets[t] + graph.num_nodes[t]].sum())
        if lost:
            warn(
                f"{where}: {lost:,} of {graph.num_nodes[t]:,} {t!r} nodes have no edge in the "
                "projection (with training edges only, in evaluate mode): their vectors are zero"
            )
    gen = torch.Generator().manual_seed(cfg.seed)
    starts = torch.nonzero(~alone).flatten().repeat(cfg.walks_per_node)
    emb = _skipgram(colptr, col, keys, starts, deg, cfg, gen)
    emb[alone] = 0.0
    if not bool(torch.isfinite(emb).all()):
        raise DataError(f"{where}: the embeddings are not finite (lower {where}.lr)")
    return {t: emb[o : o + graph.num_nodes[t]].clone() for t, o in offsets.items()}


SPARSE_NODES = 100_000
"""From this many projected nodes the skip-gram's embeddings take sparse gradients
(SparseAdam: a step costs what the batch touches, though sorting its rows); below, dense
Adam over the whole tables is cheaper than that sort (as ``model.sparse_embeddings: auto``)."""


def item_vectors(graph: Graph, keep: Tensor, cfg: Node2VecConfig, who: str) -> Tensor:
    """Node2Vec vectors of the items (the target's destination type), computed here from
    the edges ``keep`` even where ``cfg.where`` is database (the database also holds the
    held-out edges); ``who`` names the user of the vectors in the error when the
    projection leaves the items out."""
    if cfg.where == "database":
        cfg = dataclasses.replace(cfg, where="graphrec")
    if cfg.node_types is not None and graph.item_type not in cfg.node_types:
        raise ConfigError(
            f"{who} needs vectors of the items ({graph.item_type!r}): add it to the "
            f"Node2Vec projection's node_types ({cfg.node_types})"
        )
    return node2vec(graph, keep, cfg)[graph.item_type]


MIN_STEPS = 200
"""``epochs: auto`` runs at least this many skip-gram steps."""


def epochs(walks: int, cfg: Node2VecConfig) -> int:
    """The epochs to run: ``cfg.epochs``, or for ``auto`` enough for :data:`MIN_STEPS`."""
    if cfg.epochs != "auto":
        return cfg.epochs
    return max(1, math.ceil(MIN_STEPS / math.ceil(walks / cfg.batch_size)))


def _skipgram(colptr, col, keys, starts, deg, cfg: Node2VecConfig, gen) -> Tensor:
    """Skip-gram with negative sampling on fresh walks, ``batch_size`` walks a step: the
    input embedding ``[nodes, dim]``. Noise nodes are drawn with probability proportional
    to degree^0.75 (a walk visits a node in proportion to its degree: word2vec's unigram
    distribution to the 0.75, without counting the walks), by inverse CDF (no limit on
    the number of nodes, unlike ``torch.multinomial``'s 2^24). The gradients are written
    by hand (``index_add_`` of each pair's rows): autograd's embedding backward sorts the
    batch's rows, which cost 10x the rest of a step."""
    total, dim, k = len(deg), cfg.dim, cfg.negatives
    sparse = total >= SPARSE_NODES
    w_in = torch.empty(total, dim).uniform_(-0.5 / dim, 0.5 / dim, generator=gen)
    w_out = torch.zeros(total, dim)  # word2vec's start: small random inputs, zero outputs
    w_in.requires_grad_(), w_out.requires_grad_()
    opt = (torch.optim.SparseAdam if sparse else torch.optim.Adam)([w_in, w_out], lr=cfg.lr)
    noise = (deg.double() ** 0.75).cumsum(0)
    noise /= noise[-1].clone()

    def grad(rows: list[Tensor], values: list[Tensor]) -> Tensor:
        idx, val = torch.cat(rows), torch.cat(values)
        if sparse:  # SparseAdam sums the repeated rows
            return torch.sparse_coo_tensor(idx[None], val, (total, dim))
        return torch.zeros(total, dim).index_add_(0, idx, val)

    for _ in range(epochs(len(starts), cfg)):
        order = starts[torch.randperm(len(starts), generator=gen)]
        for chunk in order.split(cfg.batch_size):
            walks = random_walks(colptr, col, keys, chunk, cfg.walk_length, cfg.p, cfg.q, gen)
            c, o = skipgram_pairs(walks, cfg.window)
            u = torch.rand(len(c) * k, generator=gen, dtype=torch.float64)
            neg = torch.searchsorted(noise, u).clamp_(max=total - 1)  # inverse CDF
            with torch.no_grad():
                h, ho, hn = w_in[c], w_out[o], w_out[neg].view(len(c), k, dim)
                pos = (h * ho).sum(-1)
                negs = torch.bmm(hn, h.unsqueeze(2)).squeeze(2)
                # loss: -(mean log sigmoid(pos) + mean over pairs of sum log sigmoid(-negs))
                d_pos = (torch.sigmoid(pos) - 1) / len(c)
                d_neg = torch.sigmoid(negs) / len(c)
                g_h = d_pos[:, None] * ho + torch.bmm(d_neg.unsqueeze(1), hn).squeeze(1)
                g_o = d_pos[:, None] * h
                g_n = (d_neg.unsqueeze(2) * h.unsqueeze(1)).view(-1, dim)
                w_in.grad = grad([c], [g_h])
                w_out.grad = grad([o, neg], [g_o, g_n])
            opt.step()
    return w_in.detach()
