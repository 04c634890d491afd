"""Training throughput with and without temporal neighbour sampling, side by side.

Reads a config's graph once and splits it per user by time (``build.split.kind=temporal``),
then trains the same number of mini-batches with ``sampler.temporal`` off and on, alternated
over ``--rounds`` (a shared machine's slow spell hits both), for each objective asked for
(``rating``: the config's loss; ``link``: binary cross-entropy against the config's
negatives), and prints and saves labelled edges/s, the best of each, and the ratio.

    python -m graphrec.benchmark.temporal --config configs/movielens.yaml --batches 40
"""

from __future__ import annotations

import argparse
import copy

from graphrec.benchmark.results import machine, save, versions
from graphrec.benchmark.stages import _no_val
from graphrec.config import load_config
from graphrec.models.registry import check_model
from graphrec.pipeline import extract_and_build
from graphrec.train.batches import TrainInputs
from graphrec.train.loop import train_loop_per_worker

OBJECTIVES = {"rating": None, "link": "bce"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--objectives", default="rating,link", help="comma-separated: rating, link")
    p.add_argument("--out", default="bench/results")
    p.add_argument("overrides", nargs="*", help="config overrides, key=value")
    a = p.parse_args()
    objectives = [o for o in a.objectives.split(",") if o]
    unknown = set(objectives) - set(OBJECTIVES)
    if unknown:
        p.error(f"--objectives: unknown {sorted(unknown)} (known: {', '.join(OBJECTIVES)})")
    cfg = load_config(a.config, [*a.overrides, "build.split.kind=temporal"])
    cfg.train.epochs, cfg.train.max_batches_per_epoch = 1, a.batches
    cfg.train.patience, cfg.train.checkpoint_path = 0, None
    graph, split = extract_and_build(cfg, progress=False)
    split = _no_val(split)  # training batches only
    result = {
        "benchmark": "temporal_sampling",
        "config": a.config,
        "overrides": a.overrides,
        "train_edges": int(len(split.train)),
        "batches": a.batches,
        "batch_size": cfg.sampler.batch_size,
        "num_neighbors": cfg.sampler.num_neighbors,
        "machine": machine(),
        "versions": versions(),
        "objectives": {},
    }
    for objective in objectives:
        arms = {}  # each arm's config and message graph, built once
        for arm in ("plain", "temporal"):
            c = copy.deepcopy(cfg)
            c.sampler.temporal = arm == "temporal"
            if objective == "link":
                c.train.objective, c.train.loss = "link", OBJECTIVES["link"]
            check_model(c)
            arms[arm] = (c, TrainInputs.of(graph, split, c))
        runs: dict[str, list[float]] = {"plain": [], "temporal": []}
        split_s: dict[str, dict] = {}  # where the best run's time went
        for r in range(a.rounds):
            order = ("plain", "temporal") if r % 2 == 0 else ("temporal", "plain")
            for arm in order:
                c, inputs = arms[arm]
                _, res = train_loop_per_worker({"cfg": c, "inputs": inputs, "progress": False})
                h = res.history[-1]
                runs[arm].append(h["labelled_edges_per_s"])
                if h["labelled_edges_per_s"] == max(runs[arm]):
                    split_s[arm] = {k: h[k] for k in ("sample_seconds", "compute_seconds")}
        best = {arm: max(v) for arm, v in runs.items()}
        ratio = best["temporal"] / best["plain"]
        row = {
            "runs": runs,
            "best": best,
            "best_seconds": split_s,
            "ratio_temporal_over_plain": ratio,
        }
        result["objectives"][objective] = row
        print(f"{objective}: {best} ratio {ratio:.2f}; best runs' seconds {split_s}", flush=True)
    save(result, "temporal-sampling", a.out)


if __name__ == "__main__":
    main()
