"""Neighbour-sampling throughput: graphrec's vectorized sampler vs PyG's compiled one.

Runs ``LinkNeighborLoader`` over a synthetic power-law user-item graph with each sampler
available in this environment, in the same process, per sampling mode (uniform, replace,
disjoint, temporal, weighted, backward), and prints and saves mini-batches/s, sampled
edges/s and the ratio. PyG's compiled path needs pyg-lib (every mode) or torch-sparse
(uniform, replace, backward); where neither is installed the comparison says so and only
graphrec's sampler is measured.

    python -m graphrec.benchmark.sampler --edges 2000000 --batches 50
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from torch_geometric import typing as pyg_typing
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.sampler import NeighborSampler

from graphrec.benchmark.results import machine, save, versions
from graphrec.samplers import GraphRecNeighborSampler

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


MODES = ("uniform", "replace", "disjoint", "temporal", "weighted", "backward")
TORCH_SPARSE_MODES = ("uniform", "replace", "backward")


def mode_settings(data: HeteroData, mode: str) -> tuple[dict, dict]:
    """``(sampler kwargs, loader kwargs)`` for ``mode``; adds the times or weights it reads
    to ``data`` (random, seeded)."""
    g = torch.Generator().manual_seed(1)
    n = data[ET].edge_index.shape[1]
    if mode == "temporal":
        data[ET].time = data[REV].time = torch.randint(0, 1_000_000, (n,), generator=g)
        return {"time_attr": "time"}, {"time_attr": "time", "edge_label_time": data[ET].time}
    if mode == "weighted":
        data[ET].w = data[REV].w = torch.rand(n, generator=g)
        return {"weight_attr": "w"}, {}
    return {
        "uniform": {},
        "replace": {"replace": True},
        "disjoint": {"disjoint": True},
        "backward": {"sample_direction": "backward"},
    }[mode], {}


def compiled_modes() -> tuple[str, ...]:
    """The modes PyG's installed compiled sampler runs."""
    if pyg_typing.WITH_PYG_LIB:
        return MODES
    return TORCH_SPARSE_MODES if pyg_typing.WITH_TORCH_SPARSE else ()


def measure(data: HeteroData, sampler, fanout, batch_size: int, batches: int, **loader_kw) -> dict:
    loader = LinkNeighborLoader(
        data,
        num_neighbors=fanout,
        edge_label_index=(ET, data[ET].edge_index),
        batch_size=batch_size,
        shuffle=True,
        neg_sampling="binary",
        neighbor_sampler=sampler,
        **loader_kw,
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
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    p.add_argument("--out", default="bench/results")
    a = p.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        p.error(f"--modes: unknown {sorted(unknown)} (known: {', '.join(MODES)})")
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
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "versions": versions(),
        "samplers": {},
    }
    compiled = compiled_modes()
    if not compiled:
        result["pyg_compiled"] = "not installed (neither pyg-lib nor torch-sparse)"
    for mode in modes:
        skw, lkw = mode_settings(data, mode)
        row = {"graphrec": measure(
            data, GraphRecNeighborSampler(data, fanout, **skw), fanout, a.batch_size, a.batches,
            **lkw,
        )}  # fmt: skip
        if mode in compiled:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = NeighborSampler(data, fanout, **skw)
            row["pyg_compiled"] = measure(data, ref, fanout, a.batch_size, a.batches, **lkw)
            row["ratio_graphrec_over_compiled"] = (
                row["graphrec"]["sampled_edges_per_s"] / row["pyg_compiled"]["sampled_edges_per_s"]
            )
        elif compiled:
            row["pyg_compiled"] = "mode not in the installed compiled sampler"
        result["samplers"][mode] = row
        shown = {k: (round(v["sampled_edges_per_s"]) if isinstance(v, dict) else v)
                 for k, v in row.items()}  # fmt: skip
        print(f"{mode}: {shown}", flush=True)
    save(result, "sampler", a.out)


if __name__ == "__main__":
    main()
