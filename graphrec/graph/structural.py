"""Structural node embeddings: FastRP in PyTorch.

FastRP (Chen et al., "Fast and Accurate Network Embeddings via Very Sparse Random
Projection", 2019): with ``S = D^-1 A`` the row-normalised adjacency of the whole graph
(every node type, both directions) and ``R`` a very sparse random projection
(``±sqrt(3)`` with probability 1/6 each, else 0), ``N_1 = S R``, ``N_i = S N_{i-1}``; each
``N_i`` is L2-normalised per row, and the embedding is ``sum_i w_i N_i``.

In evaluate mode it is computed from the training edges only: an embedding of the full
graph would carry the held-out edges into the features. Neo4j GDS computes the same in the
database; graphrec computes it here so that it works on any source (GDS is not on the
embedded server's classpath).
"""

from __future__ import annotations

import torch

from graphrec.config import BuildConfig
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit


def fastrp(
    graph: Graph,
    keep: torch.Tensor | None,
    dim: int = 64,
    weights: tuple[float, ...] = (0.0, 1.0, 1.0, 1.0),
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """FastRP embeddings ``{node type: [N_t, dim]}`` from the edges (target edges: ``keep``)."""
    offsets, total = {}, 0
    for ntype, n in graph.num_nodes.items():
        offsets[ntype], total = total, total + n
    rows, cols = [], []
    for (src, name, dst), ei in graph.edge_index.items():
        if (src, name, dst) == graph.target and keep is not None:
            ei = ei[:, keep]
        a, b = ei[0] + offsets[src], ei[1] + offsets[dst]
        rows += [a, b]
        cols += [b, a]
    row, col = torch.cat(rows), torch.cat(cols)
    deg = torch.bincount(row, minlength=total).clamp(min=1).float()
    adj = torch.sparse_coo_tensor(
        torch.stack([row, col]), 1.0 / deg[row], (total, total), check_invariants=True
    ).coalesce()
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(total, dim, generator=gen)
    proj = torch.zeros(total, dim)
    proj[u < 1 / 6] = 3**0.5
    proj[u > 5 / 6] = -(3**0.5)
    emb = torch.zeros(total, dim)
    cur = proj
    for w in weights:
        cur = adj @ cur
        cur = torch.nn.functional.normalize(cur, dim=1)
        emb += w * cur
    return {t: emb[o : o + graph.num_nodes[t]] for t, o in offsets.items()}


def add_structural(graph: Graph, split: EdgeSplit, cfg: BuildConfig) -> None:
    """Append the configured structural embeddings (``build.fastrp``, ``build.node2vec``)
    to the node features, computed from the training edges only, so that no held-out edge
    leaks into a feature."""
    parts: list[dict[str, torch.Tensor]] = []
    if cfg.fastrp is not None:
        f = cfg.fastrp
        parts.append(fastrp(graph, split.train, f.dim, tuple(f.weights), f.seed))
    if cfg.node2vec is not None:
        from graphrec.graph.node2vec import node2vec

        parts.append(node2vec(graph, split.train, cfg.node2vec))
    for emb in parts:
        graph.x = {
            t: torch.cat([graph.x[t], emb[t]], 1) if t in graph.x and t in emb else
            graph.x.get(t, emb.get(t))
            for t in graph.num_nodes
            if t in graph.x or t in emb
        }  # fmt: skip
    if parts:
        graph.stats["feature_dims"] = {t: v.shape[1] for t, v in graph.x.items()}
