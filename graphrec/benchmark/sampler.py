"""Neighbour-sampling throughput: graphrec's vectorized sampler vs PyG's compiled one.

Runs ``LinkNeighborLoader`` over a synthetic power-law user-item graph with each sampler
available in this environment, in the same process, and prints and saves mini-batches/s,
sampled edges/s and the ratio. PyG's compiled path needs pyg-lib or torch-sparse; where
neither is installed the comparison says so and only graphrec's sampler is measured.

    python -m graphrec.benchmark.sampler --edges 2000000 --batches 50
"""

from __future__ import annotations

import argparse
import time

import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.sampler import NeighborSampler

from graphrec.benchmark.results import machine, save, versions
from graphrec.samplers import GraphRecNeighborSampler, compiled_sampler_available

ET, REV = ("user", "rates", "item"), ("item", "rev_rates", "user")


def power_law_graph(n_edges: int, n_users: int, n_items: int, seed: int = 0) -> HeteroData:
    """Zipf-like user and item degrees, duplicates removed."""
    g = torch.Generator().manual_seed(seed)
    u = (torch.rand(n_edges, generator=g) ** 2.5 * n_users).long()
    i = (torch.rand(n_edges, generator=g) ** 3.0 * n_items).long()
    key = torch.unique(u * n_items + i)
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = n_users, n_items
    data[ET].edge_index = torch.stack([key // n_items, key % n_items])
    data[REV].edge_index = data[ET].edge_index.flip(0)
    return data


def measure(data: HeteroData, sampler, fanout, batch_size: int, batches: int) -> dict:
    loader = LinkNeighborLoader(
        data,
        num_neighbors=fanout,
        edge_label_index=(ET, data[ET].edge_index),
        batch_size=batch_size,
        shuffle=True,
        neg_sampling="binary",
        neighbor_sampler=sampler,
    )
    it = iter(loader)
    next(it)  # warm-up
    edges, t0 = 0, time.perf_counter()
    for _ in range(batches):
        b = next(it)
        edges += b[ET].edge_index.shape[1] + b[REV].edge_index.shape[1]
    s = time.perf_counter() - t0
    return {
        "batches_per_s": batches / s,
        "sampled_edges_per_s": edges / s,
        "ms_per_batch": 1000 * s / batches,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--edges", type=int, default=2_000_000)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--fanout", default="10,5")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--out", default="bench/results")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    fanout = [int(x) for x in a.fanout.split(",")]
    data = power_law_graph(a.edges, a.users, a.items)
    result = {
        "benchmark": "sampler",
        "graph": {"edges": int(data[ET].edge_index.shape[1]), "users": a.users, "items": a.items},
        "fanout": fanout,
        "batch_size": a.batch_size,
        "batches": a.batches,
        "machine": machine(),
        "versions": versions(),
        "samplers": {},
    }
    result["samplers"]["graphrec"] = measure(
        data, GraphRecNeighborSampler(data, fanout), fanout, a.batch_size, a.batches
    )
    if compiled_sampler_available():
        result["samplers"]["pyg_compiled"] = measure(
            data, NeighborSampler(data, fanout), fanout, a.batch_size, a.batches
        )
        result["ratio_graphrec_over_compiled"] = (
            result["samplers"]["graphrec"]["batches_per_s"]
            / result["samplers"]["pyg_compiled"]["batches_per_s"]
        )
    else:
        result["pyg_compiled"] = "not installed (neither pyg-lib nor torch-sparse)"
    save(result, "sampler", a.out)


if __name__ == "__main__":
    main()
