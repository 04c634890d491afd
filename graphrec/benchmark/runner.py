"""``graphrec bench``: every stage on synthetic graphs of growing size (and MovieLens),
with the alternatives side by side, cost-growth exponents, JSON and a Markdown report.

    graphrec bench --sizes 1e5,1e6 --quick
    graphrec bench --sizes 1e7 --stages extract,build,sample,train,topk

Each size is generated once by :func:`graphrec.synth.synth_graph` (cached under ``--data``).
The exponent of a stage is the slope of log(seconds) against log(edges) over the sizes
(1.0: linear); a stage above 1.15 is flagged. Stages whose work does not grow with the
graph (text encoding of a fixed sample, a fixed number of mini-batches) are not fitted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from graphrec.benchmark.stages import LARGE_EDGES, STAGES, bench_graph
from graphrec.config import JobConfig, from_dict, load_config
from graphrec.environment import machine, versions
from graphrec.errors import ConfigError
from graphrec.pipeline import RssSampler
from graphrec.synth import synth_graph

# stages whose work is proportional to the graph (fixed-size samples are not)
SCALED = ("extract", "build", "inference", "topk", "write")
FLAG_EXPONENT = 1.15


def synth_config(root: Path) -> JobConfig:
    """The job config of a ``graphrec synth`` folder (the schema of configs/synth.yaml)."""
    return from_dict(
        JobConfig,
        {
            "name": "synth",
            "extract": {
                "root": str(root),
                "snapshot_dir": None,
                "nodes": {
                    "user": {"id": "userId", "file": "users.parquet"},
                    "item": {
                        "id": "itemId",
                        "file": "items.parquet",
                        "properties": {"title": "string", "categories": "string"},
                    },
                },
                "edges": {
                    "rates": {
                        "src": "user",
                        "dst": "item",
                        "src_id": "userId",
                        "dst_id": "itemId",
                        "file": "ratings.parquet",
                        "properties": {"rating": "float", "timestamp": "int"},
                    }
                },
            },
            "build": {
                "target": "rates",
                "label": "rating",
                "timestamp": "timestamp",
                "features": {"item": [{"property": "categories", "kind": "multi_hot"}]},
            },
            "sampler": {"num_neighbors": [10, 5], "batch_size": 1024},
            "train": {"objective": "rating", "loss": "mse"},
        },
        "",
    )


def run_bench(
    sizes: list[int],
    stages: tuple[str, ...] = STAGES,
    quick: bool = False,
    data_dir: str | Path = ".graphrec/bench",
    out_dir: str | Path = "bench/results",
    movielens: str | Path | None = None,
    log=print,
) -> dict:
    """Run, then write ``bench-<stamp>.json``, ``bench-<stamp>.md`` and PNG plots."""
    from graphrec.benchmark.report import write_report

    t_start = time.perf_counter()
    graphs: list[dict] = []
    with RssSampler() as rss:
        for n in sorted(sizes):
            root = Path(data_dir) / f"synth-{n}"
            if not (root / "synth.json").is_file():
                log(f"generating a synthetic graph of {n:,} edges in {root}")
                synth_graph(root, n, progress=False)
            log(f"graph synth-{n:,}")
            rec = bench_graph(synth_config(root), stages, quick, rss, log)
            graphs.append({"name": f"synth-{n}", "edges": rec["extract"]["edges"], "stages": rec})
        if movielens is not None and Path(movielens).is_file():
            log(f"graph movielens ({movielens})")
            cfg = load_config(movielens, ["extract.snapshot_dir=null"])
            rec = bench_graph(cfg, stages, quick, rss, log)
            graphs.append({"name": "movielens", "edges": rec["extract"]["edges"], "stages": rec})
    synth = [g for g in graphs if g["name"].startswith("synth")]
    result = {
        "benchmark": "graphrec bench",
        "quick": quick,
        "stages": list(stages),
        "graphs": graphs,
        "exponents": exponents(synth),
        "flag_above": FLAG_EXPONENT,
        "seconds": time.perf_counter() - t_start,
        "machine": machine(),
        "versions": versions(),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(result, indent=1, default=str))
    result["files"] = write_report(result, out, stamp)
    result["files"]["json"] = str(json_path)
    log(f"wrote {json_path} and {result['files']['report']}")
    return result


def exponents(graphs: list[dict]) -> dict:
    """Slope of log(seconds) on log(edges) per stage over ``graphs`` (>= 2 sizes)."""
    out = {}
    if len(graphs) < 2:
        return out
    for stage in SCALED:
        pts = [
            (g["edges"], g["stages"][stage]["seconds"])
            for g in graphs
            if stage in g["stages"]
            and g["stages"][stage]["seconds"] > 0
            and "sampled_users" not in g["stages"][stage]  # top-k of a sample of users
        ]
        if len(pts) < 2 or len({e for e, _ in pts}) < 2:
            continue
        x = np.log([e for e, _ in pts])
        y = np.log([s for _, s in pts])
        slope = float(np.polyfit(x, y, 1)[0])
        out[stage] = {"exponent": slope, "flagged": slope > FLAG_EXPONENT}
    return out


def parse_sizes(text: str, large: bool = False) -> list[int]:
    """``"1e5,1e6"`` -> ``[100000, 1000000]``; each at least 1,000 edges, and above
    ``LARGE_EDGES`` only with ``large`` (``--large``)."""
    try:
        sizes = [int(float(s)) for s in text.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(s < 1000 for s in sizes):
        raise ConfigError(f"--sizes {text!r}: comma-separated edge counts, each >= 1000")
    big = [s for s in sizes if s > LARGE_EDGES]
    if big and not large:
        raise ConfigError(
            f"--sizes {text!r}: graphs above {LARGE_EDGES:,} edges need --large (1e8 takes "
            "about 15 GiB of memory, 5 minutes to generate and 30 to run)"
        )
    return sizes
