"""Over seeds and users: means and spreads of every metric, and the paired margins and
bootstrap intervals the report's verdicts rest on."""

from __future__ import annotations

import math
import statistics

import torch


def summarize(rows: list[dict]) -> dict:
    """Mean and sample std over seeds of every numeric metric; the runs themselves."""
    if any("skipped" in r for r in rows):
        return {"skipped": rows[0]["skipped"], "runs": rows}
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and k != "seed"]
    mean, std = {}, {}
    for k in keys:
        vals = [float(r[k]) for r in rows if r.get(k) is not None and not _nan(r[k])]
        if vals:
            mean[k] = statistics.fmean(vals)
            std[k] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": mean, "std": std, "runs": rows}


def _nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def paired_bootstrap(
    results: dict, a: str, b: str, resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95% interval of the NDCG@20 margin ``a - b`` (mean over seeds) from resampling each
    seed's test users with replacement, both methods scored on the same users: how much of
    a margin the finite set of test users explains. Seed-to-seed variation (split and
    initialisation) is the per-seed differences' business, not this interval's. ``None``
    when a run has no per-user values (results written before they were kept)."""
    ra = {r["seed"]: r.get("per_user") for r in results[a]["runs"]}
    rb = {r["seed"]: r.get("per_user") for r in results[b]["runs"]}
    seeds = [s for s in ra if s in rb]
    if not seeds or any(ra[s] is None or rb[s] is None for s in seeds):
        return None
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(resamples, dtype=torch.float64)
    for s in seeds:
        if ra[s]["users"] != rb[s]["users"]:
            raise ValueError(f"seed {s}: {a} and {b} were scored on different test users")
        d = torch.tensor(ra[s]["ndcg@20"], dtype=torch.float64) - torch.tensor(
            rb[s]["ndcg@20"], dtype=torch.float64
        )
        for lo in range(0, resamples, 100):  # bounded memory on large user sets
            n = min(100, resamples - lo)
            idx = torch.randint(len(d), (n, len(d)), generator=gen)
            total[lo : lo + n] += d[idx].mean(1)
    total /= len(seeds)
    q = torch.quantile(total, torch.tensor([0.025, 0.975], dtype=torch.float64))
    return float(q[0]), float(q[1])


def paired_margin(results: dict, a: str, b: str, metric: str = "ndcg@20") -> dict:
    """Per-seed difference ``a - b`` of ``metric`` (same seed = same split): mean and std."""
    ra = {r["seed"]: r[metric] for r in results[a]["runs"]}
    rb = {r["seed"]: r[metric] for r in results[b]["runs"]}
    diffs = [ra[s] - rb[s] for s in ra if s in rb]
    return {
        "mean": statistics.fmean(diffs),
        "std": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
        "per_seed": diffs,
    }
