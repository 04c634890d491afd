"""Exact top-k on each device there is, side by side in one run: users/s, GFLOP/s, and
whether every device finds the same items (up to ties) as the CPU.

``python -m graphrec.benchmark.topk_device [--users 20000] [--items 200000] [--dim 64]
[--out FILE]``: random clustered vectors, each user with 20 seen items. Without a GPU the
CUDA row says so (``skipped``); ``bench/gpu_check.sh`` runs it on a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from graphrec.environment import machine, versions
from graphrec.graph.csr import to_csr
from graphrec.ranking.approximate import recall
from graphrec.ranking.topk import topk_unseen


def measure(uv, iv, exclude, k: int, device: str, batch_users: int) -> dict:
    u, i = uv.to(device), iv.to(device)
    topk_unseen(u[:batch_users], i, (exclude[0][: batch_users + 1], exclude[1]), k)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    items, scores = topk_unseen(u, i, exclude, k, batch_users)
    if device == "cuda":
        torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    flops = 2.0 * len(uv) * len(iv) * uv.shape[1]
    return {
        "device": device,
        "seconds": sec,
        "users_per_s": len(uv) / sec,
        "gflops": flops / sec / 1e9,
        "items": items,
        "scores": scores,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch-users", type=int, default=2048)
    p.add_argument("--out", default=None, help="JSON file (default: bench/results/...)")
    a = p.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(256, a.dim, generator=gen)
    iv = centres[torch.randint(0, 256, (a.items,), generator=gen)]
    iv = iv + torch.randn(a.items, a.dim, generator=gen)
    uv = centres[torch.randint(0, 256, (a.users,), generator=gen)]
    uv = uv + torch.randn(a.users, a.dim, generator=gen)
    seen_u = torch.arange(a.users).repeat_interleave(20)
    seen_i = torch.randint(0, a.items, (a.users * 20,), generator=gen)
    exclude = to_csr(seen_u, seen_i, a.users)
    rows = {"cpu": measure(uv, iv, exclude, a.k, "cpu", a.batch_users)}
    if torch.cuda.is_available():
        rows["cuda"] = measure(uv, iv, exclude, a.k, "cuda", a.batch_users)
        rows["cuda"]["gpu"] = torch.cuda.get_device_name(0)
    else:
        rows["cuda"] = {"skipped": "no CUDA device visible"}
    ref = rows["cpu"]["scores"]
    for r in rows.values():
        if "scores" in r:  # the same items as the CPU, ties counted as found
            r["recall_vs_cpu"] = recall(r.pop("scores").cpu(), ref)
            r.pop("items")
            r["speedup_vs_cpu"] = r["users_per_s"] / rows["cpu"]["users_per_s"]
    out = {
        "benchmark": "topk_device",
        "users": a.users,
        "items": a.items,
        "dim": a.dim,
        "k": a.k,
        "results": rows,
        "machine": machine(),
        "versions": versions(),
    }
    path = Path(a.out) if a.out else None
    text = json.dumps(out, indent=1)
    print(text)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return out


if __name__ == "__main__":
    main()
