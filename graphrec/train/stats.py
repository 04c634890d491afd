"""Stage 3, train: per-epoch figures (loss, labelled edges/s, sampler vs compute seconds,
per-worker parameter digests) and their totals."""

from __future__ import annotations

import hashlib
import os

from torch import nn

from graphrec.train.context import TrainContext


def summarize(history: list[dict], world_size: int) -> dict:
    """Totals over epochs: labelled edges/s (all workers and per worker), sampler and
    compute seconds."""
    total_lab = sum(r["labelled_edges"] for r in history)
    total_s = sum(r["seconds"] for r in history)
    rate = total_lab / max(total_s, 1e-9)
    return {
        "epochs_run": len(history),
        "workers": world_size,
        "labelled_edges_per_s": rate,
        "labelled_edges_per_s_per_worker": rate / world_size,
        "sample_seconds": sum(r["sample_seconds"] for r in history),
        "compute_seconds": sum(r["compute_seconds"] for r in history),
    }


def epoch_row(
    ctx: TrainContext,
    epoch: int,
    model: nn.Module,
    loss_sum: float,
    n_lab: int,
    n_batches: int,
    seconds: float,
    sample_s: float,
    compute_s: float,
) -> dict:
    """One epoch's figures, summed (edges) or maxed (seconds) over workers, plus each
    worker's own: its loss, labelled edges/s, sampler and compute seconds, and a digest of
    its parameters (equal on every worker when gradients are synchronized)."""
    digest = param_digest(model) if ctx.world_size > 1 else 0.0  # hashes every parameter
    mine = [loss_sum, n_lab, seconds, sample_s, compute_s, digest, os.getpid()]
    every = ctx.all_gather(mine)
    lab = sum(w[1] for w in every)
    secs = max(w[2] for w in every)
    row = {
        "epoch": epoch,
        "loss": sum(w[0] for w in every) / max(lab, 1),
        "seconds": secs,
        "labelled_edges": int(lab),
        "labelled_edges_per_s": lab / max(secs, 1e-9),
        "sample_seconds": max(w[3] for w in every),
        "compute_seconds": max(w[4] for w in every),
        "batches": n_batches,
    }
    if ctx.world_size > 1:
        row["workers"] = [
            {
                "rank": r,
                "loss": w[0] / max(w[1], 1),
                "labelled_edges_per_s": w[1] / max(w[2], 1e-9),
                "sample_seconds": w[3],
                "compute_seconds": w[4],
                "param_digest": int(w[5]),
                "pid": int(w[6]),
            }
            for r, w in enumerate(every)
        ]
    return row


def param_digest(model: nn.Module) -> float:
    """52 bits of a SHA-256 of every parameter's bytes (exact in a float64): equal on two
    workers only when their parameters are bitwise identical."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return float(int(h.hexdigest()[:13], 16))
