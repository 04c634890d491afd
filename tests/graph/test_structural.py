"""FastRP: deterministic, shaped, structural, and blind to held-out edges."""

import torch

from graphrec.graph import build_graph
from graphrec.graph.structural import fastrp
from graphrec.loaders import extract, make_source


def test_fastrp_shapes_determinism_and_structure(tiny_cfg):
    g = build_graph(
        extract(make_source(tiny_cfg.extract), progress=False), tiny_cfg, progress=False
    )
    a = fastrp(g, None, dim=16, seed=1)
    b = fastrp(g, None, dim=16, seed=1)
    assert a["user"].shape == (12, 16) and a["movie"].shape == (20, 16)
    assert torch.equal(a["movie"], b["movie"])
    # users with the same neighbourhood get closer embeddings than unrelated ones
    ei = g.target_index
    nbrs = [set(ei[1][ei[0] == u].tolist()) for u in range(12)]
    overlap = [[len(nbrs[i] & nbrs[j]) for j in range(12)] for i in range(12)]
    z = torch.nn.functional.normalize(a["user"], dim=1)
    sim = z @ z.t()
    pairs = [(i, j) for i in range(12) for j in range(i + 1, 12)]
    hi = [sim[i, j] for i, j in pairs if overlap[i][j] >= 4]
    lo = [sim[i, j] for i, j in pairs if overlap[i][j] == 0]
    assert hi and lo and sum(hi) / len(hi) > sum(lo) / len(lo)


def test_fastrp_ignores_edges_outside_keep(tiny_cfg):
    g = build_graph(
        extract(make_source(tiny_cfg.extract), progress=False), tiny_cfg, progress=False
    )
    keep = torch.arange(0, 96, 2)
    a = fastrp(g, keep, dim=8)
    # dropping an edge that is not kept changes nothing
    g.edge_index[g.target] = g.edge_index[g.target].clone()
    g.edge_index[g.target][1, 1] = (g.edge_index[g.target][1, 1] + 5) % 20
    assert torch.equal(fastrp(g, keep, dim=8)["user"], a["user"])
