"""One training step of graphrec and of PyG's recipe, timed and profiled side by side on
the training device (a GPU where one is visible).

``python -m graphrec.benchmark.step_profile [--edges 1e6] [--data DIR] [--steps 20]
[--out DIR]``: link prediction with BCE on a ``graphrec synth`` graph (the
``graphrec bench`` settings: fan-out, batch, negatives, sampler). Per arm: the sampling
time per batch (alone, no compute between), the compute + host-to-device time per step
(after warm-up steps), and the operators that took the most device time (self time on a
GPU, the CPU's elsewhere) in a ``torch.profiler`` trace of ``--steps`` steps, with the
number of kernel launches and host-device copies. Written to find why a step is slow on
a given device, not to rank the two (``graphrec bench`` does, best of alternated runs).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from graphrec.benchmark import pyg_reference
from graphrec.benchmark.results import machine, save, versions
from graphrec.benchmark.runner import synth_config
from graphrec.benchmark.stages import _no_val, _sync
from graphrec.pipeline import extract_and_build
from graphrec.synth import synth_graph
from graphrec.train.batches import TrainInputs, make_loader
from graphrec.train.context import resolve_device
from graphrec.train.loop import new_model
from graphrec.train.losses import batch_loss
from graphrec.train.optimizer import make_optimizer

WARMUP = 5
TOP_OPS = 15
LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC")


def inputs(root: Path, edges: int) -> tuple[TrainInputs, object]:
    """The synth graph of ``edges`` under ``root`` (made once), built and split, and its
    config set to link prediction with BCE (the task PyG's recipe learns)."""
    if not (root / "synth.json").is_file():
        synth_graph(root, edges, progress=False)
    cfg = synth_config(root)
    cfg.train.checkpoint_path, cfg.train.patience = None, 0
    cfg.train.objective, cfg.train.loss = "link", "bce"
    g, split = extract_and_build(cfg, progress=False)
    return TrainInputs(g, _no_val(split), TrainInputs.of(g, split, cfg).data), cfg


def arm(loader, step, device: torch.device, steps: int) -> dict:
    """Sampling per batch, compute per step and the profile of ``steps`` steps."""
    it = iter(loader)
    n = WARMUP + 2 * steps
    t0 = time.perf_counter()
    batches = [next(it) for _ in range(n)]
    sample_ms = (time.perf_counter() - t0) / n * 1e3
    for b in batches[:WARMUP]:
        step(b.to(device))
    _sync(device)
    t0 = time.perf_counter()
    for b in batches[WARMUP : WARMUP + steps]:
        step(b.to(device))
    _sync(device)
    step_ms = (time.perf_counter() - t0) / steps * 1e3
    gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as prof:
        for b in batches[WARMUP + steps :]:
            step(b.to(device))
        _sync(device)
    events = prof.key_averages()
    key = "self_device_time_total" if gpu else "self_cpu_time_total"
    ops = sorted(events, key=lambda e: getattr(e, key, 0), reverse=True)[:TOP_OPS]
    calls = {e.key: e.count for e in events}
    return {
        "sample_ms_per_batch": sample_ms,
        "step_ms": step_ms,
        "kernel_launches_per_step": sum(calls.get(k, 0) for k in LAUNCHES) / steps,
        "memcpy_calls_per_step": calls.get("cudaMemcpyAsync", 0) / steps,
        "top_ops": [
            {
                "op": e.key,
                "calls_per_step": e.count / steps,
                "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
                "self_device_ms_per_step": getattr(e, "self_device_time_total", 0) / 1e3 / steps,
            }
            for e in ops
        ],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--edges", type=float, default=1e6)
    p.add_argument("--data", default=".graphrec/bench", help="synth graphs (made once)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", default="bench/results")
    a = p.parse_args(argv)
    edges = int(a.edges)
    inp, cfg = inputs(Path(a.data) / f"synth-{edges}", edges)
    device = resolve_device(cfg.train.device)

    torch.manual_seed(cfg.train.seed)
    model = new_model(inp.graph, inp.split, cfg).to(device)
    opt = make_optimizer(model, cfg.train.lr, cfg.train.weight_decay)

    def ours(batch) -> None:  # the step of graphrec's training loop
        opt.zero_grad()
        loss, _ = batch_loss(model, batch, cfg)
        loss.backward()
        opt.step()

    arms = {"graphrec": arm(make_loader(inp.data, inp.graph, None, cfg), ours, device, a.steps)}
    ref, ref_opt, loader, _ = pyg_reference.recipe(inp, copy.deepcopy(cfg))
    arms["pyg_recipe"] = arm(
        loader, lambda b: pyg_reference.step(ref, ref_opt, b, inp.graph.target), device, a.steps
    )
    for name, r in arms.items():
        print(f"{name}: sampling {r['sample_ms_per_batch']:.2f} ms/batch, "
              f"step {r['step_ms']:.2f} ms (compute + copy to {device})")  # fmt: skip
        for o in r["top_ops"][:8]:
            dev_ms, cpu_ms = o["self_device_ms_per_step"], o["self_cpu_ms_per_step"]
            print(f"  {o['op'][:48]:<48} {dev_ms:8.3f} ms device {cpu_ms:8.3f} ms CPU "
                  f"{o['calls_per_step']:6.1f} calls")  # fmt: skip
    result = {
        "benchmark": "step_profile",
        "edges": edges,
        "device": str(device),
        "steps": a.steps,
        "fanout": list(cfg.sampler.num_neighbors),
        "batch_size": cfg.sampler.batch_size,
        "arms": arms,
        "machine": machine(),
        "versions": versions(),
    }
    save(result, "step-profile", a.out)
    return result


if __name__ == "__main__":
    main()
