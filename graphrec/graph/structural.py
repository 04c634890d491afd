"""Structural node embeddings: FastRP in PyTorch.

FastRP (Chen et al., "Fast and Accurate Network Embeddings via Very Sparse Random
Projection", 2019): with ``S = D^-1 A`` the row-normalised adjacency of the whole graph
(every node type, both directions) and ``R`` a very sparse random projection
(``±sqrt(3)`` with probability 1/6 each, else 0), ``N_1 = S R``, ``N_i = S N_{i-1}``; each
``N_i`` is L2-normalised per row, and the embedding is ``sum_i w_i N_i``.

In evaluate mode it is computed from the training edges only: an embedding of the full
graph would carry the held-out edges into the features. Neo4j GDS computes the same in the
database; graphrec computes it here so that it works on any source (GDS is not on the
embedded server's classpath by default; ``build.node2vec.where: database`` reads
Node2Vec from GDS where it is installed).
"""

from __future__ import annotations

import torch

from graphrec.config import BuildConfig, ExtractConfig, Node2VecConfig
from graphrec.errors import ConfigError, DataError, warn
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


def add_structural(
    graph: Graph,
    split: EdgeSplit,
    cfg: BuildConfig,
    extract: ExtractConfig | None = None,
    evaluate: bool = True,
) -> None:
    """Append the configured structural embeddings (``build.fastrp``, ``build.node2vec``)
    to the node features, computed from the training edges only, so that no held-out edge
    leaks into a feature (``extract``: where ``where: database`` reads them; ``evaluate``:
    a split holds edges out)."""
    parts: list[dict[str, torch.Tensor]] = []
    if cfg.fastrp is not None:
        f = cfg.fastrp
        parts.append(fastrp(graph, split.train, f.dim, tuple(f.weights), f.seed))
    if cfg.node2vec is not None and cfg.node2vec.where == "database":
        parts.append(node2vec_in_database(graph, cfg.node2vec, extract, evaluate))
    elif cfg.node2vec is not None:
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


def node2vec_in_database(
    graph: Graph, cfg: Node2VecConfig, extract: ExtractConfig | None, evaluate: bool
) -> dict[str, torch.Tensor]:
    """``build.node2vec`` with ``where: database``: Neo4j GDS's ``gds.node2vec`` on the
    same projection, matched to graphrec's nodes by key. GDS trains word2vec's way
    (per-pair SGD, its own learning rate), so ``lr``, ``batch_size`` and ``epochs: auto``
    are graphrec's alone (``auto`` is one GDS iteration)."""
    from graphrec.graph.node2vec import projection
    from graphrec.loaders.neo4j_gds import gds_embeddings

    where = "build.node2vec"
    if extract is None or extract.source != "neo4j":
        source = extract.source if extract is not None else "none"
        raise ConfigError(
            f"{where}.where=database runs Neo4j's Graph Data Science library: it needs "
            f"extract.source: neo4j (this job reads {source}); use where: graphrec"
        )
    nodes, edges = projection(graph, cfg.node_types, cfg.edge_types, where)
    if evaluate and graph.target in edges:
        raise ConfigError(
            f"{where}.where=database: the projection contains the target edges "
            f"({graph.target[1]!r}), and the database holds the held-out ones too, so the "
            "vectors would see the test edges; leave it out of edge_types, or use "
            "where: graphrec (training edges only)"
        )
    settings = {
        "embeddingDimension": cfg.dim,
        "walkLength": cfg.walk_length,
        "walksPerNode": cfg.walks_per_node,
        "returnFactor": cfg.p,
        "inOutFactor": cfg.q,
        "windowSize": cfg.window,
        "negativeSamplingRate": cfg.negatives,
        "iterations": 1 if cfg.epochs == "auto" else cfg.epochs,
        "randomSeed": cfg.seed,
        "concurrency": 1,  # GDS is deterministic for a seed only on one thread
    }
    found = gds_embeddings(extract, "node2vec", nodes, [e[1] for e in edges], settings)
    out = {}
    for t in nodes:
        emb = torch.zeros(graph.num_nodes[t], cfg.dim)
        vecs = found[t]
        missing = 0
        for row, key in enumerate(graph.node_ids[t].to_pylist()):
            v = vecs.get(key)
            if v is None:
                missing += 1
            else:
                emb[row] = torch.tensor(v)
        if missing:
            warn(
                f"{where}: GDS returned no vector for {missing:,} of {graph.num_nodes[t]:,} "
                f"{t!r} nodes (not in the database's projection): their vectors are zero"
            )
        if not bool(torch.isfinite(emb).all()):
            raise DataError(f"{where}: GDS returned non-finite vectors for {t!r}")
        out[t] = emb
    return out
