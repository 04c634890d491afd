"""Training throughput against the number of Ray Train workers, on a synthetic graph.

Builds a seeded power-law graph once (``graphrec synth``, at least 2 million edges by
default), then trains the ``configs/synth.yaml`` model on it in this process (workers=0, no
Ray) and on each requested number of Ray Train workers (DDP, gloo on CPU), and prints and
saves labelled edges/s in total and per worker, sampler vs compute seconds, and the ratio to
one worker. Each point runs ``--epochs`` epochs of ``--steps`` DDP steps; the last epoch is
the steady-state figure (the first includes warm-up). Ray start-up is reported apart.

Scaling is weak by default: every worker keeps ``--batch-per-worker`` labelled edges per
step, so N workers process N times the edges per step (``--strong``: the global batch stays
``--batch-per-worker`` and is split over the workers). CPUs are divided evenly over the
workers (``cpus_per_worker = cores // workers``).

    python -m graphrec.benchmark.scaling                          # 2M edges; 0, 1, 2 workers
    python -m graphrec.benchmark.scaling --workers 1,2,4,8 --gpu  # 16 cores: + 1 GPU worker

Run from the repository root (it reads ``configs/synth.yaml``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from graphrec.benchmark.results import machine, save, versions
from graphrec.config import load_config
from graphrec.pipeline import StageClock, extract_and_build
from graphrec.synth import synth_graph
from graphrec.train.batches import TrainInputs
from graphrec.train.loop import train_loop_per_worker


def point(inputs: TrainInputs, cfg, workers: int, gpu: bool) -> dict:
    cfg.distributed.workers = workers
    cfg.distributed.use_gpu = gpu and workers > 0
    cfg.train.device = "cuda" if gpu else "cpu"
    cores = os.cpu_count() or 1
    t0 = time.perf_counter()
    if workers == 0:
        torch.set_num_threads(cores)
        _, result = train_loop_per_worker({"cfg": cfg, "inputs": inputs, "progress": False})
    else:
        from graphrec.distributed import fit

        cfg.distributed.cpus_per_worker = max(1, cores // workers)
        _, result = fit(inputs, cfg, progress=False)
    wall = time.perf_counter() - t0
    last = result.history[-1]
    train_s = sum(r["seconds"] for r in result.history)
    out = {
        "workers": workers,
        "device": "cuda" if gpu else "cpu",
        "cpus_per_worker": cores if workers == 0 else cfg.distributed.cpus_per_worker,
        "labelled_edges_per_s": last["labelled_edges_per_s"],
        "labelled_edges_per_s_per_worker": last["labelled_edges_per_s"] / max(workers, 1),
        "sample_seconds": last["sample_seconds"],
        "compute_seconds": last["compute_seconds"],
        "epoch_seconds": last["seconds"],
        "labelled_edges_per_epoch": last["labelled_edges"],
        "wall_seconds": wall,
        "startup_and_other_seconds": wall - train_s,
    }
    if "workers" in last:
        out["per_worker"] = [
            {k: w[k] for k in ("rank", "labelled_edges_per_s", "sample_seconds", "compute_seconds")}
            for w in last["workers"]
        ]
    print(
        f"workers={workers} {out['device']}: {out['labelled_edges_per_s']:,.0f} labelled edges/s "
        f"(sample {out['sample_seconds']:.1f} s, compute {out['compute_seconds']:.1f} s, "
        f"wall {wall:.0f} s)",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--edges", type=float, default=2e6)
    ap.add_argument("--workers", default="0,1,2", help="comma-separated; 0: in process, no Ray")
    ap.add_argument("--gpu", action="store_true", help="also one GPU worker (and in process)")
    ap.add_argument("--steps", type=int, default=30, help="DDP steps per epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-per-worker", type=int, default=1024)
    ap.add_argument("--strong", action="store_true", help="fixed global batch")
    ap.add_argument("--data", default="bench/.data", help="synthetic graph cache")
    ap.add_argument("--out", default="bench/results")
    a = ap.parse_args()

    root = Path(a.data) / f"synth-{int(a.edges)}"
    if not (root / "ratings.parquet").exists():
        synth_graph(root, int(a.edges), None, None, 0, progress=True)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster
    base = load_config(
        Path("configs/synth.yaml"),
        [
            f"extract.root={root}",
            f"extract.snapshot_dir={Path(a.data) / 'snapshots'}",
            "mode=final",  # no held-out split: nothing but training is timed
            f"train.epochs={a.epochs}",
            "train.patience=0",
            f"train.max_batches_per_epoch={a.steps}",
            f"train.checkpoint_path={Path(a.data) / 'checkpoints'}",
        ],
    )
    clock = StageClock()
    graph, split = extract_and_build(base, clock, progress=True)
    inputs = TrainInputs.of(graph, split, base)
    n_edges = int(graph.target_index.shape[1])

    import copy

    points = []
    workers = [int(w) for w in a.workers.split(",")]
    runs = [(w, False) for w in workers] + ([(0, True), (1, True)] if a.gpu else [])
    for w, gpu in runs:
        cfg = copy.deepcopy(base)
        per = max(w, 1)
        cfg.sampler.batch_size = a.batch_per_worker * (1 if a.strong else per)
        points.append(point(inputs, cfg, w, gpu))

    one = next((p for p in points if p["workers"] == 1 and p["device"] == "cpu"), None)
    for p in points:
        if one:
            p["vs_one_cpu_worker"] = p["labelled_edges_per_s"] / one["labelled_edges_per_s"]
    result = {
        "benchmark": "train_scaling",
        "graph": {"edges": n_edges, "nodes": graph.num_nodes},
        "scaling": "strong (fixed global batch)" if a.strong else "weak (fixed batch per worker)",
        "batch_per_worker": a.batch_per_worker,
        "steps_per_epoch": a.steps,
        "epochs": a.epochs,
        "fanout": base.sampler.num_neighbors,
        "points": points,
        "machine": machine(),
        "versions": versions(),
    }
    save(result, "train-scaling", a.out)
    print("\nworkers  device  labelled edges/s  per worker  vs 1 worker  sample s  compute s")
    for p in points:
        print(
            f"{p['workers']:>7}  {p['device']:>6}  {p['labelled_edges_per_s']:>16,.0f}  "
            f"{p['labelled_edges_per_s_per_worker']:>10,.0f}  "
            f"{p.get('vs_one_cpu_worker', float('nan')):>11.2f}  "
            f"{p['sample_seconds']:>8.1f}  {p['compute_seconds']:>9.1f}"
        )


if __name__ == "__main__":
    main()
